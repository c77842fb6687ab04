/**
 * `steward dev embedder`: the stand-in embedder (images/embedder-standin/embedder.ts — hashed words, not a model)
 * on the throwaway VPS, on the deployed stack's network under the name the embedded default's spec points mem0 at,
 * so `memory check` works without an embedding provider. Kept while its code and dimension are unchanged; the
 * embedded default only: never for a real host.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { COMPOSE_PROJECT } from '../../model/render/stack';
import { readDevState } from '../../common/dev-state';
import { type GlobalOptions } from '../context';
import { EXIT, UsageError } from '../errors';
import { loadSpecCached } from '../spec-cache';
import { EMBEDDER_STANDIN } from './init';

const SOURCE = new URL('../../images/embedder-standin/embedder.ts', import.meta.url);

export async function embedder(g: GlobalOptions): Promise<number> {
  const state = await readDevState(g.spec);
  if (!state.vps) throw new UsageError('no throwaway VPS: run `steward dev up` first');
  const { spec } = await loadSpecCached(g.spec);
  if (!spec.stack.memory.embedder.baseUrl?.includes(`//${EMBEDDER_STANDIN}:`)) {
    throw new UsageError(
      `${g.spec} does not point mem0 at the stand-in embedder (stack.memory.embedder.baseUrl http://${EMBEDDER_STANDIN}:8080/v1)`,
    );
  }
  const { simulatorExec } = await import('../dev/simulator');
  const vps = state.vps.container;
  const network = `${COMPOSE_PROJECT}_edge`;
  const onVps = async (argv: string[]) => simulatorExec(vps, argv);
  if ((await onVps(['docker', 'network', 'inspect', network])).exitCode !== 0) {
    throw new UsageError(
      `the stack's network ${network} is not on ${state.vps.host} yet: run \`steward deploy\` first`,
    );
  }
  const source = await readFile(SOURCE, 'utf8');
  const dims = String(spec.stack.memory.embedder.dimension);
  const version = createHash('sha256').update(source).update(dims).digest('hex').slice(0, 16);
  const running = await onVps([
    'docker',
    'inspect',
    '-f',
    '{{.State.Running}} {{index .Config.Labels "steward.standin"}}',
    EMBEDDER_STANDIN,
  ]);
  if (running.stdout.trim() === `true ${version}`) {
    console.error(`dev: the stand-in embedder runs on ${state.vps.host} (${EMBEDDER_STANDIN}, ${dims} dimensions)`);
    return EXIT.ok;
  }
  await onVps(['docker', 'rm', '-f', EMBEDDER_STANDIN]);
  const r = await onVps([
    'docker',
    'run',
    '-d',
    '--name',
    EMBEDDER_STANDIN,
    '--label',
    `steward.standin=${version}`,
    '--network',
    network,
    '--network-alias',
    EMBEDDER_STANDIN,
    '--restart',
    'unless-stopped',
    '--read-only',
    '--cap-drop',
    'ALL',
    '--security-opt',
    'no-new-privileges:true',
    '--user',
    '1000:1000',
    '-e',
    `DIMS=${dims}`,
    '--entrypoint',
    'node',
    spec.stack.image,
    '--input-type=module-typescript',
    '--eval',
    source,
  ]);
  if (r.exitCode !== 0) throw new Error(`the stand-in embedder did not start: ${r.stderr.trim()}`);
  console.error(
    `dev: started the stand-in embedder on ${state.vps.host} (${EMBEDDER_STANDIN}: hashed words, not a model; ${dims} dimensions)`,
  );
  return EXIT.ok;
}
