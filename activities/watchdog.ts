/**
 * The watchdog's observation (model/watchdog.ts judges it): the schedules steward made for this worker's task queue,
 * when each one's newest run ended, and when the previous watchdog run started. Reads Temporal only, through the
 * worker's own client; contacts no host.
 */
import { Context } from '@temporalio/activity';
import type { Client, ScheduleDescription } from '@temporalio/client';
import { ScheduleNotFoundError } from '@temporalio/client';
import { quoteQueryValue, scheduleTrigger, triggerQuery } from '../model/runs';
import { readScheduleMemo, SCHEDULE_PREFIX, SCHEDULE_WORKFLOWS } from '../model/schedules';
import { durationMs } from '../model/units';
import { lookBackFrom, overdueChecks, type OverdueCheck, type WatchedSchedule } from '../model/watchdog';

export interface WatchdogInput {
  /** The watchdog schedule's own interval: how far back its previous run is looked for. */
  readonly everyMs: number;
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
  /** The clock the judgement is made at (tests move it forward). */
  readonly now?: () => Date;
}

export function createWatchdogActivities({ now = () => new Date() }: WatchdogDeps = {}) {
  return {
    /** The overdue schedules of this worker's task queue, each marked whether it is newly overdue. Changes nothing. */
    async findOverdueChecks(input: WatchdogInput): Promise<WatchdogObservation> {
      const ctx = Context.current();
      const { client } = ctx;
      const taskQueue = ctx.info.taskQueue;
      const at = now();
      const previousRun = await previousWatchdogRun(
        client,
        taskQueue,
        ctx.info.workflowExecution?.runId ?? '',
        at,
        input,
      );
      const watched: WatchedSchedule[] = [];
      for (const [id, d] of await stewardSchedules(client)) {
        const memo = d.action.type === 'startWorkflow' ? readScheduleMemo(d.action.memo) : undefined;
        if (!memo || memo.taskQueue !== taskQueue || memo.kind === 'watchdog') continue;
        const everyMs = durationMs(memo.every);
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

/** Every schedule under steward's prefix, described (the listing carries no action memo). */
async function stewardSchedules(client: Client): Promise<Map<string, ScheduleDescription>> {
  const ids: string[] = [];
  for await (const s of client.schedule.list()) if (s.scheduleId.startsWith(SCHEDULE_PREFIX)) ids.push(s.scheduleId);
  const found = new Map<string, ScheduleDescription>();
  for (const id of ids.sort()) {
    try {
      found.set(id, await client.schedule.getHandle(id).describe());
    } catch (err) {
      if (!(err instanceof ScheduleNotFoundError)) throw err; // deleted since it was listed
    }
  }
  return found;
}

/** When the newest run schedule `id` started ended (completed or failed), if one ended at or after `since`. */
async function newestEnd(client: Client, id: string, since: Date): Promise<Date | undefined> {
  const query =
    `${triggerQuery(scheduleTrigger(id))} AND ExecutionStatus IN ('Completed', 'Failed') ` +
    `AND CloseTime >= ${quoteQueryValue(since.toISOString())}`;
  let newest: Date | undefined;
  for await (const run of client.workflow.list({ query, pageSize: 100 })) {
    if (run.closeTime && (!newest || run.closeTime > newest)) newest = run.closeTime;
  }
  return newest;
}

/**
 * When the previous watchdog run of `taskQueue` (a completed one other than `self`) started, looked for over the last
 * three of its intervals (at least an hour): after a longer outage every overdue check is told again.
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
    if (run.runId !== self && run.startTime <= at && (!newest || run.startTime > newest)) newest = run.startTime;
  }
  return newest;
}
