/**
 * The operator's side of image transfer: each image to send, extracted once from a `docker save` of the local engine
 * into a content-addressed cache, so that its manifest is known before choosing what to send and every layer file
 * can be read from any offset (a resumed upload starts where the host's copy ends).
 *
 * Layout under the cache directory (`$STEWARD_IMAGE_CACHE`, default `${XDG_CACHE_HOME:-~/.cache}/steward/images`,
 * mode 0700): `blobs/sha256/<hex>` the files of layers and configs, each named by the SHA-256 of its content, shared
 * by every image that has it; `index/<image id hex>.json` one image (its layers in order); `tmp/` files being
 * written. Every file is written under `tmp/` and renamed into place, so a reader sees whole files or none, and
 * concurrent callers (several workers, several activities) write identical content at worst twice. An index is
 * touched on every use; indexes unused for INDEX_TTL_MS, blobs no index names (after a grace period for writers in
 * flight) and leftovers in `tmp/` (a build killed mid-save) are pruned before and after each new entry. An entry
 * whose files are missing or differ is rebuilt.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type Docker from 'dockerode';
import { configDiffIds, DIGEST, hexOf, parseSaveManifest, sha256, type LayerBlob } from './image-layers';
import { readTar, resolveLink } from './image-tar';

/** An index unused this long is dropped (its blobs follow when no other index names them). */
export const INDEX_TTL_MS = 14 * 24 * 3_600_000;
/** Blobs and temporary files younger than this are never pruned: a concurrent caller may be about to name them. */
const GRACE_MS = 3_600_000;
/** Entries up to this size are held in memory while the save streams (configs, manifests, small layers). */
const SMALL_ENTRY = 1 << 20;
const MEMORY_LIMIT = 64 << 20;
const ALIVE_INTERVAL_MS = 1_000;

/** An image as the cache holds it. */
export interface CachedImage {
  readonly id: string;
  /** The image config, whose SHA-256 is `id`. */
  readonly config: Buffer;
  readonly layers: readonly LayerBlob[];
  readonly layerSources?: Record<string, unknown>;
}

/** What `docker save` returned is not the image asked for, or not an archive of one image: retrying will not help. */
export class SavedImageError extends Error {
  override readonly name = 'SavedImageError';
}

/** The cache directory: `$STEWARD_IMAGE_CACHE`, else `${XDG_CACHE_HOME:-~/.cache}/steward/images`. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.STEWARD_IMAGE_CACHE) return env.STEWARD_IMAGE_CACHE;
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'steward', 'images');
}

/** Builds in flight in this process, so that concurrent activities wanting one image save it once. */
const building = new Map<string, Promise<CachedImage>>();

export class ImageCache {
  constructor(readonly dir: string = defaultCacheDir()) {}

  /** Where the blob with `digest` lives. */
  blobPath(digest: string): string {
    return join(this.dir, 'blobs', 'sha256', hexOf(digest));
  }

  /**
   * The image with ID `id`, from the cache or saved from `local` into it. `alive` is called about once a second
   * while a save streams (a save of a large image takes a while).
   * @throws SavedImageError when the save is not an archive of that image; the save's own error, or TarFormatError,
   *   when it breaks off (nothing is left in the cache but blobs the next build overwrites).
   */
  async get(local: Docker, id: string, alive?: () => void): Promise<CachedImage> {
    if (!DIGEST.test(id)) throw new SavedImageError(`not an image ID: ${id}`);
    const cached = await this.read(id);
    if (cached) return cached;
    const key = `${this.dir}\0${id}`;
    let pending = building.get(key);
    if (!pending) {
      pending = this.build(local, id, alive).finally(() => building.delete(key));
      building.set(key, pending);
    }
    return pending;
  }

  /** The cached image, after checking that its config and every layer file are there; undefined when not. */
  async read(id: string): Promise<CachedImage | undefined> {
    const index = join(this.dir, 'index', `${hexOf(id)}.json`);
    let entry: IndexEntry;
    let config: Buffer;
    try {
      entry = parseIndex(await readFile(index, 'utf8'), id);
      config = await readFile(this.blobPath(id));
      if (sha256(config) !== id) return undefined;
      const diffIds = configDiffIds(config);
      if (diffIds.length !== entry.layers.length || entry.layers.some((l, i) => l.diffId !== diffIds[i]))
        return undefined;
      const sizes = await Promise.all(entry.layers.map((l) => stat(this.blobPath(l.digest)).then((s) => s.size)));
      if (sizes.some((size, i) => size !== entry.layers[i]!.size)) return undefined;
      const now = new Date();
      await utimes(index, now, now);
    } catch {
      return undefined;
    }
    return { id, config, layers: entry.layers, ...(entry.layerSources ? { layerSources: entry.layerSources } : {}) };
  }

  /**
   * Whether the blob `digest` is there with that digest; a damaged one is removed, so that the next `get` of an
   * image naming it saves the image again.
   */
  async verifyBlob(digest: string): Promise<boolean> {
    const path = this.blobPath(digest);
    const hash = createHash('sha256');
    try {
      for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
    } catch {
      return false;
    }
    if (`sha256:${hash.digest('hex')}` === digest) return true;
    await unlink(path).catch(() => undefined);
    return false;
  }

  /** Drops indexes unused for INDEX_TTL_MS, then blobs no index names, then stale temporary files. */
  async prune(now = Date.now()): Promise<void> {
    const indexDir = join(this.dir, 'index');
    const keep = new Set<string>();
    for (const name of await list(indexDir)) {
      const path = join(indexDir, name);
      const info = await stat(path).catch(() => undefined);
      if (!info) continue;
      const hex = /^([0-9a-f]{64})\.json$/.exec(name)?.[1];
      let entry: IndexEntry | undefined;
      try {
        entry = hex ? parseIndex(await readFile(path, 'utf8'), `sha256:${hex}`) : undefined;
      } catch {
        entry = undefined;
      }
      const stale = now - info.mtimeMs > (entry ? INDEX_TTL_MS : GRACE_MS);
      if (stale) await unlink(path).catch(() => undefined);
      else if (entry) for (const d of [entry.id, ...entry.layers.map((l) => l.digest)]) keep.add(hexOf(d));
    }
    const blobDir = join(this.dir, 'blobs', 'sha256');
    for (const name of await list(blobDir)) {
      if (keep.has(name)) continue;
      const info = await stat(join(blobDir, name)).catch(() => undefined);
      if (info && now - info.mtimeMs > GRACE_MS) await unlink(join(blobDir, name)).catch(() => undefined);
    }
    const tmpDir = join(this.dir, 'tmp');
    for (const name of await list(tmpDir)) {
      const info = await stat(join(tmpDir, name)).catch(() => undefined);
      if (info && now - info.mtimeMs > GRACE_MS) await rm(join(tmpDir, name), { force: true, recursive: true });
    }
  }

  private async build(local: Docker, id: string, alive?: () => void): Promise<CachedImage> {
    const tmpDir = join(this.dir, 'tmp');
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    await Promise.all(
      [tmpDir, join(this.dir, 'blobs', 'sha256'), join(this.dir, 'index')].map((d) =>
        mkdir(d, { recursive: true, mode: 0o700 }),
      ),
    );
    // Leftovers of builds that were killed (a worker lost mid-save) go before this one adds its own.
    await this.prune().catch(() => undefined);
    const files = new Map<string, { digest: string; size: number; data?: Buffer }>();
    const links = new Map<string, string>();
    let inMemory = 0;
    let lastAlive = Date.now();
    const tick = () => {
      if (alive && Date.now() - lastAlive >= ALIVE_INTERVAL_MS) {
        lastAlive = Date.now();
        alive();
      }
    };

    const source = await saveImage(local, id);
    try {
      for await (const entry of readTar(source as AsyncIterable<Buffer>)) {
        if (entry.type === 'symlink' || entry.type === 'hardlink') links.set(entry.name, resolveLink(entry));
        if (entry.type !== 'file') continue;
        if (entry.size <= SMALL_ENTRY && inMemory + entry.size <= MEMORY_LIMIT) {
          const chunks: Buffer[] = [];
          for await (const chunk of entry.body) chunks.push(chunk);
          const data = Buffer.concat(chunks);
          inMemory += data.length;
          files.set(entry.name, { digest: sha256(data), size: data.length, data });
        } else {
          files.set(entry.name, await this.spool(entry.body, entry.size, tick));
        }
        tick();
      }
    } finally {
      source.destroy();
    }

    const resolve = (name: string) => {
      let path = name.replace(/^(\.\/)+/, '');
      for (let hops = 0; links.has(path); hops++) {
        if (hops > 8) throw new SavedImageError(`docker save of ${id}: a link loop at ${name}`);
        path = links.get(path)!;
      }
      const file = files.get(path);
      if (!file) throw new SavedImageError(`docker save of ${id} has no file ${name}`);
      return file;
    };
    const manifestFile = files.get('manifest.json');
    if (!manifestFile) throw new SavedImageError(`docker save of ${id} has no manifest.json`);
    const manifestText = (manifestFile.data ?? (await readFile(this.blobPath(manifestFile.digest)))).toString('utf8');
    const manifest = saved(id, () => parseSaveManifest(manifestText));
    const configFile = resolve(manifest.Config);
    if (configFile.digest !== id)
      throw new SavedImageError(`docker save of ${id} returned the config of ${configFile.digest}`);
    const config = configFile.data ?? (await readFile(this.blobPath(configFile.digest)));
    const diffIds = saved(id, () => configDiffIds(config));
    if (diffIds.length !== manifest.Layers.length)
      throw new SavedImageError(
        `docker save of ${id} lists ${manifest.Layers.length} layer files for ${diffIds.length} layers`,
      );
    const layers = manifest.Layers.map((path, i) => {
      const f = resolve(path);
      return { diffId: diffIds[i]!, digest: f.digest, size: f.size, data: f.data };
    });
    for (const blob of [{ digest: id, data: config }, ...layers]) {
      if (blob.data) await this.writeAtomic(this.blobPath(blob.digest), blob.data);
    }
    const entry: IndexEntry = {
      version: 1,
      id,
      layers: layers.map(({ diffId, digest, size }) => ({ diffId, digest, size })),
      ...(manifest.LayerSources ? { layerSources: manifest.LayerSources } : {}),
    };
    await this.writeAtomic(join(this.dir, 'index', `${hexOf(id)}.json`), Buffer.from(JSON.stringify(entry)));
    await this.prune().catch(() => undefined);
    return { id, config, layers: entry.layers, ...(entry.layerSources ? { layerSources: entry.layerSources } : {}) };
  }

  /** Streams one entry into `tmp/`, hashing it, then renames it to its blob path. */
  private async spool(body: AsyncIterable<Buffer>, size: number, tick: () => void) {
    const tmp = join(this.dir, 'tmp', `blob-${randomBytes(8).toString('hex')}`);
    const hash = createHash('sha256');
    const file = await open(tmp, 'wx', 0o600);
    try {
      for await (const chunk of body) {
        hash.update(chunk);
        await file.write(chunk);
        tick();
      }
    } catch (err) {
      await file.close();
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await file.close();
    const digest = `sha256:${hash.digest('hex')}`;
    await rename(tmp, this.blobPath(digest));
    return { digest, size };
  }

  private async writeAtomic(path: string, data: Buffer): Promise<void> {
    const tmp = join(this.dir, 'tmp', `file-${randomBytes(8).toString('hex')}`);
    await writeFile(tmp, data, { mode: 0o600, flag: 'wx' });
    await rename(tmp, path).catch(async (err: unknown) => {
      await unlink(tmp).catch(() => undefined);
      throw err;
    });
  }
}

/** Runs a parser over saved content, turning what it refuses into a SavedImageError naming the image. */
function saved<T>(id: string, parse: () => T): T {
  try {
    return parse();
  } catch (err) {
    throw new SavedImageError(`docker save of ${id}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** `GET /images/get?names=<id>`: dockerode has it, its types not. */
function saveImage(local: Docker, id: string): Promise<Readable> {
  const docker = local as Docker & { getImages(opts: { names: string[] }): Promise<Readable> };
  return docker.getImages({ names: [id] });
}

interface IndexEntry {
  readonly version: 1;
  readonly id: string;
  readonly layers: readonly LayerBlob[];
  readonly layerSources?: Record<string, unknown>;
}

/** @throws Error unless `text` is an index entry for `id`. */
function parseIndex(text: string, id: string): IndexEntry {
  const e = JSON.parse(text) as Partial<IndexEntry>;
  const ok =
    e.version === 1 &&
    e.id === id &&
    Array.isArray(e.layers) &&
    e.layers.every(
      (l) =>
        typeof l === 'object' &&
        DIGEST.test(l.diffId) &&
        DIGEST.test(l.digest) &&
        Number.isSafeInteger(l.size) &&
        l.size >= 0,
    ) &&
    (e.layerSources === undefined || (typeof e.layerSources === 'object' && e.layerSources !== null));
  if (!ok) throw new Error(`not an image index for ${id}`);
  return e as IndexEntry;
}

async function list(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}
