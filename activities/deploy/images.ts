/**
 * The stack's pinned images onto hosts that cannot pull (no registry, air-gapped, private images): streamed from the
 * operator's Docker engine over steward's SSH session (`docker save` → SSH → `docker load`), skipping every image
 * the host already has with the same image ID.
 *
 * Measured on the dev machine (2 cores shared with other work, simulator on loopback, Docker 20.10 on both ends)
 * with steward/vps:bookworm (225.6 MB; its `docker save` is 232.7 MB); `npx tsx bench/images.ts` repeats it:
 * - loopback: raw 232.7 MB in 3.5–8.6 s, gzip level 1 94.2 MB in 8.0–17.9 s (levels 3 and 6: 91.7 / 87.2 MB for
 *   15–20% more time). The host's side costs the same either way (5.1 s .tar vs 5.0 s .tar.gz read from a file):
 *   gzip costs the operator's CPU only, ~40 MB/s per stream with node's zlib here.
 * - throttled to 50 Mbit/s: gzip 18.8 s, raw 42.5 s; to 200 Mbit/s: gzip 16.3 s, raw 15.7 s (break-even).
 * - vps + debian-base (one shared 226 MB layer), raw: one save for both 232.7 MB in 5.2–9.7 s; one save each
 *   465.3 MB in 8.2–12.8 s.
 */
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type Docker from 'dockerode';
import type { ClientChannel } from 'ssh2';
import type { Change } from '../../spec/report';
import {
  CommandError,
  CommandTimeoutError,
  ConnectionError,
  HostError,
  HostOutputError,
  VerificationError,
} from '../host/errors';
import type { HostSession, ProbeResult } from '../host/session';
import { run } from '../host/shell';

/**
 * Compress on the way (gzip level 1; `docker load` detects gzip and unpacks it). On this machine it does NOT pay
 * off: on loopback the link is free and CPU is the limit, so gzip takes about twice as long. It is still the default
 * because steward's real link is an operator's uplink (a laptop, or an ops box shared by a fleet of concurrent
 * deploys), where it sends 60% fewer bytes: gzip wins below ~200 Mbit/s per host (2.3× faster at 50 Mbit/s). Wrong
 * on a fast LAN it costs seconds per image; raw on a slow uplink would cost minutes. Level 1 because higher levels
 * shrink 3–7% more for 15–20% more time. `compress: false` sends raw, for hosts on a fast LAN.
 */
const COMPRESS_BY_DEFAULT = true;
const GZIP_LEVEL = 1;
/** No byte accepted by the host for this long: the transfer is stuck. */
const STALL_TIMEOUT_MS = 120_000;
/** After the last byte, `docker load` unpacks and registers layers; large images take a while on slow disks. */
const LOAD_TIMEOUT_MS = 600_000;
const WATCHDOG_INTERVAL_MS = 1_000;
const OUTPUT_LIMIT = 16_384;
const IMAGE_ID = /^sha256:[0-9a-f]{64}$/;

export interface TransferredImage {
  readonly image: string;
  /** Image ID (`sha256:…`), now the same on the host and locally. */
  readonly id: string;
  /**
   * Bytes sent for this image: the tar entries of its config and layers (exact per entry; a layer shared with
   * another image in the same stream travels once and counts for one of them), scaled by the stream's compression
   * ratio. Summed over the images of a call: the bytes sent.
   */
  readonly bytes: number;
  /** Duration of the stream that carried it, from save to load; images sent together share it. */
  readonly ms: number;
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
  /** Called as bytes go out, with the total sent so far by this call: heartbeat from here. */
  readonly onProgress?: (bytes: number) => void;
  /** gzip on the way; default true (see COMPRESS_BY_DEFAULT for the measurements behind it). */
  readonly compress?: boolean;
}

/** What `planImages` found: the changes a transfer would make, and what it would send or skip. */
export interface ImagePlan {
  readonly changes: Change[];
  readonly send: readonly { image: string; id: string; size: number }[];
  readonly skipped: SkippedImage[];
}

/** Images to send are missing from the operator's engine: nothing can be sent until they are built or loaded. */
export class LocalImageMissingError extends HostError {
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
export class DigestPinnedImageError extends HostError {
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
 * @throws LocalImageMissingError / DigestPinnedImageError (not retryable) naming the images; CommandError when
 *   the host cannot answer (`docker` missing: not retryable; daemon down: retryable); HostOutputError on output
 *   it cannot parse.
 */
export async function planImages(session: HostSession, local: Docker, images: readonly string[]): Promise<ImagePlan> {
  const refs = [...new Set(images)];
  if (refs.length === 0) return { changes: [], send: [], skipped: [] };
  const host = session.target.name;
  const digests = refs.filter((r) => r.includes('@'));
  if (digests.length > 0) throw new DigestPinnedImageError(host, digests);

  const [locals, remotes] = await Promise.all([inspectLocal(host, local, refs), observeRemote(session, refs)]);
  const changes: Change[] = [];
  const send: { image: string; id: string; size: number }[] = [];
  const skipped: SkippedImage[] = [];
  refs.forEach((image, i) => {
    const { id, size } = locals[i]!;
    const remote = remotes[i];
    if (remote === id) {
      skipped.push({ image, id, bytes: size });
      return;
    }
    send.push({ image, id, size });
    changes.push({
      resource: `image:${image}`,
      action: remote ? 'update' : 'create',
      ...(remote ? { before: { id: shortId(remote) } } : {}),
      after: { id: shortId(id) },
    });
  });
  return { changes, send, skipped };
}

/**
 * Makes the host hold each of `images` under its tag with the local engine's image ID: images the host already
 * has with that ID are skipped; the others go in one `docker save` stream (layers shared between them travel once),
 * gzip-compressed unless `compress: false`, into `docker load` on the host through `session`; then every sent
 * image's ID on the host is checked.
 *
 * Changes on the host: loads images and moves their tags; an image a tag pointed at before stays on the host
 * untagged (`before.id` in the change) until pruned. Safe to retry: a second run skips what arrived. A stream that
 * breaks moves no tag onto a partial image: docker load unpacks the whole archive into a temporary directory before
 * it loads anything, and `manifest.json` comes after every layer, so a tag moves only for a complete image (shown
 * by cutting streams mid-layer, just before and just after the manifest, and by closing the channel; a cut exactly
 * before the manifest can leave an untagged image for the cleanup timer). The verification would catch it anyway.
 * @throws LocalImageMissingError, DigestPinnedImageError (not retryable) before anything is sent;
 *   CommandError when `docker load` fails or the stream breaks, CommandTimeoutError when it stalls,
 *   ConnectionError when the session drops, VerificationError when the host's ID still differs (all retryable,
 *   except CommandError for a full disk).
 */
export async function transferImages(
  session: HostSession,
  local: Docker,
  images: readonly string[],
  opts: TransferImagesOptions = {},
): Promise<ImageTransferResult> {
  const plan = await planImages(session, local, images);
  if (plan.send.length === 0) return { changes: [], transferred: [], skipped: plan.skipped };

  const names = plan.send.map((s) => withTag(s.image));
  const sent = await sendImages(session, local, names, opts.compress ?? COMPRESS_BY_DEFAULT, opts.onProgress);

  const after = await observeRemote(session, names);
  const wrong = plan.send.filter((s, i) => after[i] !== s.id).map((s) => `image:${s.image}`);
  if (wrong.length > 0) throw new VerificationError(session.target.name, wrong);

  const shares = attributeBytes(sent.tally, plan.send, sent.bytes);
  return {
    changes: plan.changes,
    transferred: plan.send.map((s, i) => ({ image: s.image, id: s.id, bytes: shares[i]!, ms: sent.ms })),
    skipped: plan.skipped,
  };
}

/** `sha256:0123456789abcdef…` → `0123456789ab`, as `docker images` shows it. */
export function shortId(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** `name` → `name:latest`: `docker save name` would otherwise send every tag of the repository. */
function withTag(ref: string): string {
  const last = ref.slice(ref.lastIndexOf('/') + 1);
  return last.includes(':') ? ref : `${ref}:latest`;
}

async function inspectLocal(host: string, local: Docker, refs: readonly string[]) {
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
  if (missing.length > 0) throw new LocalImageMissingError(host, missing);
  return results as { id: string; size: number }[];
}

/** The host's image ID for each ref (undefined: no such image), in one round trip. */
async function observeRemote(session: HostSession, refs: readonly string[]): Promise<(string | undefined)[]> {
  const probes = Object.fromEntries(
    refs.map((ref, i) => [`i${i}`, run('docker', 'image', 'inspect', '--format', '{{.Id}}', '--', ref)]),
  );
  const results = await session.probe(probes, { label: 'observe images' });
  return refs.map((ref, i) => parseRemoteId(session.target.name, ref, results[`i${i}`] as ProbeResult));
}

function parseRemoteId(host: string, ref: string, { out, code }: ProbeResult): string | undefined {
  const text = out.trim();
  if (code === 0) {
    if (IMAGE_ID.test(text)) return text;
    throw new HostOutputError(host, `docker image inspect ${ref} printed ${JSON.stringify(text.slice(0, 200))}`);
  }
  if (/no such image/i.test(text)) return undefined;
  // 127: no docker on the host — provision installs it; retrying cannot help.
  throw new CommandError(host, `docker image inspect ${ref}`, code, text, code !== 127);
}

interface Sent {
  /** Bytes that went over SSH (compressed when compressing). */
  readonly bytes: number;
  readonly ms: number;
  readonly tally: TarTally;
}

/**
 * Streams `docker save names…` from the local engine into `docker load` on the host and waits for it to finish.
 * On any failure the channel is closed, so `docker load` sees a broken archive and moves no tag.
 */
async function sendImages(
  session: HostSession,
  local: Docker,
  names: readonly string[],
  compress: boolean,
  onProgress: ((bytes: number) => void) | undefined,
): Promise<Sent> {
  const host = session.target.name;
  const started = performance.now();
  const label = `docker load (${names.join(', ')})`;
  const source = await saveImages(local, names);
  const channel = await session.channel(['docker', 'load'], true).catch((err: unknown) => {
    source.destroy();
    throw err;
  });
  const load = watchChannel(channel);

  let bytes = 0;
  let lastProgress = Date.now();
  let uploaded = false;
  const tally = new TarTally();
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      bytes += chunk.length;
      lastProgress = Date.now();
      onProgress?.(bytes);
      done(null, chunk);
    },
  });
  const abort = new AbortController();
  const watchdog = setInterval(() => {
    const idle = Date.now() - lastProgress;
    const limit = uploaded ? LOAD_TIMEOUT_MS : STALL_TIMEOUT_MS;
    if (idle > limit) abort.abort(new CommandTimeoutError(host, label, limit));
  }, WATCHDOG_INTERVAL_MS);

  try {
    const stages = compress
      ? [source, tally, createGzip({ level: GZIP_LEVEL }), counter, channel]
      : [source, tally, counter, channel];
    try {
      await (pipeline as (...s: unknown[]) => Promise<void>)(...stages, { signal: abort.signal });
    } catch (err) {
      channel.destroy();
      const exit = await Promise.race([load.exited, settle(2_000)]);
      throw streamError(session, label, bytes, err, abort.signal.reason, exit);
    }
    uploaded = true;
    lastProgress = Date.now();
    const exit = await Promise.race([
      load.exited,
      new Promise<never>((_, reject) =>
        abort.signal.addEventListener('abort', () => reject(abort.signal.reason as Error), { once: true }),
      ),
    ]).catch((err: unknown) => {
      channel.destroy();
      throw err;
    });
    if (exit.code !== 0) throw loadError(host, label, exit);
    return { bytes, ms: performance.now() - started, tally };
  } finally {
    clearInterval(watchdog);
  }
}

/** `GET /images/get?names=…`: one archive for several images, shared layers once. dockerode has it, its types not. */
function saveImages(local: Docker, names: readonly string[]): Promise<Readable> {
  const docker = local as Docker & { getImages(opts: { names: string[] }): Promise<Readable> };
  return docker.getImages({ names: [...names] });
}

interface LoadExit {
  readonly code: number | null;
  readonly signal?: string;
  readonly output: string;
}

/** Collects the output of `docker load` and resolves when its channel closes. */
function watchChannel(channel: ClientChannel): { exited: Promise<LoadExit> } {
  let output = '';
  let code: number | null = null;
  let signal: string | undefined;
  const keep = (d: Buffer) => {
    output = (output + d.toString('utf8')).slice(-OUTPUT_LIMIT);
  };
  channel.on('data', keep);
  channel.stderr.on('data', keep);
  channel.on('exit', (c: number | null, s?: string) => {
    code = c;
    signal = s ?? undefined;
  });
  const exited = new Promise<LoadExit>((resolve) => {
    channel.once('close', () => resolve({ code, ...(signal ? { signal } : {}), output }));
  });
  return { exited };
}

function settle(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms).unref());
}

function loadError(host: string, label: string, exit: LoadExit): CommandError {
  const full = /no space left on device/i.test(exit.output);
  const detail = exit.output.trim() || (exit.signal ? `killed by ${exit.signal}` : '');
  return new CommandError(host, label, exit.code, detail, !full);
}

/** The error for a stream that did not reach its end: the stall, the dropped session, or what `docker load` said. */
function streamError(
  session: HostSession,
  label: string,
  bytes: number,
  err: unknown,
  reason: unknown,
  exit: LoadExit | undefined,
): HostError {
  const host = session.target.name;
  if (reason instanceof HostError) return reason;
  if (!session.connected) return new ConnectionError(host, `session dropped during ${label} after ${bytes} bytes`);
  if (exit && exit.code !== null && exit.code !== 0) return loadError(host, label, exit);
  const message = err instanceof Error ? err.message : String(err);
  return new CommandError(host, label, exit?.code ?? null, `image stream broke after ${bytes} bytes: ${message}`);
}

/**
 * Follows a tar stream as it passes through, unchanged: bytes per entry (header, content and padding) and the
 * content of `manifest.json`, which says which entries belong to which image. Handles both `docker save` layouts
 * (`<id>/layer.tar` and OCI `blobs/sha256/<digest>`).
 */
class TarTally extends Transform {
  readonly entries = new Map<string, number>();
  total = 0;
  manifest = '';
  private header = Buffer.alloc(0);
  private entry = '';
  private left = 0;
  private size = 0;
  private capture: Buffer[] | undefined;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, done: (err: null, chunk: Buffer) => void): void {
    this.total += chunk.length;
    let at = 0;
    while (at < chunk.length) {
      if (this.left > 0) {
        const n = Math.min(this.left, chunk.length - at);
        this.count(this.entry, n);
        this.capture?.push(chunk.subarray(at, at + n));
        this.left -= n;
        at += n;
        if (this.left === 0 && this.capture) {
          this.manifest = Buffer.concat(this.capture).subarray(0, this.size).toString('utf8');
          this.capture = undefined;
        }
        continue;
      }
      const n = Math.min(512 - this.header.length, chunk.length - at);
      this.header = Buffer.concat([this.header, chunk.subarray(at, at + n)]);
      at += n;
      if (this.header.length === 512) this.startEntry(this.header);
    }
    done(null, chunk);
  }

  private startEntry(h: Buffer): void {
    this.header = Buffer.alloc(0);
    const name = field(h, 0, 100);
    const prefix = field(h, 345, 155);
    this.entry = (prefix ? `${prefix}/${name}` : name).replace(/^\.\//, '');
    this.size = tarSize(h.subarray(124, 136));
    this.left = Math.ceil(this.size / 512) * 512;
    this.count(this.entry, 512);
    this.capture = this.entry === 'manifest.json' && this.size < 1 << 20 && this.left > 0 ? [] : undefined;
  }

  private count(entry: string, n: number): void {
    this.entries.set(entry, (this.entries.get(entry) ?? 0) + n);
  }
}

function field(h: Buffer, start: number, length: number): string {
  const raw = h.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? length : end).toString('utf8');
}

/** Octal ASCII, or base-256 when the top bit is set (entries over 8 GB). */
function tarSize(raw: Buffer): number {
  if ((raw[0]! & 0x80) !== 0) return raw.subarray(1).reduce((n, b) => n * 256 + b, raw[0]! & 0x7f);
  return parseInt(field(raw, 0, raw.length).trim() || '0', 8);
}

/** Which tar entries travel together: a legacy layer's directory, or one file. */
function groupOf(path: string): string {
  return path.startsWith('blobs/') ? path : (path.split('/')[0] ?? path);
}

/**
 * Each image's share of `wireBytes`: the entries its manifest lists (config and layers), each counted for the first
 * image that lists it; the rest (manifest, tar end) spread in proportion. Without a readable manifest, in
 * proportion to the images' local sizes.
 */
function attributeBytes(tally: TarTally, images: readonly { id: string; size: number }[], wireBytes: number): number[] {
  let raw = images.map((i) => i.size);
  try {
    const manifest = JSON.parse(tally.manifest) as { Config?: string; Layers?: string[] }[];
    const groups = new Map<string, number>();
    for (const [entry, n] of tally.entries) groups.set(groupOf(entry), (groups.get(groupOf(entry)) ?? 0) + n);
    const counted = new Set<string>();
    const own = images.map(({ id }) => {
      const hex = id.replace(/^sha256:/, '');
      const m = manifest.find((e) => e.Config?.includes(hex));
      if (!m?.Config) throw new Error(`${id} is not in the manifest`);
      return [m.Config, ...(m.Layers ?? [])].reduce((sum, path) => {
        const g = groupOf(path);
        if (counted.has(g)) return sum;
        counted.add(g);
        return sum + (groups.get(g) ?? 0);
      }, 0);
    });
    if (own.some((n) => n > 0)) raw = own;
  } catch {
    // No manifest seen (an unexpected layout): the local sizes below are the best estimate.
  }
  const weight = raw.reduce((a, b) => a + b, 0) || 1;
  const shares = raw.map((n) => Math.floor((n / weight) * wireBytes));
  shares[0]! += wireBytes - shares.reduce((a, b) => a + b, 0);
  return shares;
}
