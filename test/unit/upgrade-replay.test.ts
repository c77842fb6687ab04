/**
 * Runs started before host plans finish on today's worker: each history in upgrade-histories/ was started on the
 * old workflow code (whole-spec inputs, hand-written fleet and rotation loops), handed over part way to a worker with
 * the new code, and completed there (upgrade-histories/record.ts). Replaying it on this tree's workflows proves they
 * make every decision the history holds, from both sides of the upgrade; a changed decision fails as
 * non-deterministic, which the last test shows the replay would catch.
 */
import { readFileSync } from 'node:fs';
import proto from '@temporalio/proto';
import { Worker } from '@temporalio/worker';
import { describe, expect, it } from 'vitest';
import { workflowBundle } from '../support/temporal';

type History = proto.temporal.api.history.v1.History;
const { EventType } = proto.temporal.api.enums.v1;
const HISTORIES = new URL('./upgrade-histories/', import.meta.url);

function load(file: string): History {
  return proto.temporal.api.history.v1.History.decode(readFileSync(new URL(file, HISTORIES)));
}

/** The worker builds that completed the run's workflow tasks, in the order they first appear. */
function builds(history: History): string[] {
  const ids = history.events!.flatMap((e) => {
    const done = e.workflowTaskCompletedEventAttributes;
    return done ? [done.workerVersion?.buildId || done.binaryChecksum || ''] : [];
  });
  return [...new Set(ids)];
}

const activityTypes = (history: History) =>
  history.events!.flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? []);
const childIds = (history: History) =>
  history.events!.flatMap((e) => e.startChildWorkflowExecutionInitiatedEventAttributes?.workflowId ?? []);

describe('runs started on the code before host plans', () => {
  const cases = {
    'fleet-provision.binpb': (h: History) =>
      expect(childIds(h).map((id) => id.split('/').slice(0, 2).join('/'))).toEqual([
        'provision/vps1',
        'provision/vps2',
      ]),
    'drift-repair.binpb': (h: History) => {
      expect(activityTypes(h)).toEqual(['findEarlierRun', 'observeDrift', 'observeDrift']);
      expect(childIds(h)).toEqual([expect.stringMatching(/^provision\/vps1\//)]);
    },
    'rotate-fleet.binpb': (h: History) =>
      expect(childIds(h)).toEqual(['rotate/vps1/gateway-token', 'rotate/vps2/gateway-token']),
  };

  for (const [file, shape] of Object.entries(cases)) {
    it(`${file}: upgraded part way, completed on the new worker, replays on this code`, async () => {
      const history = load(file);
      // The recording really spans the upgrade: tasks completed by two builds, and the run completed.
      expect(builds(history)).toHaveLength(2);
      expect(history.events!.at(-1)!.eventType).toBe(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED);
      shape(history);
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history);
    });
  }

  it('a history whose decisions this code would not make fails to replay', async () => {
    const history = load('drift-repair.binpb');
    const scheduled = history.events!.find(
      (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'observeDrift',
    )!;
    scheduled.activityTaskScheduledEventAttributes!.activityType!.name = 'inspectHost';
    await expect(Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history)).rejects.toThrow(
      /nondetermin/i,
    );
  });
});
