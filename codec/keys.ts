/**
 * The codec's key ring: AES-256 keys with ids, from a key file or the environment. The first key encrypts, every
 * key decrypts, so the codec key itself can rotate: add a new key in front, and histories written with the older
 * keys still decode.
 *
 * Key file, either one `id=base64key` per line (`#` comments and blank lines allowed; what `steward codec keygen`
 * writes), or JSON `{ "keys": [{ "id": "…", "key": "base64" }] }`. Its mode must give group and others nothing.
 * Environment: `STEWARD_CODEC_KEY_FILE` (a key file) or `STEWARD_CODEC_KEYS` (`id=base64key` entries separated by
 * commas or whitespace), not both.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { validate, ValidationError, type ValidationIssue } from '../model/validate';
import { CodecKeyError } from './errors';

/** AES-256: 32-byte keys. */
export const KEY_BYTES = 32;

export const KEY_FILE_ENV = 'STEWARD_CODEC_KEY_FILE';
export const KEYS_ENV = 'STEWARD_CODEC_KEYS';

export const keyIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'must be 1–64 letters, digits, ".", "_" or "-", starting alphanumeric')
  .meta({ title: 'key id', description: 'Stored in each payload as `encryption-key-id`; not secret.' });

export const keyEntrySchema = z
  .object({
    id: keyIdSchema,
    key: z
      .string()
      .refine(
        (s) => /^[A-Za-z0-9+/]+={0,2}$/.test(s) && Buffer.from(s, 'base64').length === KEY_BYTES,
        `must be ${KEY_BYTES} random bytes in base64`,
      )
      .meta({ title: 'key', description: `${KEY_BYTES} random bytes, base64` }),
  })
  .strict();
export type KeyEntry = z.infer<typeof keyEntrySchema>;

export const keyFileSchema = z
  .object({ keys: z.array(keyEntrySchema).min(1, 'needs at least one key') })
  .strict()
  .meta({ title: 'steward codec key file', description: 'The first key encrypts; every key decrypts.' });

/** One AES-256 key and its id. */
export interface CodecKey {
  readonly id: string;
  readonly key: Buffer;
}

/** Keys in order: `current` (the first) encrypts; any of them decrypts. Never empty, ids unique. */
export class KeyRing {
  private readonly byId: ReadonlyMap<string, CodecKey>;

  private constructor(readonly keys: readonly CodecKey[]) {
    this.byId = new Map(keys.map((k) => [k.id, k]));
  }

  /** @throws CodecKeyError when there is no key, an id repeats, or a key is not 32 bytes. */
  static of(keys: readonly CodecKey[], source = 'key ring'): KeyRing {
    if (keys.length === 0) throw new CodecKeyError(`${source} has no key`);
    const seen = new Set<string>();
    for (const k of keys) {
      if (seen.has(k.id)) throw new CodecKeyError(`${source} has key id ${k.id} twice`);
      if (k.key.length !== KEY_BYTES) throw new CodecKeyError(`${source}: key ${k.id} is not ${KEY_BYTES} bytes`);
      seen.add(k.id);
    }
    return new KeyRing([...keys]);
  }

  /** The key new payloads are encrypted with. */
  get current(): CodecKey {
    return this.keys[0]!;
  }

  get ids(): string[] {
    return this.keys.map((k) => k.id);
  }

  find(id: string): CodecKey | undefined {
    return this.byId.get(id);
  }
}

/** A new key with a fresh random id: `k<yyyymmdd>-<8 hex>`. */
export function generateKey(now: Date = new Date()): CodecKey {
  const day = now.toISOString().slice(0, 10).replaceAll('-', '');
  return { id: `k${day}-${randomBytes(4).toString('hex')}`, key: randomBytes(KEY_BYTES) };
}

/**
 * Parses key file text (JSON or `id=base64key` lines; `source` names it in errors).
 * @throws ValidationError listing every malformed entry; CodecKeyError for an empty ring or a repeated id.
 */
export function parseKeyRing(text: string, source: string): KeyRing {
  const trimmed = text.trim();
  let entries: KeyEntry[];
  if (trimmed.startsWith('{')) {
    let json: unknown;
    try {
      json = JSON.parse(trimmed);
    } catch (err) {
      throw new CodecKeyError(`${source} is not valid JSON: ${(err as Error).message}`);
    }
    entries = validate(keyFileSchema, json, source).keys;
  } else {
    entries = parseKeyLines(trimmed.split('\n'), source, (i) => `line ${i + 1}`);
  }
  return KeyRing.of(
    entries.map((e) => ({ id: e.id, key: Buffer.from(e.key, 'base64') })),
    source,
  );
}

function parseKeyLines(lines: readonly string[], source: string, where: (i: number) => string): KeyEntry[] {
  const entries: KeyEntry[] = [];
  const issues: ValidationIssue[] = [];
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const eq = line.indexOf('=');
    if (eq < 0) {
      issues.push({ path: where(i), message: 'must be id=base64key' });
      return;
    }
    const r = keyEntrySchema.safeParse({ id: line.slice(0, eq).trim(), key: line.slice(eq + 1).trim() });
    if (r.success) entries.push(r.data);
    else
      issues.push(...r.error.issues.map((is) => ({ path: `${where(i)} ${String(is.path[0])}`, message: is.message })));
  });
  if (issues.length > 0) throw new ValidationError(source, issues);
  if (entries.length === 0) throw new CodecKeyError(`${source} has no key`);
  return entries;
}

/**
 * Reads a key file. Read-only.
 * @throws CodecKeyError when it is missing, not a regular file, or readable or writable by group or others (the
 * message says how to fix it); ValidationError when an entry is malformed.
 */
export async function loadKeyFile(path: string): Promise<KeyRing> {
  const file = resolve(path);
  await assertPrivateFile(file, 'codec key file');
  return parseKeyRing(await readFile(file, 'utf8'), `codec key file ${file}`);
}

/**
 * Refuses a secret file that group or others may read or write. Used for key files and the codec server's token.
 * @throws CodecKeyError naming the file, its mode and the fix.
 */
export async function assertPrivateFile(file: string, what: string): Promise<void> {
  let st;
  try {
    st = await stat(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CodecKeyError(
      `${what} ${file} ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}`,
      file,
    );
  }
  if (!st.isFile()) throw new CodecKeyError(`${what} ${file} is not a regular file`, file);
  const mode = st.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new CodecKeyError(
      `${what} ${file} has mode ${mode.toString(8).padStart(4, '0')}: group and others must have no access ` +
        `(chmod 600 ${file})`,
      file,
    );
  }
}

/**
 * The key ring the environment names: `STEWARD_CODEC_KEYS` inline, or the file `STEWARD_CODEC_KEY_FILE`; undefined
 * when neither is set. Read-only.
 * @throws CodecKeyError when both are set, or as {@link loadKeyFile}; ValidationError for a malformed entry.
 */
export async function keyRingFromEnv(env: NodeJS.ProcessEnv = process.env): Promise<KeyRing | undefined> {
  const inline = env[KEYS_ENV]?.trim();
  const file = env[KEY_FILE_ENV]?.trim();
  if (inline && file) throw new CodecKeyError(`set ${KEYS_ENV} or ${KEY_FILE_ENV}, not both`);
  if (file) return loadKeyFile(file);
  if (!inline) return undefined;
  const parts = inline.split(/[\s,]+/).filter(Boolean);
  const entries = parseKeyLines(parts, KEYS_ENV, (i) => `entry ${i + 1}`);
  return KeyRing.of(
    entries.map((e) => ({ id: e.id, key: Buffer.from(e.key, 'base64') })),
    KEYS_ENV,
  );
}

/** Key file text in the line format, current key first. */
export function formatKeyFile(ring: KeyRing): string {
  return [
    '# steward payload codec keys. The first key encrypts new payloads; every key decrypts.',
    '# Keep a key here while any history you may read was written with it. Mode 0600.',
    ...ring.keys.map((k) => `${k.id}=${k.key.toString('base64')}`),
    '',
  ].join('\n');
}

/**
 * Adds `key` (default: a new one) in front of the key file's ring, so it encrypts from now on while the older keys
 * still decrypt; creates the file (mode 0600, directory 0700) when there is none. Replaces the file atomically.
 * Not idempotent: each call adds a key. Processes that loaded the old ring keep encrypting with the old key until
 * restarted.
 * @throws CodecKeyError as {@link loadKeyFile}, or when the key id is already in the file.
 */
export async function addKeyToFile(
  path: string,
  key: CodecKey = generateKey(),
): Promise<{ file: string; key: CodecKey; ring: KeyRing; created: boolean }> {
  const file = resolve(path);
  const existing = await fileExists(file);
  const old = existing ? await loadKeyFile(file) : undefined;
  if (old?.find(key.id)) throw new CodecKeyError(`codec key file ${file} already has key id ${key.id}`, file);
  const ring = KeyRing.of([key, ...(old?.keys ?? [])], `codec key file ${file}`);
  await writePrivateFile(file, formatKeyFile(ring), !existing);
  return { file, key, ring, created: !existing };
}

/**
 * Makes sure a key file exists: creates one with a single new key (mode 0600) when it is missing, else checks it
 * as {@link loadKeyFile} does. Safe to call concurrently: one caller creates, the others read. For the dev server
 * and tests, which keep their key under `.steward/`.
 */
export async function ensureKeyFile(path: string): Promise<{ file: string; ring: KeyRing; created: boolean }> {
  const file = resolve(path);
  const ring = KeyRing.of([generateKey()]);
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(file, formatKeyFile(ring), { mode: 0o600, flag: 'wx' });
    return { file, ring, created: true };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return { file, ring: await loadKeyFile(file), created: false };
}

/** Writes a secret file with mode 0600: new files exclusively, existing ones through a temporary file and rename. */
export async function writePrivateFile(file: string, text: string, create: boolean): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  if (create) {
    await writeFile(file, text, { mode: 0o600, flag: 'wx' });
    return;
  }
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, text, { mode: 0o600, flag: 'wx' });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

async function fileExists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw err;
  }
}
