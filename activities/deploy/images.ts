/**
 * The stack's pinned images onto hosts that cannot pull (no registry, air-gapped, private images), from the
 * operator's Docker engine over steward's SSH session, sending only what the host lacks:
 *
 * 1. Observe, in one round trip: the host's image ID for each ref (equal to the local one: skipped) and the layers
 *    of every image it holds, as chain IDs.
 * 2. Each image to send comes from the operator's image cache (`image-cache.ts`: a `docker save` extracted once per
 *    image ID), which gives its config and, for each layer, its diff ID and the file that carries it.
 * 3. Only files of layers whose chain ID the host lacks are sent, gzip level 1 on the wire unless `compress: false`,
 *    into a root-only staging directory on the host (`image-staging.ts`), each appended from the byte its partial
 *    copy ends at and checked against its SHA-256 when complete. An interrupted transfer leaves what arrived there;
 *    the next attempt sends only the rest. A layer the host's engine holds is never sent again.
 * 4. The host builds a docker-load archive from the manifest and configs (sent along, a few kB) and the staged files,
 *    and loads it: `docker load` finds the layers it holds by chain ID and leaves their files out, so an archive
 *    without them is complete for it (steward relies on this, and the tests prove it on Docker 20.10). Staged files
 *    are removed once loaded.
 * 5. Verify: every sent image's ID on the host equals the local one.
 *
 * So an image that differs from one the host has only in its config (a label, a healthcheck, an entrypoint on the
 * same layers) costs its config, not its layers. A tag moves only when `docker load` completes; a broken upload
 * leaves every tag where it was.
 *
 * Measured on the dev machine (2 cores shared with other work, simulator on loopback, Docker 20.10 on both ends) with
 * steward/vps:bookworm (225.6 MB; its `docker save` is 232.7 MB); `npx tsx bench/images.ts` repeats it:
 * - a config-only change (`FROM` it plus a `LABEL`) after the image itself: 8.2 kB sent instead of 94.2 MB (gzip),
 *   2.7 s; a transfer cut after 113 MB: the retry found 110 MB staged and sent the other 122.5 MB.
 * - cold, under heavy load (load average 19): gzip level 1 94.2 MB in 21 s, raw 232.7 MB in 23 s; the local cache
 *   costs one save of 10 s per new image ID. Side by side with streaming straight into `docker load` (no staging) in
 *   the same conditions: raw 21–32 s streamed vs 22–39 s staged, gzip 34–54 s vs 26–37 s, so staging costs no
 *   time that the noise does not hide. On a quiet machine streaming took 3.5–8.6 s raw and 8.0–17.9 s gzip (levels 3
 *   and 6: 91.7 / 87.2 MB for 15–20% more time); throttled to 50 Mbit/s gzip 18.8 s, raw 42.5 s; to 200 Mbit/s gzip
 *   16.3 s, raw 15.7 s (break-even).
 */
import type Docker from 'dockerode';
import type { Change } from '../../model/report';
import { CommandFailed, HostError, UnexpectedHostOutput, VerificationFailed } from '../host/errors';
import type { HostSession, ProbeResult } from '../host/session';
import { run } from '../host/shell';
import { ImageCache, SavedImageError, type CachedImage } from './image-cache';
import { parseHostLayers, planLayers, type LayerPlan } from './image-layers';
import { loadStaged, stageFiles, type LoadImage, type Meter } from './image-staging';

/**
 * Compress on the way (gzip level 1; the host unpacks it as it stages). On this machine it does NOT pay off: on
 * loopback the link is free and CPU is the limit, so gzip takes about twice as long. It is still the default because
 * steward's real link is an operator's uplink (a laptop, or an ops box shared by a fleet of concurrent deploys),
 * where it sends 60% fewer bytes: gzip wins below ~200 Mbit/s per host (2.3× faster at 50 Mbit/s). Wrong on a fast
 * LAN it costs seconds per image; raw on a slow uplink would cost minutes. Level 1 because higher levels shrink 3–7%
 * more for 15–20% more time. `compress: false` (the spec's `stack.compressImages`) sends raw, for hosts on a fast LAN.
 */
const COMPRESS_BY_DEFAULT = true;
const IMAGE_ID = /^sha256:[0-9a-f]{64}$/;
/** `docker image inspect` of every image on the host: `<id> <diff id>…` per line. */
const LAYERS_FORMAT = '{{.Id}}{{range .RootFS.Layers}} {{.}}{{end}}';

export interface TransferredImage {
  readonly image: string;
  /** Image ID (`sha256:…`), now the same on the host and locally. */
  readonly id: string;
  /**
   * Bytes sent for this image: its share of the layer files sent (a file two images need counts for the first; by
   * raw size, scaled by the stream's compression ratio) and of the manifest and configs. Summed over the images of
   * a call: the bytes sent.
   */
  readonly bytes: number;
  /** Duration of the call that carried it, from observing the host to the verified load; images sent together share it. */
  readonly ms: number;
  /** Layers the host's engine lacked, whose files were staged (now or, partly or wholly, by an earlier attempt). */
  readonly layersSent: number;
  /** Layers the host's engine already held (by chain ID): not sent. */
  readonly layersReused: number;
  /** Bytes of this image's layer files already staged on the host by an earlier, interrupted attempt: not sent again. */
  readonly resumedBytes: number;
}

export interface SkippedImage {
  readonly image: string;
  readonly id: string;
  /** The image's size in the local engine: roughly what a raw transfer would have sent. */
  readonly bytes: number;
}

export interface ImageTransferResult {
  /** One per transferred image: `image:<ref>` created (absent on the host) or updated (a different ID). */
  readonly changes: Change[];
  readonly transferred: TransferredImage[];
  readonly skipped: SkippedImage[];
}

export interface TransferImagesOptions {
  /**
   * Called as bytes go out, with the total sent so far by this call: heartbeat from here. Also called, with the total
   * unchanged, about once a second while the local cache saves an image and every few seconds while the host loads.
   * `detail` says which of those it is doing and, while sending, how many layer bytes of how many it has read.
   */
  readonly onProgress?: (bytes: number, detail: TransferProgress) => void;
  /** gzip on the way; default true (see COMPRESS_BY_DEFAULT for the measurements behind it). */
  readonly compress?: boolean;
  /** The operator's image cache directory; default `defaultCacheDir()` (`$STEWARD_IMAGE_CACHE` or ~/.cache). */
  readonly cacheDir?: string;
}

/** Where a transfer is: saving images into the local cache, sending their missing layers, or the host loading them. */
export interface TransferProgress {
  readonly phase: 'saving' | 'sending' | 'loading';
  /** Bytes on the wire so far (compressed, when compressing). */
  readonly sent: number;
  /** While sending: layer bytes read so far, of how many (before compression). */
  readonly read?: number;
  readonly total?: number;
}

/** What `planImages` found: the changes a transfer would make, and what it would send or skip. */
export interface ImagePlan {
  readonly changes: Change[];
  readonly send: readonly { image: string; id: string; size: number }[];
  readonly skipped: SkippedImage[];
}

/** Images to send are missing from the operator's engine: nothing can be sent until they are built or loaded. */
export class LocalImageMissing extends HostError {
  override readonly name = 'LocalImageMissing';
  readonly retryable = false;
  constructor(
    host: string,
    readonly images: readonly string[],
  ) {
    super(
      host,
      `${images.length === 1 ? 'image' : 'images'} ${images.join(', ')} not found in the local Docker engine; ` +
        'steward sends images from this machine to the host, so build or load them here first',
    );
  }
}

/** An image pinned by digest: a host that loads images cannot resolve a digest (only a registry pull records one). */
export class DigestPinnedImage extends HostError {
  override readonly name = 'DigestPinnedImage';
  readonly retryable = false;
  constructor(
    host: string,
    readonly images: readonly string[],
  ) {
    super(
      host,
      `${images.join(', ')} pinned by digest, which a host without a registry cannot resolve after docker load; ` +
        'pin by tag (steward compares image IDs, so a moved tag is still noticed)',
    );
  }
}

/**
 * Observes which of `images` the host lacks or has with another ID than the local engine, without changing
 * anything: the local IDs from the local engine, the host's in one SSH round trip.
 * @throws LocalImageMissing / DigestPinnedImage (not retryable) naming the images; CommandFailed when
 *   the host cannot answer (`docker` missing: not retryable; daemon down: retryable); UnexpectedHostOutput on output
 *   it cannot parse.
 */
export async function planImages(session: HostSession, local: Docker, images: readonly string[]): Promise<ImagePlan> {
  return (await observe(session, local, images, false)).plan;
}

/**
 * Makes the host hold each of `images` under its tag with the local engine's image ID, sending only what it lacks
 * (see the top of this file): images it has with that ID are skipped; of the others only the layers its engine
 * lacks travel, and of those only what an earlier attempt did not already stage; then every sent image's ID on the
 * host is checked.
 *
 * Changes on the host: stages layer files under /var/lib/steward/images until loaded, loads images and moves their
 * tags; an image a tag pointed at before stays on the host untagged (`before.id` in the change) until pruned. Safe
 * to retry at any point: a second run skips what arrived and continues what is partly there.
 * @throws LocalImageMissing, DigestPinnedImage (not retryable) before anything is sent; CommandFailed when
 *   the local save breaks (retryable) or is not the image asked for (not), when staging or `docker load` fails or the
 *   stream breaks, CommandTimedOut when it stalls, ConnectionFailed when the session drops, VerificationFailed
 *   when the host's ID still differs (all retryable, except CommandFailed for a full disk or a staging directory
 *   that is not root's alone); UnexpectedHostOutput on host output outside the protocol.
 */
export async function transferImages(
  session: HostSession,
  local: Docker,
  images: readonly string[],
  opts: TransferImagesOptions = {},
): Promise<ImageTransferResult> {
  const started = performance.now();
  const host = session.target.name;
  const { plan, present } = await observe(session, local, images, true);
  if (plan.send.length === 0) return { changes: [], transferred: [], skipped: plan.skipped };

  let sent = 0;
  let phase: TransferProgress['phase'] = 'saving';
  let read: { read: number; total: number } | undefined;
  const report = () => opts.onProgress?.(sent, { phase, sent, ...(phase === 'sending' ? read : {}) });
  const meter: Meter = {
    add(n) {
      sent += n;
      report();
    },
    alive: report,
    read(bytes, total) {
      read = { read: bytes, total };
    },
  };

  // Each phase is reported as it begins, and then as it goes.
  report();
  const cache = new ImageCache(opts.cacheDir);
  const toLoad = await imagesToLoad(host, cache, local, plan.send, report);
  const layers = planLayers(toLoad, present!);
  phase = 'sending';
  report();
  const staged = await stage(session, cache, layers, opts.compress ?? COMPRESS_BY_DEFAULT, meter);
  const wire = sent;
  phase = 'loading';
  report();
  await loadStaged(
    session,
    toLoad,
    layers.blobs.map((b) => b.digest),
    meter,
  );

  const tags = plan.send.map((s) => withTag(s.image));
  const after = (await observeHost(session, tags, false)).ids;
  const wrong = plan.send.filter((s, i) => after[i] !== s.id).map((s) => `image:${s.image}`);
  if (wrong.length > 0) throw new VerificationFailed(host, wrong);

  const ms = performance.now() - started;
  const shares = attribute(layers, toLoad, staged, wire, sent - wire);
  const counted = new Set<string>();
  const transferred = plan.send.map((s) => {
    const i = toLoad.findIndex((image) => image.id === s.id);
    // Two refs of one image share its bytes: the first carries them.
    const first = !counted.has(s.id);
    counted.add(s.id);
    return {
      image: s.image,
      id: s.id,
      bytes: first ? shares[i]!.bytes : 0,
      ms,
      layersSent: layers.images[i]!.missing.length,
      layersReused: layers.images[i]!.reused,
      resumedBytes: first ? shares[i]!.resumed : 0,
    };
  });
  return { changes: plan.changes, transferred, skipped: plan.skipped };
}

/** `sha256:0123456789abcdef…` → `0123456789ab`, as `docker images` shows it. */
export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** `name` → `name:latest`: a bare name means its `latest` tag, and docker load needs the tag spelt out. */
function withTag(ref: string): string {
  const last = ref.slice(ref.lastIndexOf('/') + 1);
  return last.includes(':') ? ref : `${ref}:latest`;
}

interface Observed {
  readonly plan: ImagePlan;
  /** Chain IDs of every layer the host's engine holds (when asked for). */
  readonly present?: Set<string>;
}

async function observe(
  session: HostSession,
  local: Docker,
  images: readonly string[],
  layers: boolean,
): Promise<Observed> {
  const refs = [...new Set(images)];
  if (refs.length === 0) return { plan: { changes: [], send: [], skipped: [] } };
  const host = session.target.name;
  const digests = refs.filter((r) => r.includes('@'));
  if (digests.length > 0) throw new DigestPinnedImage(host, digests);

  const [locals, remote] = await Promise.all([observeLocal(host, local, refs), observeHost(session, refs, layers)]);
  const changes: Change[] = [];
  const send: { image: string; id: string; size: number }[] = [];
  const skipped: SkippedImage[] = [];
  refs.forEach((image, i) => {
    const { id, size } = locals[i]!;
    const before = remote.ids[i];
    if (before === id) {
      skipped.push({ image, id, bytes: size });
      return;
    }
    send.push({ image, id, size });
    changes.push({
      resource: `image:${image}`,
      action: before ? 'update' : 'create',
      ...(before ? { before: { id: shortId(before) } } : {}),
      after: { id: shortId(id) },
    });
  });
  return { plan: { changes, send, skipped }, ...(remote.present ? { present: remote.present } : {}) };
}

async function observeLocal(host: string, local: Docker, refs: readonly string[]) {
  const results = await Promise.all(
    refs.map(async (ref) => {
      try {
        const info = await local.getImage(ref).inspect();
        return { id: info.Id, size: info.Size };
      } catch (err) {
        if ((err as { statusCode?: number }).statusCode === 404) return undefined;
        throw err;
      }
    }),
  );
  const missing = refs.filter((_, i) => results[i] === undefined);
  if (missing.length > 0) throw new LocalImageMissing(host, missing);
  return results as { id: string; size: number }[];
}

/**
 * The host's image ID for each ref (undefined: no such image) and, when `layers`, the chain IDs of every layer its
 * engine holds, in one round trip.
 */
async function observeHost(
  session: HostSession,
  refs: readonly string[],
  layers: boolean,
): Promise<{ ids: (string | undefined)[]; present?: Set<string> }> {
  const probes: Record<string, string> = Object.fromEntries(
    refs.map((ref, i) => [`i${i}`, run('docker', 'image', 'inspect', '--format', '{{.Id}}', '--', ref)]),
  );
  if (layers) {
    probes.layers = [
      `ids=$(${run('docker', 'image', 'ls', '-aq', '--no-trunc')}) || exit $?`,
      `printf '%s\\n' "$ids" | sort -u | grep -x 'sha256:[0-9a-f]\\{64\\}' | ` +
        run('xargs', '-r', 'docker', 'image', 'inspect', '--format', LAYERS_FORMAT),
    ].join('\n');
  }
  const results = await session.probe(probes, { label: 'observe images' });
  const host = session.target.name;
  const ids = refs.map((ref, i) => parseRemoteId(host, ref, results[`i${i}`] as ProbeResult));
  if (!layers) return { ids };
  return { ids, present: parseLayersProbe(host, results.layers as ProbeResult) };
}

function parseRemoteId(host: string, ref: string, { out, code }: ProbeResult): string | undefined {
  const text = out.trim();
  if (code === 0) {
    if (IMAGE_ID.test(text)) return text;
    throw new UnexpectedHostOutput(host, `docker image inspect ${ref} printed ${JSON.stringify(text.slice(0, 200))}`);
  }
  if (/no such image/i.test(text)) return undefined;
  // 127: no docker on the host — provision installs it; retrying cannot help.
  throw new CommandFailed(host, `docker image inspect ${ref}`, code, text, code !== 127);
}

/** Exit 0, or 123 when xargs saw an image vanish between listing and inspecting (its error line is skipped). */
function parseLayersProbe(host: string, { out, code }: ProbeResult): Set<string> {
  if (code === 0) return parseHostLayers(host, out);
  if (code === 123) {
    try {
      return parseHostLayers(host, out);
    } catch {
      // Not only vanished images: a failure, reported below.
    }
  }
  throw new CommandFailed(host, 'docker image inspect (every image)', code, out.trim(), code !== 127);
}

/** Each distinct image to send, from the cache, with the tags of every ref that names it. */
async function imagesToLoad(
  host: string,
  cache: ImageCache,
  local: Docker,
  send: ImagePlan['send'],
  alive: () => void,
): Promise<LoadImage[]> {
  const out: LoadImage[] = [];
  for (const id of new Set(send.map((s) => s.id))) {
    const refs = send.filter((s) => s.id === id).map((s) => s.image);
    const c = await fromCache(host, cache, local, id, refs, alive);
    out.push({
      id,
      tags: refs.map(withTag),
      layers: c.layers,
      config: c.config,
      ...(c.layerSources ? { layerSources: c.layerSources } : {}),
    });
  }
  return out;
}

/**
 * The cached copy of image `id`, saved from the local engine when not cached yet.
 * @throws CommandFailed: retryable when the save broke off, not when it returned something other than the image.
 */
async function fromCache(
  host: string,
  cache: ImageCache,
  local: Docker,
  id: string,
  refs: readonly string[],
  alive: () => void,
): Promise<CachedImage> {
  try {
    return await cache.get(local, id, alive);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const label = `docker save (${refs.join(', ')}) from the local engine`;
    throw new CommandFailed(host, label, null, `image save broke off: ${message}`, !(err instanceof SavedImageError));
  }
}

interface Staged {
  /** Raw bytes sent per layer file, over every round. */
  readonly raw: Map<string, number>;
  /** Bytes per layer file already on the host when this call started. */
  readonly resumed: Map<string, number>;
}

/**
 * Stages every file of `plan` on the host. A file that arrives whole but wrong is checked against the operator's
 * copy: a damaged copy is dropped from the cache (the next attempt saves the image again); otherwise it is sent once
 * more from its start.
 */
async function stage(
  session: HostSession,
  cache: ImageCache,
  plan: LayerPlan,
  compress: boolean,
  meter: Meter,
): Promise<Staged> {
  const host = session.target.name;
  const raw = new Map<string, number>();
  const resumed = new Map<string, number>();
  let files = plan.blobs;
  for (let round = 1; files.length > 0; round++) {
    const r = await stageFiles(session, files, (d) => cache.blobPath(d), compress, meter);
    for (const [d, n] of r.raw) raw.set(d, (raw.get(d) ?? 0) + n);
    if (round === 1) for (const [d, n] of r.resumed) resumed.set(d, n);
    if (r.bad.length === 0) break;
    for (const digest of r.bad) {
      if (!(await cache.verifyBlob(digest)))
        throw new CommandFailed(
          host,
          'stage image layers',
          null,
          `the local image cache held a damaged copy of layer file ${digest}; it is removed, and the next attempt saves the image again`,
        );
    }
    if (round === 2)
      throw new CommandFailed(
        host,
        'stage image layers',
        null,
        `layer files ${r.bad.join(', ')} arrived damaged twice`,
      );
    files = plan.blobs.filter((b) => r.bad.includes(b.digest));
  }
  return { raw, resumed };
}

/**
 * Each image's share of the bytes sent: the upload (`wire`) by the raw bytes of the files it was first to need, the
 * manifest and configs (`small`) by config size; rounding goes to the first image, so the shares add up exactly.
 */
function attribute(
  plan: LayerPlan,
  images: readonly LoadImage[],
  staged: Staged,
  wire: number,
  small: number,
): { bytes: number; resumed: number }[] {
  const claimed = new Set<string>();
  const own = plan.images.map((image) => {
    let raw = 0;
    let resumed = 0;
    for (const l of image.missing) {
      if (claimed.has(l.digest)) continue;
      claimed.add(l.digest);
      raw += staged.raw.get(l.digest) ?? 0;
      resumed += staged.resumed.get(l.digest) ?? 0;
    }
    return { raw, resumed };
  });
  const rawTotal = own.reduce((n, o) => n + o.raw, 0);
  const configSizes = images.map((i) => i.config.length);
  const configTotal = configSizes.reduce((a, b) => a + b, 0);
  const bytes = own.map(
    (o, i) =>
      Math.floor(rawTotal > 0 ? (o.raw / rawTotal) * wire : wire / own.length) +
      Math.floor((configSizes[i]! / configTotal) * small),
  );
  bytes[0]! += wire + small - bytes.reduce((a, b) => a + b, 0);
  return own.map((o, i) => ({ bytes: bytes[i]!, resumed: o.resumed }));
}
