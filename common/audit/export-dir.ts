/**
 * Audit export directories on disk: reading a chain (hashing every file as a stream), finding its head, and adding
 * an export atomically — written under a hidden partial name, then renamed to its sequence number, which fails
 * rather than overwrite when another export took that number first.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { validate } from '../../model/validate';
import {
  exportDirName,
  MANIFEST_FILE,
  manifestSchema,
  sequenceOf,
  serializeManifest,
  sha256Hex,
  type ChainSnapshot,
  type ExportSnapshot,
  type Manifest,
} from './manifest';

/** Prefix of the directory an export is written into before it is renamed into place. */
const PARTIAL_PREFIX = '.partial-';
/** A partial export untouched this long was left by a writer that died; a live one adds a file far more often. */
const STALE_PARTIAL_MS = 3_600_000;

/** The chain directory's newest export, or the manifest an export was told to link to. */
export interface ChainHead {
  /** Directory name of that export (`000007`). */
  readonly name: string;
  readonly manifestSha256: string;
  readonly manifest: Manifest;
}

/** A problem with the chain that an export must not build on (an unreadable head); not retryable. */
export class AuditChainError extends Error {
  override readonly name = 'AuditChainError';
}

async function sha256OfFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function readExport(dir: string, name: string): Promise<ExportSnapshot> {
  const files = new Map<string, { sha256: string; bytes: number }>();
  const others: string[] = [];
  let manifest: Uint8Array | undefined;
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    if (!entry.isFile()) others.push(entry.name);
    else if (entry.name === MANIFEST_FILE) manifest = await readFile(join(dir, entry.name));
    else {
      const path = join(dir, entry.name);
      files.set(entry.name, { sha256: await sha256OfFile(path), bytes: (await stat(path)).size });
    }
  }
  return { name, files, others, ...(manifest ? { manifest } : {}) };
}

/**
 * Reads a chain directory (export directories `NNNNNN/`, anything else reported as extra), or a single export
 * directory when `dir` itself holds a manifest.json.
 * @throws when `dir` cannot be read.
 */
export async function readChain(dir: string): Promise<ChainSnapshot> {
  const entries = await readdir(dir, { withFileTypes: true });
  if (entries.some((e) => e.isFile() && e.name === MANIFEST_FILE)) {
    return { exports: [await readExport(dir, '.')], extras: [] };
  }
  const exports: ExportSnapshot[] = [];
  const extras: string[] = [];
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    if (e.isDirectory() && sequenceOf(e.name) !== undefined) exports.push(await readExport(join(dir, e.name), e.name));
    else extras.push(e.name);
  }
  exports.sort((a, b) => (sequenceOf(a.name) ?? 0) - (sequenceOf(b.name) ?? 0));
  return { exports, extras };
}

/**
 * Reads a manifest file for linking: its parsed content and the SHA-256 of its bytes.
 * @throws AuditChainError when it is not a valid manifest.
 */
export async function readManifestFile(path: string): Promise<ChainHead> {
  const bytes = await readFile(path);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new AuditChainError(`${path} is not JSON: the chain cannot be continued from it`);
  }
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) throw new AuditChainError(`${path} is not a valid export manifest: ${parsed.error.message}`);
  return { name: basename(dirname(path)), manifestSha256: sha256Hex(bytes), manifest: parsed.data };
}

/**
 * The newest export in a chain directory (highest sequence number), or undefined when there is none.
 * @throws AuditChainError when its manifest is missing or unreadable: a new export would link to garbage.
 */
export async function chainHead(dir: string): Promise<ChainHead | undefined> {
  let names: string[];
  try {
    names = (await readdir(dir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const newest = names
    .filter((n) => sequenceOf(n) !== undefined)
    .sort((a, b) => (sequenceOf(a) ?? 0) - (sequenceOf(b) ?? 0))
    .at(-1);
  if (!newest) return undefined;
  try {
    return await readManifestFile(join(dir, newest, MANIFEST_FILE));
  } catch (err) {
    if (err instanceof AuditChainError) throw err;
    throw new AuditChainError(`${join(dir, newest)} has no readable ${MANIFEST_FILE}; verify the chain first`);
  }
}

/** Where an export is being written; `add` a file, then `commit` the manifest or `abort`. */
export interface ExportWriter {
  add(file: string, content: string): Promise<{ sha256: string; bytes: number }>;
  /** Writes manifest.json and moves the export into place. @returns its directory and manifest hash. */
  commit(manifest: Manifest): Promise<{ exportDir: string; manifestSha256: string }>;
  abort(): Promise<void>;
}

/**
 * Starts export `sequence` in `dir` (created if missing). Partial exports left by a writer that died are removed.
 * @throws AuditChainError at commit when export `sequence` appeared meanwhile (another export ran at once).
 */
export async function startExport(dir: string, sequence: number): Promise<ExportWriter> {
  await mkdir(dir, { recursive: true });
  for (const e of await readdir(dir)) {
    if (!e.startsWith(PARTIAL_PREFIX)) continue;
    const age = Date.now() - (await stat(join(dir, e))).mtimeMs;
    if (age > STALE_PARTIAL_MS) await rm(join(dir, e), { recursive: true, force: true });
  }
  const partial = await mkdtemp(join(dir, PARTIAL_PREFIX));
  return {
    async add(file, content) {
      const bytes = Buffer.from(content, 'utf8');
      await writeFile(join(partial, file), bytes, { flag: 'wx', mode: 0o640 });
      return { sha256: sha256Hex(bytes), bytes: bytes.length };
    },
    async commit(manifest) {
      const text = serializeManifest(validate(manifestSchema, manifest, 'audit export manifest'));
      await writeFile(join(partial, MANIFEST_FILE), text, { flag: 'wx', mode: 0o640 });
      const exportDir = join(dir, exportDirName(sequence));
      try {
        await rename(partial, exportDir);
      } catch (err) {
        await rm(partial, { recursive: true, force: true });
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOTEMPTY' || code === 'EEXIST') {
          throw new AuditChainError(`${exportDir} appeared while exporting: another export ran at the same time`);
        }
        throw err;
      }
      return { exportDir, manifestSha256: sha256Hex(text) };
    },
    async abort() {
      await rm(partial, { recursive: true, force: true });
    },
  };
}
