/**
 * Which layers of an image a host lacks, and the docker-load archive that brings it the rest. Pure: image configs,
 * `docker save` manifests, chain IDs, the host's answers, no I/O.
 *
 * A layer is known by two digests: its diff ID (the SHA-256 of its uncompressed tar, listed in the image config's
 * `rootfs.diff_ids`) and the digest of the file `docker save` wrote for it (the same for an uncompressed layer, the
 * compressed blob's for an engine that keeps layers compressed). An engine holds a layer by its chain ID, the
 * digest of the diff IDs from the bottom layer up to it, so the same diff ID on another parent is another layer.
 * `docker load` looks each layer of an image up by chain ID and reads the layer's file only when it lacks it: an
 * archive may leave out the files of layers the host holds.
 */
import { createHash } from 'node:crypto';
import { UnexpectedHostOutput } from '../host/errors';

export const DIGEST = /^sha256:[0-9a-f]{64}$/;
export const HEX = /^[0-9a-f]{64}$/;

/** One layer of a cached image: its diff ID, and the digest and size of the file that carries it. */
export interface LayerBlob {
  readonly diffId: string;
  /** `sha256:<hex>` of the layer file as saved (staged on the host under `<hex>`). */
  readonly digest: string;
  readonly size: number;
}

/** An image to bring onto a host: its ID (= digest of its config), the tags to give it, its layers bottom-up. */
export interface ImageLayers {
  readonly id: string;
  readonly tags: readonly string[];
  readonly layers: readonly LayerBlob[];
  /** `LayerSources` of the saved manifest (foreign layers), carried over unchanged. */
  readonly layerSources?: Record<string, unknown>;
}

/** `sha256:abc…` → `abc…`. */
export function hexOf(digest: string): string {
  if (!DIGEST.test(digest)) throw new Error(`not a sha256 digest: ${digest}`);
  return digest.slice('sha256:'.length);
}

export function sha256(data: Buffer | string): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The chain ID of each layer: the first layer's diff ID, then sha256(`<parent chain ID> <diff ID>`). */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diffId of diffIds) {
    const parent = out.at(-1);
    out.push(parent === undefined ? diffId : sha256(`${parent} ${diffId}`));
  }
  return out;
}

/** One entry of a `docker save` manifest.json. */
export interface SaveManifestEntry {
  readonly Config: string;
  readonly Layers: readonly string[];
  readonly LayerSources?: Record<string, unknown>;
}

/**
 * The single entry of the manifest of a `docker save` of one image.
 * @throws Error when it is not exactly one entry with a config path and a list of layer paths.
 */
export function parseSaveManifest(text: string): SaveManifestEntry {
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed) || parsed.length !== 1) throw new Error('manifest.json is not a one-image manifest');
  const m = parsed[0] as Record<string, unknown>;
  if (typeof m.Config !== 'string' || m.Config === '') throw new Error('manifest.json has no Config');
  if (!Array.isArray(m.Layers) || !m.Layers.every((l) => typeof l === 'string' && l !== ''))
    throw new Error('manifest.json has no list of Layers');
  const sources = m.LayerSources;
  if (sources !== undefined && sources !== null && (typeof sources !== 'object' || Array.isArray(sources)))
    throw new Error('manifest.json has malformed LayerSources');
  return {
    Config: m.Config,
    Layers: m.Layers as string[],
    ...(sources ? { LayerSources: sources as Record<string, unknown> } : {}),
  };
}

/**
 * The diff IDs of an image config (`rootfs.diff_ids`), bottom layer first.
 * @throws Error when the config has none or one is not a sha256 digest.
 */
export function configDiffIds(config: Buffer): string[] {
  const parsed = JSON.parse(config.toString('utf8')) as { rootfs?: { type?: unknown; diff_ids?: unknown } };
  const ids = parsed.rootfs?.diff_ids ?? [];
  if (parsed.rootfs?.type !== 'layers' || !Array.isArray(ids) || !ids.every((d) => typeof d === 'string'))
    throw new Error('image config has no rootfs of type layers');
  const bad = ids.find((d) => !DIGEST.test(d));
  if (bad !== undefined) throw new Error(`image config lists diff ID ${JSON.stringify(bad)}`);
  return ids as string[];
}

/** What a host holds and lacks of the images to send. */
export interface LayerPlan {
  /** Per image, in order: layers the host holds (by chain ID) and layers it lacks. */
  readonly images: readonly { readonly id: string; readonly reused: number; readonly missing: readonly LayerBlob[] }[];
  /** The layer files to stage on the host: each missing file once, in the order the images need them. */
  readonly blobs: readonly LayerBlob[];
}

/** Chooses the layer files the host needs: those of layers whose chain ID it lacks, each file once. */
export function planLayers(images: readonly ImageLayers[], present: ReadonlySet<string>): LayerPlan {
  const blobs = new Map<string, LayerBlob>();
  const out = images.map((image) => {
    const chains = chainIds(image.layers.map((l) => l.diffId));
    const missing = image.layers.filter((_, i) => !present.has(chains[i]!));
    for (const l of missing) if (!blobs.has(l.digest)) blobs.set(l.digest, l);
    return { id: image.id, reused: image.layers.length - missing.length, missing };
  });
  return { images: out, blobs: [...blobs.values()] };
}

/**
 * The manifest.json of the archive the host loads: per image its config (`<id hex>.json`), its tags, and every
 * layer as the staged file `<digest hex>` — also the layers the host holds, whose files the archive leaves out.
 */
export function loadManifest(images: readonly ImageLayers[]): Buffer {
  return Buffer.from(
    JSON.stringify(
      images.map((image) => ({
        Config: `${hexOf(image.id)}.json`,
        RepoTags: [...image.tags],
        Layers: image.layers.map((l) => hexOf(l.digest)),
        ...(image.layerSources ? { LayerSources: image.layerSources } : {}),
      })),
    ),
  );
}

const LAYERS_LINE = /^(sha256:[0-9a-f]{64})((?: sha256:[0-9a-f]{64})*)$/;
const VANISHED = /^Error(?: response from daemon)?: No such (?:image|object): \S+$/;

/**
 * The chain IDs of every layer the host's engine holds, from `<image id> <diff id>…` lines (one per image, as
 * `docker image inspect --format '{{.Id}}{{range .RootFS.Layers}} {{.}}{{end}}'` prints them). An image removed
 * between listing and inspecting is skipped; every other line must match exactly.
 * @throws UnexpectedHostOutput on anything else.
 */
export function parseHostLayers(host: string, out: string): Set<string> {
  const present = new Set<string>();
  for (const line of out.split('\n')) {
    if (line === '' || VANISHED.test(line)) continue;
    const m = LAYERS_LINE.exec(line);
    if (!m) throw new UnexpectedHostOutput(host, `docker image inspect printed ${JSON.stringify(line.slice(0, 200))}`);
    const diffIds = m[2]!.split(' ').filter(Boolean);
    for (const chain of chainIds(diffIds)) present.add(chain);
  }
  return present;
}

/** Where a layer file stands in the host's staging directory when an upload starts. */
export type StagedState = { readonly have: true } | { readonly have: false; readonly offset: number };

/**
 * The staging handshake: one `have <hex>` (complete and verified) or `part <hex> <bytes already there>` line per
 * requested file, in any order, then `ready`.
 * @throws UnexpectedHostOutput on a line that is none of these, a file not asked for or answered twice, an offset past
 *   the file's size, or a file left unanswered.
 */
export function parseHandshake(host: string, lines: readonly string[], files: readonly LayerBlob[]) {
  const sizes = new Map(files.map((f) => [hexOf(f.digest), f.size]));
  const state = new Map<string, StagedState>();
  const refuse = (why: string) => new UnexpectedHostOutput(host, `image staging ${why}`);
  for (const line of lines) {
    const m = /^(?:have ([0-9a-f]{64})|part ([0-9a-f]{64}) (0|[1-9]\d{0,15}))$/.exec(line);
    if (!m) throw refuse(`printed ${JSON.stringify(line.slice(0, 200))}`);
    const hex = (m[1] ?? m[2])!;
    const size = sizes.get(hex);
    if (size === undefined || state.has(hex)) throw refuse(`answered for ${hex} unasked`);
    if (m[1]) state.set(hex, { have: true });
    else {
      const offset = Number(m[3]);
      if (offset > size) throw refuse(`reports ${offset} bytes of ${hex}, which has ${size}`);
      state.set(hex, { have: false, offset });
    }
  }
  const unanswered = [...sizes.keys()].filter((h) => !state.has(h));
  if (unanswered.length > 0) throw refuse(`did not answer for ${unanswered.join(', ')}`);
  return state;
}

/** The verdict on each file an upload appended to: `done` (complete, digest verified), `bad` (complete, wrong). */
export type StagedVerdict = 'done' | 'bad' | 'short';

/**
 * The upload's closing lines: `done <hex>`, `bad <hex>` or `short <hex> <bytes>` for files it appended to, in order.
 * @throws UnexpectedHostOutput on any other line or a file not being uploaded.
 */
export function parseVerdicts(host: string, lines: readonly string[], uploading: ReadonlySet<string>) {
  const out = new Map<string, StagedVerdict>();
  for (const line of lines) {
    const m = /^(done|bad|short) ([0-9a-f]{64})(?: (0|[1-9]\d{0,15}))?$/.exec(line);
    if (!m || (m[1] === 'short') !== (m[3] !== undefined) || !uploading.has(m[2]!) || out.has(m[2]!))
      throw new UnexpectedHostOutput(host, `image staging printed ${JSON.stringify(line.slice(0, 200))}`);
    out.set(m[2]!, m[1] as StagedVerdict);
  }
  return out;
}
