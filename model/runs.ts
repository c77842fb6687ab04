/**
 * Runs as Temporal visibility sees them: who started a run, and the host lock: one steward run per host at a time,
 * whatever its operation. Workflow ids carry the start time (`<operation>/<host>/<time>`), so Temporal's id
 * uniqueness does not enforce it: the CLI asks visibility before it starts a run and refuses while another holds the
 * host; every host workflow asks again before its first step (`findEarlierRun`) and goes after the run that started
 * first — a scheduled run waits for it, any other yields. A run started as a child of another (drift's repairs)
 * never waits for its own parent. Pure: used by the client, the worker's guard activity and workflows.
 */
import { StewardHost, StewardOperation, StewardTrigger } from './search-attributes';

/** The `StewardTrigger` of a run started from the CLI by `user` (`$USER@hostname`). */
export function cliTrigger(user: string): string {
  return `cli:${user}`;
}

/** The `StewardTrigger` of a run that a schedule started. */
export function scheduleTrigger(scheduleId: string): string {
  return `schedule:${scheduleId}`;
}

/** Characters a value may have to be put in a visibility query between single quotes. */
const QUERY_VALUE = /^[A-Za-z0-9@:/._-]{1,200}$/;

/**
 * A visibility value, quoted. @throws Error for a value with other characters: host and operation names are
 * validated by the spec, so this only refuses what could not come from it.
 */
export function quoteQueryValue(value: string): string {
  if (!QUERY_VALUE.test(value)) throw new Error(`not a valid visibility query value: ${JSON.stringify(value)}`);
  return `'${value}'`;
}

/** Visibility query: the running steward runs on any of `hosts` (of one `operation` only, when given). */
export function runningQuery(hosts: readonly string[], operation?: string): string {
  const host =
    hosts.length === 1
      ? `${StewardHost.name} = ${quoteQueryValue(hosts[0]!)}`
      : `${StewardHost.name} IN (${hosts.map(quoteQueryValue).join(', ')})`;
  const op = operation ? ` AND ${StewardOperation.name} = ${quoteQueryValue(operation)}` : '';
  return `${host}${op} AND ExecutionStatus = 'Running'`;
}

/** Visibility query: the runs one trigger started (a schedule's, or one user's). */
export function triggerQuery(trigger: string): string {
  return `${StewardTrigger.name} = ${quoteQueryValue(trigger)}`;
}

/** One run, as listed by visibility. */
export interface RunRef {
  readonly workflowId: string;
  readonly runId: string;
  /** ISO time the run started. */
  readonly startTime: string;
  /** Its `StewardOperation`. */
  readonly operation?: string;
}

/** Whether a run's `StewardTrigger` says a schedule started it. */
export function scheduled(trigger: string | undefined): boolean {
  return trigger?.startsWith('schedule:') ?? false;
}

/**
 * The run `self` must go after: among the `running` runs on the same host (its own ancestors left out), the one
 * that started first (ties broken by run id), unless that is `self`. Undefined when `self` goes first.
 */
export function earlierRun(
  self: RunRef,
  running: readonly RunRef[],
  ancestors: readonly string[] = [],
): RunRef | undefined {
  const order = (a: RunRef, b: RunRef) =>
    Date.parse(a.startTime) - Date.parse(b.startTime) || (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0);
  const others = running.filter((r) => !ancestors.includes(r.workflowId));
  const first = [...others, self].sort(order)[0]!;
  return first.runId === self.runId ? undefined : first;
}

const ACTIONS: Readonly<Record<string, Readonly<Record<'apply' | 'plan', string>>>> = {
  drift: { apply: 'drift repair', plan: 'drift plan' },
  memory: { apply: 'memory check with repair', plan: 'memory check' },
  rotate: { apply: 'rotation', plan: 'rotation plan' },
  audit: { apply: 'audit export', plan: 'audit export' },
  verify: { apply: 'verification', plan: 'verification' },
};

/** A run's one-line summary for the Temporal UI: `drift repair of web1, started by schedule:steward/web1/drift`. */
export function runSummary(operation: string, mode: 'apply' | 'plan', subject: string, trigger: string): string {
  const what = ACTIONS[operation]?.[mode] ?? (mode === 'plan' ? `${operation} plan` : operation);
  return `${what} of ${subject}, started by ${trigger}`;
}
