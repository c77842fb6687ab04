/**
 * The run guard: before its first step, a host workflow asks Temporal visibility whether another run of the same
 * operation on the same host is running and started first (spec/runs.ts). Reads visibility only; changes nothing.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { earlierRun, runningQuery, type RunRef } from '../spec/runs';

export interface RunGuardInput {
  readonly host: string;
  readonly operation: string;
  readonly workflowId: string;
  readonly runId: string;
}

export function createRunActivities() {
  return {
    /**
     * The running run of `operation` on `host` that this run must yield to, if any. Retryable while this run's own
     * start is not visible yet: until it is, visibility may not show a run that started just before it either.
     * Safe to retry; changes nothing.
     */
    async findEarlierRun(input: RunGuardInput): Promise<RunRef | undefined> {
      const { client } = Context.current();
      const running: RunRef[] = [];
      for await (const w of client.workflow.list({ query: runningQuery([input.host], input.operation) })) {
        running.push({ workflowId: w.workflowId, runId: w.runId, startTime: w.startTime.toISOString() });
      }
      const self = running.find((r) => r.runId === input.runId);
      if (!self) {
        throw ApplicationFailure.retryable(`run ${input.workflowId} is not visible yet`, 'RunNotVisibleYet');
      }
      return earlierRun(self, running);
    },
  };
}
