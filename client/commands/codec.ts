/**
 * `steward codec keygen` (a new payload encryption key, in front of a key file's ring) and `steward codec-server`
 * (the Temporal UI's remote codec endpoint, until SIGINT/SIGTERM).
 */
import { addKeyToFile, KEY_FILE_ENV } from '../../codec/keys';
import { DEFAULT_UI_ORIGINS, loadToken, startCodecServer } from '../../codec/server';
import { loadCodecKeys } from '../../common/codec-keys';
import type { GlobalOptions } from '../context';
import { UsageError } from '../errors';

export interface KeygenResult {
  file: string;
  /** The new key's id; it encrypts from now on. */
  keyId: string;
  /** Every key id in the file, current first. */
  keys: string[];
  created: boolean;
}

/**
 * Adds a new key to the key file `file` (default `$STEWARD_CODEC_KEY_FILE`), creating it with mode 0600 when
 * missing. Prints ids only, never key material.
 * @throws UsageError without a file; CodecKeyError when the existing file is readable by others or malformed.
 */
export async function keygen(o: { file?: string }, env: NodeJS.ProcessEnv = process.env): Promise<KeygenResult> {
  const file = o.file ?? env[KEY_FILE_ENV];
  if (!file) throw new UsageError(`codec keygen needs --file FILE or ${KEY_FILE_ENV}`);
  const r = await addKeyToFile(file);
  return { file: r.file, keyId: r.key.id, keys: r.ring.ids, created: r.created };
}

export interface CodecServerFlags {
  host: string;
  port: string;
  origin: string[];
  tokenFile?: string;
}

/**
 * Serves `/encode` and `/decode` for the Web UI and the `temporal` CLI with the codec keys of `g`'s server, until
 * SIGINT or SIGTERM. Logs one line per request on stderr (never payloads or tokens).
 * @throws UsageError for a bad port or origin; CodecKeyError without keys or token.
 */
export async function serveCodec(g: GlobalOptions, flags: CodecServerFlags): Promise<void> {
  const port = Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be 0–65535`);
  const origins = flags.origin.length > 0 ? flags.origin : [...DEFAULT_UI_ORIGINS];
  for (const o of origins) {
    if (!/^https?:\/\/[^/\s]+$/.test(o.replace(/\/$/, ''))) {
      throw new UsageError(`--origin ${o} must be scheme://host[:port], e.g. http://127.0.0.1:8233`);
    }
  }
  const [ring, token] = await Promise.all([loadCodecKeys(g), loadToken(flags.tokenFile)]);
  const server = await startCodecServer({
    ring,
    token,
    host: flags.host,
    port,
    origins,
    log: (line) => console.error(`codec-server: ${line}`),
  });
  console.error(
    `codec-server: listening on ${server.url} (keys ${ring.ids.join(', ')}; UI origins ${origins.join(', ')})`,
  );
  await new Promise<void>((done) => {
    process.once('SIGINT', done);
    process.once('SIGTERM', done);
  });
  await server.close();
}
