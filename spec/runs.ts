/**
 * Runs as Temporal visibility sees them: who started a run, and the rule that keeps one run of an operation on a
 * host at a time. Workflow ids carry the start time (`<operation>/<host>/<time>`), so Temporal's id uniqueness no
 * longer enforces that rule: the CLI asks visibility before it starts a run, and every host workflow asks again
 * before its first step (`findEarlierRun`), yielding to the run that started first. Pure: used by the client, the
 * worker's guard activity and workflows.
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

/** Visibility query: the running runs of `operation` on any of `hosts`. */
export function runningQuery(hosts: readonly string[], operation: string): string {
  const host =
    hosts.length === 1
      ? `${StewardHost.name} = ${quoteQueryValue(hosts[0]!)}`
      : `${StewardHost.name} IN (${hosts.map(quoteQueryValue).join(', ')})`;
  return `${host} AND ${StewardOperation.name} = ${quoteQueryValue(operation)} AND ExecutionStatus = 'Running'`;
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
}

/**
 * The run `self` must yield to: among the `running` runs of the same operation on the same host, the one that
 * started first (ties broken by run id), unless that is `self`. Undefined when `self` goes first.
 */
export function earlierRun(self: RunRef, running: readonly RunRef[]): RunRef | undefined {
  const order = (a: RunRef, b: RunRef) =>
    Date.parse(a.startTime) - Date.parse(b.startTime) || (a.runId < b.runId ? -1 : a.runId > b.runId ? 1 : 0);
  const first = [...running, self].sort(order)[0]!;
  return first.runId === self.runId ? undefined : first;
}

const ACTIONS: Readonly<Record<string, Readonly<Record<'apply' | 'plan', string>>>> = {
  drift: { apply: 'drift repair', plan: 'drift plan' },
  memory: { apply: 'memory check with repair', plan: 'memory check' },
  rotate: { apply: 'rotation', plan: 'rotation plan' },
  audit: { apply: 'audit export', plan: 'audit export' },
};

/** A run's one-line summary for the Temporal UI: `drift repair of web1, started by schedule:steward/web1/drift`. */
export function runSummary(operation: string, mode: 'apply' | 'plan', subject: string, trigger: string): string {
  const what = ACTIONS[operation]?.[mode] ?? (mode === 'plan' ? `${operation} plan` : operation);
  return `${what} of ${subject}, started by ${trigger}`;
}
