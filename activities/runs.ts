/**
 * The run guard: before its first step, a host workflow asks Temporal visibility whether another steward run on the
 * same host is running and started first (the host lock, model/runs.ts). Reads visibility only; changes nothing.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { earlierRun, runningQuery, type RunRef } from '../model/runs';
import { StewardOperation } from '../model/search-attributes';

export interface RunGuardInput {
  readonly host: string;
  readonly operation: string;
  readonly workflowId: string;
  readonly runId: string;
  /** Workflow ids of the runs that started this one (a child never waits for its parent). */
  readonly ancestors?: readonly string[];
}

export function createRunActivities() {
  return {
    /**
     * The running steward run on `host` that this run must go after, if any (its ancestors left out). Retryable while
     * this run's own start is not visible yet: until it is, visibility may not show a run that started just before
     * it either. Safe to retry; changes nothing.
     */
    async findEarlierRun(input: RunGuardInput): Promise<RunRef | undefined> {
      const { client } = Context.current();
      const running: RunRef[] = [];
      for await (const w of client.workflow.list({ query: runningQuery([input.host]) })) {
        const operation = w.typedSearchAttributes.get(StewardOperation);
        running.push({
          workflowId: w.workflowId,
          runId: w.runId,
          startTime: w.startTime.toISOString(),
          ...(operation ? { operation } : {}),
        });
      }
      const self = running.find((r) => r.runId === input.runId);
      if (!self) {
        throw ApplicationFailure.retryable(`run ${input.workflowId} is not visible yet`, 'RunNotVisibleYet');
      }
      return earlierRun(self, running, input.ancestors ?? []);
    },
  };
}
