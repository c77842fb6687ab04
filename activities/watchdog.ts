/**
 * The watchdog's observation (model/watchdog.ts judges it): the schedules steward made for this worker's task queue,
 * when each one's newest run ended, and when the previous watchdog run started. Reads Temporal only, through the
 * worker's own client; contacts no host.
 */
import { Context } from '@temporalio/activity';
import type { Client } from '@temporalio/client';
import { stewardSchedules } from '../common/schedules';
import { quoteQueryValue, scheduleTrigger, triggerQuery } from '../model/runs';
import { readScheduleMemo, SCHEDULE_WORKFLOWS } from '../model/schedules';
import { durationMs } from '../model/units';
import { lookBackFrom, overdueChecks, type OverdueCheck, type WatchedSchedule } from '../model/watchdog';

export interface WatchdogInput {
  /** The watchdog schedule's own interval: how far back its previous run is looked for. */
  readonly everyMs: number;
  /**
   * When the watchdog run started (server time, ISO): the judgement is made at it, as the next run's look at this
   * one is, so a spell that began while this run waited for a worker is told by this run or the next, never both.
   */
  readonly at: string;
}

export interface WatchdogObservation {
  readonly checkedAt: string;
  /** The schedules of this task queue looked at (the watchdog's own left out). */
  readonly schedules: number;
  /** When the previous watchdog run of this task queue started, if one completed recently. */
  readonly previousRun?: string;
  readonly overdue: OverdueCheck[];
}

export interface WatchdogDeps {
  /** Moves every time the watchdog compares with (its run's start, the previous run's) forward: tests only. */
  readonly shiftMs?: number;
}

export function createWatchdogActivities({ shiftMs = 0 }: WatchdogDeps = {}) {
  return {
    /** The overdue schedules of this worker's task queue, each marked whether it is newly overdue. Changes nothing. */
    async findOverdueChecks(input: WatchdogInput): Promise<WatchdogObservation> {
      const ctx = Context.current();
      const { client } = ctx;
      const taskQueue = ctx.info.taskQueue;
      const started = new Date(input.at);
      if (Number.isNaN(started.getTime())) throw new TypeError(`findOverdueChecks: at is not a time: ${input.at}`);
      const at = new Date(started.getTime() + shiftMs);
      const self = ctx.info.workflowExecution?.runId ?? '';
      const previous = await previousWatchdogRun(client, taskQueue, self, started, input);
      const previousRun = previous && new Date(previous.getTime() + shiftMs);
      const watched: WatchedSchedule[] = [];
      for (const [id, d] of await stewardSchedules(client, { tick: () => ctx.heartbeat() })) {
        if (!d) continue; // deleted since it was listed
        const memo = d.action.type === 'startWorkflow' ? readScheduleMemo(d.action.memo) : undefined;
        if (!memo || memo.taskQueue !== taskQueue || memo.kind === 'watchdog') continue;
        let everyMs: number;
        try {
          everyMs = durationMs(memo.every);
        } catch {
          continue; // an interval this version cannot read (a newer steward's): not judged
        }
        const lastEnded = await newestEnd(client, id, lookBackFrom(everyMs, at, previousRun));
        ctx.heartbeat();
        watched.push({
          id,
          kind: memo.kind,
          ...(memo.host ? { host: memo.host } : {}),
          every: memo.every,
          everyMs,
          createdAt: d.info.createdAt.toISOString(),
          paused: d.state.paused,
          ...(d.state.note ? { note: d.state.note } : {}),
          ...(lastEnded ? { lastEnded: lastEnded.toISOString() } : {}),
        });
      }
      return {
        checkedAt: at.toISOString(),
        schedules: watched.length,
        ...(previousRun ? { previousRun: previousRun.toISOString() } : {}),
        overdue: overdueChecks(watched, at, previousRun),
      };
    },
  };
}

/**
 * When the newest run schedule `id` started completed, if one completed at or after `since`. A failed run is no end
 * of a spell: a check that fails every time has not checked (its failures are told as run.failed where subscribed).
 */
async function newestEnd(client: Client, id: string, since: Date): Promise<Date | undefined> {
  const query =
    `${triggerQuery(scheduleTrigger(id))} AND ExecutionStatus = 'Completed' ` +
    `AND CloseTime >= ${quoteQueryValue(since.toISOString())}`;
  let newest: Date | undefined;
  for await (const run of client.workflow.list({ query, pageSize: 100 })) {
    if (run.closeTime && (!newest || run.closeTime > newest)) newest = run.closeTime;
  }
  return newest;
}

/**
 * When the previous watchdog run of `taskQueue` started: a completed one other than `self` (a run that could not
 * deliver fails, so what it could not tell is told by the next), looked for over the last three of its intervals (at
 * least an hour): after a longer outage every overdue check is told again.
 */
async function previousWatchdogRun(
  client: Client,
  taskQueue: string,
  self: string,
  at: Date,
  input: WatchdogInput,
): Promise<Date | undefined> {
  const since = new Date(at.getTime() - Math.max(3 * input.everyMs, 3_600_000));
  const query =
    `WorkflowType = ${quoteQueryValue(SCHEDULE_WORKFLOWS.watchdog)} AND TaskQueue = ${quoteQueryValue(taskQueue)} ` +
    `AND ExecutionStatus = 'Completed' AND StartTime >= ${quoteQueryValue(since.toISOString())}`;
  let newest: Date | undefined;
  for await (const run of client.workflow.list({ query, pageSize: 100 })) {
    if (run.runId !== self && run.startTime < at && (!newest || run.startTime > newest)) newest = run.startTime;
  }
  return newest;
}
