/**
 * The compiled CLI remembers the last spec it validated (every command reads its spec through here): parsing the YAML and checking it against the schema takes
 * about a tenth of a second of every command's start, for a file that rarely changes between two commands. The entry
 * is keyed by the spec's bytes, its absolute path (relative identity files resolve against it) and the CLI build (a
 * new build brings a new schema), and lives beside the spec in `.steward/cache/` (0700, file 0600, one entry per spec
 * path). Any doubt — no build id (run from the TypeScript sources), an entry that does not match, is not the
 * operator's own or is writable by others, does not parse — means the spec is loaded and checked in full.
 * Only valid specs are remembered: a bad one fails the same way every time.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { LoadedSpec } from './spec-file';
import type { Spec } from '../model/schema';

declare const STEWARD_CLI_BUILD: string | undefined;
/** Set by scripts/build-cli.mjs to a fresh id per build; undefined when running from the sources. */
export const CLI_BUILD = typeof STEWARD_CLI_BUILD === 'string' ? STEWARD_CLI_BUILD : undefined;

/** Where the entry for the spec at `absolute` lives. */
export function specCacheFile(absolute: string): string {
  const name = createHash('sha256').update(absolute).digest('hex').slice(0, 16);
  return join(dirname(absolute), '.steward', 'cache', `spec-${name}.json`);
}

/** {@link loadSpec}'s result, from the cache when the entry matches. */
export async function loadSpecCached(path: string, build: string | undefined = CLI_BUILD): Promise<LoadedSpec> {
  const load = async () => (await import('./spec-file')).loadSpec(path);
  if (!build) return load();
  const absolute = resolve(path);
  let bytes: Buffer;
  try {
    bytes = await readFile(absolute);
  } catch {
    return load(); // its error, as loadSpec words it
  }
  const key = createHash('sha256').update(`${build}\0${absolute}\0`).update(bytes).digest('hex');
  const file = specCacheFile(absolute);
  const hit = await readEntry(file, key);
  if (hit) return { spec: hit, path: absolute };
  const loaded = await load();
  await writeEntry(file, key, loaded.spec).catch(() => undefined); // a read-only folder only costs the speed-up
  return loaded;
}

async function readEntry(file: string, key: string): Promise<Spec | undefined> {
  try {
    const st = await stat(file);
    if (!st.isFile() || (st.mode & 0o022) !== 0 || (process.getuid && st.uid !== process.getuid())) return undefined;
    const entry = JSON.parse(await readFile(file, 'utf8')) as { key?: unknown; spec?: unknown };
    return entry.key === key && entry.spec && typeof entry.spec === 'object' ? (entry.spec as Spec) : undefined;
  } catch {
    return undefined;
  }
}

async function writeEntry(file: string, key: string, spec: Spec): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify({ key, spec }), { mode: 0o600 });
  await rename(tmp, file);
}
