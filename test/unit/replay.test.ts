/**
 * Replays a recorded history of every steward workflow type (replay-histories/, recorded from the integration
 * suite's runs against the simulators) on this tree's workflow code, and fails on any decision the code would make
 * differently: a workflow change that would break runs in flight (an auto-upgrading plan or rotation moving to the
 * new build, a pinned run replayed after a worker restart) fails here before it ships. Such a change is guarded with
 * `patched` (workflows/retry.ts shows one), or the histories are re-recorded once no run of the old code can be open.
 *
 * Re-record (the integration suite, then its runs' histories, payloads decrypted, the longest completed and the
 * longest failed run of each type):
 *   rm -rf test/unit/replay-histories && STEWARD_RECORD_HISTORIES=test/unit/replay-histories \
 *     npx vitest run --project integration
 * The suite runs no `steward converge`: convergeHost.failed.binpb was recorded the same way from one converge of a
 * hardened simulator, which ran all four stages and failed in the memory check (no embedding provider reachable).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { FAILURE_CONVERTER_PATH } from '../../codec/aes-gcm';
import { stewardWorkflowTypes } from '../support/history-recording';
import { workflowBundle } from '../support/temporal';

type History = proto.temporal.api.history.v1.History;
const { EventType } = proto.temporal.api.enums.v1;
const DIR = new URL('./replay-histories/', import.meta.url);
const DEMO = fileURLToPath(new URL('./replay-demo.workflows.ts', import.meta.url));

const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.binpb'))
  .sort();
const load = (file: string): History => proto.temporal.api.history.v1.History.decode(readFileSync(new URL(file, DIR)));
const typeOf = (h: History) => h.events![0]!.workflowExecutionStartedEventAttributes!.workflowType!.name!;

/** Replays `histories` on `bundle`; the error of each that failed, by file. */
async function replay(bundle: Awaited<ReturnType<typeof workflowBundle>>, names: string[]) {
  const errors: Record<string, string> = {};
  const histories = names.map((workflowId) => ({ workflowId, history: load(workflowId) }));
  for await (const result of Worker.runReplayHistories(
    { workflowBundle: bundle, dataConverter: { failureConverterPath: FAILURE_CONVERTER_PATH } },
    histories,
  )) {
    if (result.error) errors[result.workflowId] = `${result.error.name}: ${result.error.message}`;
  }
  return errors;
}

describe('recorded histories of every workflow type replay on this code', () => {
  it('there is a recorded run of every workflow type the worker registers, named for its type and outcome', async () => {
    const recorded = new Map(files.map((f) => [f, load(f)]));
    for (const [file, history] of recorded) {
      expect(file.startsWith(`${typeOf(history)}.`), file).toBe(true);
      const last = history.events!.at(-1)!.eventType;
      const expected = file.endsWith('.completed.binpb')
        ? EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
        : EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED;
      expect(last, file).toBe(expected);
    }
    expect(new Set([...recorded.values()].map(typeOf))).toEqual(new Set(await stewardWorkflowTypes()));
    // Every type but converge has a completed run: the suite runs no converge, whose run was recorded on its own
    // (its memory check had no embedding provider, so it failed in its last stage, after every stage ran).
    const completed = [...recorded.entries()].filter(([f]) => f.endsWith('.completed.binpb')).map(([, h]) => typeOf(h));
    expect((await stewardWorkflowTypes()).filter((t) => !completed.includes(t))).toEqual(['convergeHost']);
  });

  it('every history replays without a nondeterminism error', async () => {
    expect(await replay(await workflowBundle(), files)).toEqual({});
  });

  it('a changed command order fails the replay; the same change behind `patched` replays', async () => {
    const bundle = await workflowBundle(DEMO);
    const drift = files.filter((f) => f.startsWith('driftHost.'));
    const memory = files.filter((f) => f.startsWith('memoryCheckHost.'));
    expect(drift.length).toBeGreaterThan(0);
    expect(memory.length).toBeGreaterThan(0);
    const errors = await replay(bundle, [...drift, ...memory]);
    expect(Object.keys(errors).sort()).toEqual(drift);
    for (const f of drift) expect(errors[f]).toMatch(/nondetermin/i);
  });
});
