/**
 * Test double for a paid OpenAI-compatible LLM API: test/doubles/llm.ts, run on a simulator in a container of the
 * OpenClaw image attached to the stack's network under the alias {@link LLM_DOUBLE}, so a spec's provider base URL
 * can name it. Each model answers until told to fail; every completion asked for is recorded (the bearer token only
 * as a digest).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { simulatorExec, type Simulator } from '../../client/dev/simulator';

export const LLM_DOUBLE = 'llm-double';
/** The base URL a spec's provider points at to reach the double. */
export const LLM_DOUBLE_URL = `http://${LLM_DOUBLE}:8080/v1`;
const SOURCE = readFileSync(fileURLToPath(new URL('../doubles/llm.ts', import.meta.url)), 'utf8');

export type LlmMode = 'answer' | 'fail' | 'unauthorized' | 'hang';
export interface LlmCall {
  readonly model: string;
  readonly mode: LlmMode;
  readonly stream: boolean;
  /** First 12 hex digits of the SHA-256 of the bearer token ({@link keyDigest}). */
  readonly key: string;
  /** How many tools the request offered. */
  readonly tools: number;
  /** The tool calls the double answered with. */
  readonly called: readonly string[];
}

/** How the double records a bearer token. */
export const keyDigest = (token: string) => createHash('sha256').update(token).digest('hex').slice(0, 12);

async function doubleUrl(sim: Simulator, path: string): Promise<string> {
  const r = await simulatorExec(sim.container, [
    'docker',
    'inspect',
    '-f',
    '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}',
    LLM_DOUBLE,
  ]);
  return `http://${r.stdout.trim()}:8080${path}`;
}

async function call(sim: Simulator, path: string, body?: unknown): Promise<string | undefined> {
  const url = await doubleUrl(sim, path);
  const post =
    body === undefined ? [] : ['-X', 'POST', '-H', 'content-type: application/json', '-d', JSON.stringify(body)];
  const r = await simulatorExec(sim.container, ['curl', '-sf', '--max-time', '5', ...post, url]);
  return r.exitCode === 0 ? r.stdout : undefined;
}

/** (Re)starts the double on the stack's network (which a first deploy creates). */
export async function startLlmDouble(sim: Simulator, image: string): Promise<void> {
  await simulatorExec(sim.container, ['docker', 'rm', '-f', LLM_DOUBLE]);
  const r = await simulatorExec(sim.container, [
    'docker',
    'run',
    '-d',
    '--name',
    LLM_DOUBLE,
    '--network',
    'openclaw_edge',
    '--network-alias',
    LLM_DOUBLE,
    '--read-only',
    '--user',
    '1000:1000',
    '--entrypoint',
    'node',
    image,
    '--input-type=module-typescript',
    '--eval',
    SOURCE,
  ]);
  if (r.exitCode !== 0) throw new Error(`LLM double did not start: ${r.stderr}`);
  for (let i = 0; i < 50; i++) {
    if ((await call(sim, '/health')) !== undefined) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error('LLM double does not answer');
}

/** Makes `model` (as the provider is asked for it, without the provider prefix) answer, fail, refuse or hang. */
export async function setLlmMode(sim: Simulator, model: string, mode: LlmMode): Promise<void> {
  if ((await call(sim, '/control', { model, mode })) === undefined) throw new Error('LLM double: control refused');
}

/** Every model answers again, and the record of calls starts empty. */
export async function resetLlmDouble(sim: Simulator): Promise<void> {
  if ((await call(sim, '/control', { reset: true })) === undefined) throw new Error('LLM double: reset refused');
}

/** The completions asked for since the last reset. */
export async function llmCalls(sim: Simulator): Promise<LlmCall[]> {
  const out = await call(sim, '/calls');
  if (out === undefined) throw new Error('LLM double does not answer');
  return JSON.parse(out) as LlmCall[];
}
