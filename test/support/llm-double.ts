/**
 * Test double for a paid OpenAI-compatible LLM API: test/doubles/llm.ts, run on a simulator in a container of the
 * OpenClaw image attached to the stack's network under the alias {@link LLM_DOUBLE}, so a spec's provider base URL
 * can name it. Each model answers until told to fail; every completion asked for is recorded (the bearer token only
 * as a digest).
 */
import { createHash } from 'node:crypto';
import type { Simulator } from '../../client/dev/simulator';
import { callDouble, startDouble, type StackDouble } from './stack-double';

export const LLM_DOUBLE: StackDouble = { name: 'llm-double', script: 'llm.ts', port: 8080 };
/** The base URL a spec's provider points at to reach the double. */
export const LLM_DOUBLE_URL = `http://${LLM_DOUBLE.name}:${LLM_DOUBLE.port}/v1`;

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

/** How the doubles record a bearer token. */
export const keyDigest = (token: string) => createHash('sha256').update(token).digest('hex').slice(0, 12);

/** (Re)starts the double on the stack's network (which a first deploy creates). */
export function startLlmDouble(sim: Simulator, image: string): Promise<void> {
  return startDouble(sim, LLM_DOUBLE, image);
}

/** Makes `model` (as the provider is asked for it, without the provider prefix) answer, fail, refuse or hang. */
export async function setLlmMode(sim: Simulator, model: string, mode: LlmMode): Promise<void> {
  if ((await callDouble(sim, LLM_DOUBLE, '/control', { model, mode })) === undefined)
    throw new Error('LLM double: control refused');
}

/** Every model answers again, and the record of calls starts empty. */
export async function resetLlmDouble(sim: Simulator): Promise<void> {
  if ((await callDouble(sim, LLM_DOUBLE, '/control', { reset: true })) === undefined)
    throw new Error('LLM double: reset refused');
}

/** The completions asked for since the last reset. */
export async function llmCalls(sim: Simulator): Promise<LlmCall[]> {
  const out = await callDouble(sim, LLM_DOUBLE, '/calls');
  if (out === undefined) throw new Error('LLM double does not answer');
  return JSON.parse(out) as LlmCall[];
}
