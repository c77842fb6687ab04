/**
 * `steward init`: a complete starter spec, an SSH key pair when none is given, and the payload codec key file beside
 * the spec (`keys/codec.keys`, mode 0600) where the worker and the CLI look for it when the environment names none.
 */
import { access, chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import ssh2 from 'ssh2';
import { Document } from 'yaml';
import { z } from 'zod';
import { specSchema, type SpecInput } from '../../model/schema';
import { validate } from '../../model/validate';
import { generateEd25519KeyPair } from '../../common/keygen';
import { ensureKeyFile } from '../../codec/keys';
import { specKeyFile } from '../../common/codec-keys';
import { UsageError } from '../errors';

/** `NAME=USER@ADDRESS:PORT`, as given to `--host`. */
const hostFlagSchema = z
  .string()
  .regex(/^([^=@\s]+)=([^=@\s]+)@(\[[0-9a-fA-F:]+\]|[^:@\s]+)(?::(\d+))?$/, 'must look like NAME=USER@ADDRESS:PORT');

export function parseHostFlag(value: string): { name: string; user: string; address: string; port: number } {
  const m = /^([^=@\s]+)=([^=@\s]+)@(\[[0-9a-fA-F:]+\]|[^:@\s]+)(?::(\d+))?$/.exec(
    validate(hostFlagSchema, value, '--host'),
  );
  const [, name = '', user = '', address = '', port = '22'] = m ?? [];
  return { name, user, address: address.replace(/^\[|\]$/g, ''), port: Number(port) };
}

export const DEFAULT_DEV_HOST = { name: 'dev-vps', user: 'admin', address: '127.0.0.1', port: 2222 };

export interface InitOptions {
  readonly specPath: string;
  readonly hosts: readonly string[];
  readonly identity?: string;
  readonly force?: boolean;
}

/** Generates an ed25519 key pair (private key 0600) unless the file exists already. */
export async function ensureKeyPair(path: string): Promise<void> {
  if (await exists(path)) return;
  const pair = generateEd25519KeyPair('steward');
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  await writeFile(path, pair.private, { mode: 0o600 });
  await chmod(path, 0o600);
  await writeFile(`${path}.pub`, `${pair.public}\n`);
}

/** Container name (and network alias) of the stand-in embedder on the throwaway VPS. */
export const EMBEDDER_STANDIN = 'steward-embedder-standin';

/**
 * The throwaway VPS's memory settings: embeddings (and mem0's LLM, which the check never calls) from the stand-in
 * embedder, with a generated key; a real host's spec names a real provider instead.
 */
const EMBEDDED_MEMORY: Pick<SpecInput, 'stack' | 'secrets'> = {
  stack: {
    memory: {
      embedder: {
        baseUrl: `http://${EMBEDDER_STANDIN}:8080/v1`,
        apiKeySecret: 'embedder-standin-key',
        model: 'standin-hashed-words',
        dimension: 256,
      },
      llm: { baseUrl: `http://${EMBEDDER_STANDIN}:8080/v1`, apiKeySecret: 'embedder-standin-key', model: 'standin' },
    },
  },
  secrets: {
    'gateway-token': { generate: { length: 48 } },
    'embedder-standin-key': { generate: { length: 32 } },
  },
};

/** Writes the starter spec; every value spelled out so operators see what steward manages. */
export async function initSpec(
  opts: InitOptions,
): Promise<{ specPath: string; keyPath: string; codecKeyFile: string; codecKeyCreated: boolean; created: boolean }> {
  const specPath = resolve(opts.specPath);
  if ((await exists(specPath)) && !opts.force)
    throw new UsageError(`${opts.specPath} exists; pass --force to overwrite it`);
  const hosts = opts.hosts.length > 0 ? opts.hosts.map(parseHostFlag) : [DEFAULT_DEV_HOST];
  const keyPath = resolve(opts.identity ?? resolve(dirname(specPath), 'keys/steward_ed25519'));
  if (opts.identity) {
    if (!(await exists(keyPath))) throw new UsageError(`--identity ${opts.identity} does not exist`);
    const parsed = ssh2.utils.parseKey(await readFile(keyPath, 'utf8'));
    if (parsed instanceof Error)
      throw new UsageError(`--identity ${opts.identity} is not a private key: ${parsed.message}`);
  } else {
    await ensureKeyPair(keyPath);
  }
  const embedded = opts.hosts.length === 0;
  const input: SpecInput = {
    version: 1,
    // The embedded default's memory works offline: mem0 uses the stand-in embedder `steward dev embedder` runs.
    ...(embedded ? EMBEDDED_MEMORY : {}),
    hosts: hosts.map((h) => ({
      name: h.name,
      address: h.address,
      port: h.port,
      user: h.user,
      identityFile: relative(dirname(specPath), keyPath) || keyPath,
      trustOnFirstUse: true,
    })),
  };
  const spec = validate(specSchema, input, 'steward init');
  const doc = new Document(spec);
  doc.commentBefore =
    ' steward.yaml: desired state of the hosts and agent stack steward manages.\n' +
    ' Schema: `steward schema`. Host keys are pinned here on first trust; change one only when you rebuilt the host.';
  await mkdir(dirname(specPath), { recursive: true });
  await writeFile(specPath, doc.toString());
  // An existing key file is kept (and checked): its keys may still be needed to read older histories.
  const codec = await ensureKeyFile(specKeyFile(specPath));
  return { specPath, keyPath, codecKeyFile: codec.file, codecKeyCreated: codec.created, created: true };
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
