/** The payload codec keys a client or a worker uses for a Temporal server. */
import { access } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { CodecKeyError } from '../codec/errors';
import { KEY_FILE_ENV, KEYS_ENV, keyRingFromEnv, loadKeyFile, type KeyRing } from '../codec/keys';
import { readDevState } from './dev-state';

/** The key file `steward init` creates beside the spec: `keys/codec.keys` in the spec's directory. */
export function specKeyFile(specPath: string): string {
  return resolve(dirname(resolve(specPath)), 'keys', 'codec.keys');
}

/**
 * The payload codec keys for a Temporal server: `STEWARD_CODEC_KEYS` or `STEWARD_CODEC_KEY_FILE`, else the dev key
 * that `steward dev up` keeps for the local server it started (when `address` is that server's), else the key file
 * `steward init` made beside the spec ({@link specKeyFile}). The spec, default `$STEWARD_SPEC` or `steward.yaml`,
 * locates both. Read-only.
 * @throws CodecKeyError when there is no key: steward never writes plaintext payloads to a server.
 */
export async function loadCodecKeys(
  opts: { readonly address: string; readonly spec?: string },
  env: NodeJS.ProcessEnv = process.env,
): Promise<KeyRing> {
  const fromEnv = await keyRingFromEnv(env);
  if (fromEnv) return fromEnv;
  const spec = opts.spec ?? env.STEWARD_SPEC ?? 'steward.yaml';
  const dev = await readDevState(spec);
  if (dev.codec?.keyFile && dev.temporal?.address === opts.address) return loadKeyFile(dev.codec.keyFile);
  const beside = specKeyFile(spec);
  if (await exists(beside)) return loadKeyFile(beside);
  throw new CodecKeyError(
    `no payload codec key for ${opts.address}: steward encrypts every payload it sends to Temporal. ` +
      `Set ${KEY_FILE_ENV} to a key file (create one with \`steward codec keygen --file FILE\`) or ${KEYS_ENV}, ` +
      `or keep one at ${relative(process.cwd(), beside) || beside} (\`steward init\` makes it); ` +
      '`steward dev up` keeps a key for the local server it starts',
  );
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}
