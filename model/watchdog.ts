/**
 * The watchdog's judgement: which of a task queue's schedules have had no run end for twice their interval, and
 * which of those it has not told of yet. Pure: the activity observes (schedules, the runs that ended, the previous
 * watchdog run), the workflow notifies.
 *
 * A check is overdue when no run it started completed within twice its interval (a run that fails every time has
 * not checked; its failures are told as `run.failed` where a webhook subscribes to it), counted from the newest run's
 * end, or from the schedule's creation when that is later. It is told once per overdue spell: when it became overdue
 * after the previous watchdog run started (or there was none in the window looked at), so an outage of the worker is
 * told when the worker returns, and a schedule paused for a week is told once, not every quarter of an hour. The spell
 * ends with the next run that completes.
 */
import type { Notification } from './notifications';
import type { ScheduleKind } from './schedules';

/** One schedule as the watchdog observed it. */
export interface WatchedSchedule {
  readonly id: string;
  readonly kind: ScheduleKind;
  readonly host?: string;
  readonly every: string;
  readonly everyMs: number;
  readonly createdAt: string;
  readonly paused: boolean;
  /** The schedule's note (the pause's reason while paused). */
  readonly note?: string;
  /**
   * When the newest run it started ended, if one ended since the start of the window the activity looked at
   * ({@link lookBackFrom}); runs that ended before it are not needed for the judgement.
   */
  readonly lastEnded?: string;
}

export interface OverdueCheck {
  readonly schedule: string;
  readonly kind: Exclude<ScheduleKind, 'watchdog'>;
  readonly host?: string;
  readonly every: string;
  /** No run it started ended since this time (ISO): its newest run's end, its creation, or the window looked at. */
  readonly noRunSince: string;
  /** Since when it is overdue, when that is known (its newest end or its creation is within the window). */
  readonly overdueSince?: string;
  /** When its newest run ended, when that is known. */
  readonly lastEnded?: string;
  readonly paused: boolean;
  readonly note?: string;
  /** Not told before: it became overdue after the previous watchdog run started. */
  readonly newly: boolean;
}

/**
 * The earliest end of a run that can matter: twice the interval before the previous watchdog run (or before now
 * when none is known, or when that is earlier). A run that ended before it leaves the check overdue either way.
 */
export function lookBackFrom(everyMs: number, now: Date, previousRun?: Date): Date {
  const from = Math.min(previousRun?.getTime() ?? now.getTime(), now.getTime());
  return new Date(from - 2 * everyMs);
}

/** The overdue schedules among `schedules`, at `now`; `previousRun`: when the previous watchdog run started. */
export function overdueChecks(schedules: readonly WatchedSchedule[], now: Date, previousRun?: Date): OverdueCheck[] {
  const out: OverdueCheck[] = [];
  for (const s of schedules) {
    const kind = s.kind;
    if (kind === 'watchdog') continue;
    const windowStart = lookBackFrom(s.everyMs, now, previousRun).getTime();
    const created = Date.parse(s.createdAt);
    // The newest end, or the creation when nothing ended since: the spell is counted from it. Neither in the window:
    // the spell began before it, so at the latest when the previous watchdog run (or this one) started.
    const from = s.lastEnded ? Date.parse(s.lastEnded) : created >= windowStart ? created : undefined;
    if (from !== undefined && now.getTime() <= from + 2 * s.everyMs) continue;
    const since = from !== undefined ? from + 2 * s.everyMs : windowStart + 2 * s.everyMs;
    out.push({
      schedule: s.id,
      kind,
      ...(s.host ? { host: s.host } : {}),
      every: s.every,
      noRunSince: new Date(from ?? windowStart).toISOString(),
      ...(from !== undefined ? { overdueSince: new Date(since).toISOString() } : {}),
      ...(s.lastEnded ? { lastEnded: s.lastEnded } : {}),
      paused: s.paused,
      ...(s.note ? { note: s.note } : {}),
      // A spell whose start is not known began before the previous run looked: told then. One that began at or after
      // that look (it was not overdue yet when the look was made at exactly its start) is told now.
      newly: !previousRun || (from !== undefined && since >= previousRun.getTime()),
    });
  }
  return out;
}

/** The `check.overdue` notification of one overdue check, from the watchdog run `run`. */
export function overdueNotification(
  check: OverdueCheck,
  run: { readonly workflowId: string; readonly runId: string; readonly at: string },
): Notification {
  return {
    event: 'check.overdue',
    host: check.host ?? '',
    operation: check.kind,
    mode: 'apply',
    status: 'overdue',
    trigger: `schedule:${check.schedule}`,
    workflowId: run.workflowId,
    runId: run.runId,
    at: run.at,
    changes: 0,
    resources: [],
    findings: [],
    schedule: check.schedule,
    every: check.every,
    noRunSince: check.noRunSince,
    ...(check.overdueSince ? { overdueSince: check.overdueSince } : {}),
    ...(check.lastEnded ? { lastEnded: check.lastEnded } : {}),
    paused: check.paused,
    ...(check.paused && check.note ? { note: check.note.slice(0, 200) } : {}),
  };
}
