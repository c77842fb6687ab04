/**
 * Test double for a paid embedding API: the stand-in embedder (images/embedder-standin/embedder.ts), an
 * OpenAI-compatible endpoint with deterministic vectors, run on a simulator in a container of the OpenClaw image
 * attached to the stack's network under the alias {@link EMBEDDER_DOUBLE}. Its chat endpoint counts calls.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { simulatorExec, type Simulator } from '../../client/dev/simulator';

export const EMBEDDER_DOUBLE = 'embeddings-double';
const SOURCE = readFileSync(
  fileURLToPath(new URL('../../images/embedder-standin/embedder.ts', import.meta.url)),
  'utf8',
);

async function onHost(sim: Simulator, script: string): Promise<string> {
  return (await simulatorExec(sim.container, ['sh', '-c', script])).stdout.trim();
}

/** `stack.memory.embedder` and `llm` pointing at the double (its chat endpoint is never called by a check). */
export function doubleProviders(apiKeySecret: string, dimension = 1536) {
  const provider = { baseUrl: `http://${EMBEDDER_DOUBLE}:8080/v1`, apiKeySecret };
  return {
    embedder: { ...provider, model: 'text-embedding-3-small', dimension },
    llm: { ...provider, model: 'gpt-4o-mini' },
  };
}

/** (Re)starts the double on the stack's network; `fixedDims` makes it ignore `dimensions`. */
export async function startEmbedderDouble(sim: Simulator, image: string, fixedDims?: number): Promise<void> {
  await simulatorExec(sim.container, ['docker', 'rm', '-f', EMBEDDER_DOUBLE]);
  const r = await simulatorExec(sim.container, [
    'docker',
    'run',
    '-d',
    '--name',
    EMBEDDER_DOUBLE,
    '--network',
    'openclaw_edge',
    '--network-alias',
    EMBEDDER_DOUBLE,
    '--read-only',
    '--user',
    '1000:1000',
    ...(fixedDims ? ['-e', `FIXED_DIMS=${fixedDims}`] : []),
    '--entrypoint',
    'node',
    image,
    '--input-type=module-typescript',
    '--eval',
    SOURCE,
  ]);
  if (r.exitCode !== 0) throw new Error(`embeddings double did not start: ${r.stderr}`);
  for (let i = 0; i < 50; i++) {
    if ((await embedderDoubleStats(sim)) !== undefined) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('embeddings double does not answer');
}

/** The double's call counts, or undefined while it does not answer. */
export async function embedderDoubleStats(sim: Simulator): Promise<{ embeddings: number; chat: number } | undefined> {
  const ip = await onHost(
    sim,
    `docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' ${EMBEDDER_DOUBLE}`,
  );
  const out = await onHost(sim, `curl -sf --max-time 2 http://${ip}:8080/stats || true`);
  return out.startsWith('{') ? (JSON.parse(out) as { embeddings: number; chat: number }) : undefined;
}
