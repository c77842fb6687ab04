/**
 * The local version store: per host and secret, the versions rotation made and their stages (pending, current,
 * previous), on the worker's disk, encrypted. One file per host and secret (one rotation of a pair runs at a time,
 * so no two writers share a file), written atomically, mode 0600 in 0700 directories.
 *
 *   $STEWARD_SECRETS_STORE (default .steward/secrets)/<host>/<secret>.json
 *
 * Each file is AES-256-GCM over the JSON record, with a key derived (HKDF-SHA256) from the payload codec's key ring —
 * the key the worker already needs — and the host and secret as additional data, so a file cannot be passed off as
 * another pair's. The first codec key encrypts, every key decrypts, and each write re-encrypts with the first: the
 * store follows a codec key rotation by itself.
 *
 * What it holds: version ids, stages, times, SHA-256 fingerprints and, for external secrets only, the values of the
 * pending, current and previous versions (so a rollback never depends on the operator's source still giving the old
 * value). Generated values never leave their host, so the store never sees them: it keeps what redaction needs
 * instead, the hashes of each generated value seen on the host and of its first and last characters. Uses node: modules: workers only.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { CodecKeyError } from '../codec/errors';
import { keyRingFromEnv, KEY_FILE_ENV, KEYS_ENV, type KeyRing } from '../codec/keys';
import { resourceNameSchema } from '../model/schema';
import { VERSION_ID } from '../model/rotation';
import { validate } from '../model/validate';
import { secretRedactor, type SecretShape } from './redact';

export const STORE_DIR_ENV = 'STEWARD_SECRETS_STORE';
export const DEFAULT_STORE_DIR = '.steward/secrets';

const FORMAT = 'steward-secret-store/v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** Versions kept in a record besides the staged ones (ids, times and outcomes only; no values). */
const HISTORY = 20;
/** Generated values' fingerprints kept per record, newest last. */
const FINGERPRINTS = 16;

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

const stageSchema = z.enum(['pending', 'current', 'previous']);

export const secretVersionSchema = z.strictObject({
  id: z.string().regex(VERSION_ID, 'must be a version id'),
  createdAt: z.iso.datetime(),
  /** Where the value came from: made on the host, read from the operator's source, or found live on the host. */
  origin: z.enum(['generated', 'external', 'adopted']),
  /** SHA-256 (hex) of the value; absent until the host confirmed the version file. */
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  /** External secrets' values, while the version holds a stage. */
  value: z.string().optional(),
  stages: z.array(stageSchema),
  /** When the host's live file switched to this version. */
  liveAt: z.iso.datetime().optional(),
  /** How a version without stages ended. */
  outcome: z.enum(['rolled-back', 'deprecated', 'discarded']).optional(),
  reason: z.string().max(2000).optional(),
});
export type SecretVersion = z.infer<typeof secretVersionSchema>;

export const secretRecordSchema = z.strictObject({
  host: resourceNameSchema,
  secret: resourceNameSchema,
  versions: z.array(secretVersionSchema),
  /** When a rotation last finished (for `rotate --due` and the schedules). */
  rotatedAt: z.iso.datetime().optional(),
  /**
   * A generated secret's shape: with the fingerprints, what lets any worker's redactor recognise its values without
   * ever having seen them ({@link SecretStore.preload}).
   */
  shape: z.strictObject({ length: z.number().int().min(8).max(512), alphabet: z.enum(['base62', 'hex']) }).optional(),
  /**
   * Generated values seen on the host (by deploy or rotation): SHA-256 of each, and of its first and last
   * `EDGE_LENGTH` characters, so a redactor finds one cut short. The newest {@link FINGERPRINTS}.
   */
  fingerprints: z.array(z.strictObject({ sha256: sha256Hex, head: sha256Hex, tail: sha256Hex })).optional(),
});
export type SecretRecord = z.infer<typeof secretRecordSchema>;
/** A generated value as the host reports it: its SHA-256 and that of its edges. */
export type GeneratedFingerprint = NonNullable<SecretRecord['fingerprints']>[number];

const fileSchema = z.strictObject({
  format: z.literal(FORMAT),
  keyId: z.string().min(1),
  iv: z.base64(),
  data: z.base64(),
});

/** A store file that cannot be read: its key is not in the ring, it was altered, or it belongs to another pair. */
export class SecretStoreUnreadable extends Error {
  override readonly name = 'SecretStoreUnreadable';
  readonly retryable = false;
}

/** The version with `stage`, if any. */
export function staged(record: SecretRecord, stage: 'pending' | 'current' | 'previous'): SecretVersion | undefined {
  return record.versions.find((v) => v.stages.includes(stage));
}

export class SecretStore {
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(
    readonly dir: string,
    private readonly ring: KeyRing,
  ) {}

  /**
   * The store the environment names: `STEWARD_SECRETS_STORE` (default `.steward/secrets` under the working
   * directory), encrypted with keys derived from the codec keys (`STEWARD_CODEC_KEY_FILE` / `STEWARD_CODEC_KEYS`).
   * @throws CodecKeyError when there are no codec keys.
   */
  static async fromEnv(env: NodeJS.ProcessEnv = process.env): Promise<SecretStore> {
    const ring = await keyRingFromEnv(env);
    if (!ring) {
      throw new CodecKeyError(
        `the secret version store is encrypted with keys derived from the codec keys: set ${KEY_FILE_ENV} or ${KEYS_ENV} for the worker`,
      );
    }
    return new SecretStore(resolve(env[STORE_DIR_ENV] || DEFAULT_STORE_DIR), ring);
  }

  path(host: string, secret: string): string {
    return join(this.dir, resourceNameSchema.parse(host), `${resourceNameSchema.parse(secret)}.json`);
  }

  /**
   * The record of a host's secret; an empty one when there is none yet. Remembers the values it holds (and the
   * fingerprints of generated ones) with the worker's redactor.
   * @throws SecretStoreUnreadable when the file cannot be decrypted or parsed.
   */
  async read(host: string, secret: string): Promise<SecretRecord> {
    const file = this.path(host, secret);
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { host, secret, versions: [] };
      throw err;
    }
    const record = this.decrypt(host, secret, text, file);
    for (const v of record.versions) if (v.value) secretRedactor.remember(secret, v.value);
    return record;
  }

  /**
   * Teaches the worker's redactor every secret the store knows, so redaction does not depend on which worker process
   * handled a value: the values of external secrets, and the fingerprints of generated ones (with their shape).
   * Records it cannot read are skipped. Returns how many records it read.
   */
  async preload(): Promise<number> {
    let read = 0;
    const hosts = await readdir(this.dir, { withFileTypes: true }).catch(() => []);
    for (const h of hosts) {
      if (!h.isDirectory() || !resourceNameSchema.safeParse(h.name).success) continue;
      const files = await readdir(join(this.dir, h.name)).catch(() => [] as string[]);
      for (const f of files) {
        const secret = f.replace(/\.json$/, '');
        if (!f.endsWith('.json') || !resourceNameSchema.safeParse(secret).success) continue;
        const record = await this.read(h.name, secret).catch(() => undefined);
        if (!record) continue;
        read++;
        if (!record.shape) continue;
        for (const v of record.versions) {
          if (v.sha256) secretRedactor.rememberFingerprint(secret, v.sha256, record.shape);
        }
        for (const f of record.fingerprints ?? [])
          secretRedactor.rememberFingerprint(secret, f.sha256, record.shape, f);
      }
    }
    return read;
  }

  /**
   * Keeps the fingerprints of generated values of a host's secret that the record does not hold yet (with the
   * secret's shape), for every later worker's redactor. Writes nothing when it knows them all.
   */
  async keepFingerprints(
    host: string,
    secret: string,
    shape: SecretShape,
    seen: readonly GeneratedFingerprint[],
  ): Promise<void> {
    const known = (r: SecretRecord) => new Set((r.fingerprints ?? []).map((f) => f.sha256));
    const sameShape = (r: SecretRecord) => r.shape?.length === shape.length && r.shape.alphabet === shape.alphabet;
    const current = await this.read(host, secret);
    if (sameShape(current) && seen.every((f) => known(current).has(f.sha256))) return;
    await this.update(host, secret, (r) => {
      const have = known(r);
      const fresh = seen.filter((f) => !have.has(f.sha256));
      const fingerprints = [...(r.fingerprints ?? []), ...fresh].slice(-FINGERPRINTS);
      return { ...r, shape: { length: shape.length, alphabet: shape.alphabet }, fingerprints };
    });
  }

  /**
   * Applies `change` to the pair's record and writes it atomically; calls for one pair run one after another.
   * Versions without a stage lose their value and the oldest of them are dropped.
   */
  async update(host: string, secret: string, change: (r: SecretRecord) => SecretRecord): Promise<SecretRecord> {
    const key = `${host}/${secret}`;
    const before = this.locks.get(key) ?? Promise.resolve();
    const next = before
      .catch(() => undefined)
      .then(async () => {
        const record = prune(change(await this.read(host, secret)));
        await this.write(record);
        return record;
      });
    this.locks.set(key, next);
    try {
      return await next;
    } finally {
      if (this.locks.get(key) === next) this.locks.delete(key);
    }
  }

  private async write(record: SecretRecord): Promise<void> {
    const checked = validate(secretRecordSchema, record, `secret store record ${record.host}/${record.secret}`);
    const file = this.path(checked.host, checked.secret);
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    await chmod(this.dir, 0o700).catch(() => undefined);
    const tmp = `${file}.${randomBytes(4).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, this.encrypt(checked), { mode: 0o600 });
      await rename(tmp, file);
    } finally {
      await rm(tmp, { force: true });
    }
  }

  private encrypt(record: SecretRecord): string {
    const { id, key } = this.ring.current;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', deriveKey(key), iv);
    cipher.setAAD(aad(record.host, record.secret));
    const data = Buffer.concat([cipher.update(JSON.stringify(record), 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${JSON.stringify({ format: FORMAT, keyId: id, iv: iv.toString('base64'), data: data.toString('base64') })}\n`;
  }

  private decrypt(host: string, secret: string, text: string, file: string): SecretRecord {
    let envelope: z.infer<typeof fileSchema>;
    try {
      envelope = fileSchema.parse(JSON.parse(text));
    } catch {
      throw new SecretStoreUnreadable(`${file} is not a steward secret store file`);
    }
    const codecKey = this.ring.find(envelope.keyId);
    if (!codecKey) {
      throw new SecretStoreUnreadable(
        `${file} was encrypted with a key derived from codec key "${envelope.keyId}", which is not in the key ring (${this.ring.ids.join(', ')})`,
      );
    }
    const data = Buffer.from(envelope.data, 'base64');
    let plain: string;
    try {
      const decipher = createDecipheriv('aes-256-gcm', deriveKey(codecKey.key), Buffer.from(envelope.iv, 'base64'));
      decipher.setAAD(aad(host, secret));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      plain = Buffer.concat([decipher.update(data.subarray(0, data.length - TAG_BYTES)), decipher.final()]).toString(
        'utf8',
      );
    } catch {
      throw new SecretStoreUnreadable(
        `${file} failed authentication: it was altered or belongs to another host or secret`,
      );
    }
    return validate(secretRecordSchema, JSON.parse(plain), file);
  }
}

/**
 * A store opened on first use (`given`, or {@link SecretStore.fromEnv}); a failed opening is tried again next time.
 */
export function lazyStore(given?: SecretStore): () => Promise<SecretStore> {
  let opened: Promise<SecretStore> | undefined;
  return () => {
    if (given) return Promise.resolve(given);
    opened ??= SecretStore.fromEnv();
    opened.catch(() => (opened = undefined));
    return opened;
  };
}

/** The store's own AES key, derived from a codec key: never the codec key itself. */
function deriveKey(codecKey: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', codecKey, Buffer.alloc(0), 'steward secret store v1', 32));
}

function aad(host: string, secret: string): Buffer {
  return Buffer.from(`${FORMAT}\n${host}\n${secret}`);
}

/** Unstaged versions keep no value; only the newest {@link HISTORY} of them are kept. */
function prune(record: SecretRecord): SecretRecord {
  const stagedVersions = record.versions.filter((v) => v.stages.length > 0);
  const rest = record.versions
    .filter((v) => v.stages.length === 0)
    .map(({ value: _value, ...v }) => v)
    .slice(-HISTORY);
  const order = new Map(record.versions.map((v, i) => [v.id, i]));
  const versions = [...stagedVersions, ...rest].sort((a, b) => order.get(a.id)! - order.get(b.id)!);
  return { ...record, versions };
}
