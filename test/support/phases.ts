/**
 * Setup phases of test files, timed: `await phase('provision host', () => …)` appends the file, the phase and its
 * wall time to `.steward/test-phases.jsonl`, which the CI summary (scripts/test-summary.ts) prints under each file's
 * own time, so a slow setup shows in the log that CI keeps.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { expect, inject } from 'vitest';

export const PHASES_FILE = '.steward/test-phases.jsonl';

export interface PhaseRecord {
  /** The run (global-setup.ts), so a summary reads only its own run's phases from the shared file. */
  readonly runId: string;
  readonly file: string;
  readonly phase: string;
  readonly ms: number;
  readonly ok: boolean;
}

export async function phase<T>(name: string, body: () => Promise<T>): Promise<T> {
  const started = performance.now();
  let ok = false;
  try {
    const result = await body();
    ok = true;
    return result;
  } finally {
    const record: PhaseRecord = {
      runId: inject('testRunId'),
      file: currentFile(),
      phase: name,
      ms: Math.round(performance.now() - started),
      ok,
    };
    mkdirSync(resolve('.steward'), { recursive: true });
    appendFileSync(resolve(PHASES_FILE), `${JSON.stringify(record)}\n`);
  }
}

function currentFile(): string {
  const path = expect.getState().testPath;
  return path ? relative(process.cwd(), path) : 'unknown';
}
