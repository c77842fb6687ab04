/** What every activity shares: the session pool, the step input, heartbeats and error mapping. */
import { Context } from '@temporalio/activity';
import type { Spec } from '../model/schema';
import type { Change, Finding, Mode, StepProgress } from '../model/report';
import { toActivityFailure } from './host/errors';
import type { HostTarget, SessionPool } from './host/session';

/** Input of every host step: the validated spec, which host, and whether to apply or only plan. */
export interface StepInput {
  readonly spec: Spec;
  readonly host: string;
  readonly mode: Mode;
  /** Key accepted on first trust earlier in this run, pinned for the rest of it. */
  readonly hostKey?: string;
}

export interface StepResult {
  readonly changes: Change[];
  readonly findings: Finding[];
}

export interface ActivityDeps {
  readonly pool: SessionPool;
}

const HEARTBEAT_INTERVAL_MS = 5_000;

/** Each running activity's latest progress: every heartbeat carries it, so a detail-less one never clears it. */
const progressOf = new WeakMap<Context, StepProgress>();

/** The connection details of `input.host`, with identity paths already absolute (the CLI resolves them). */
export function targetOf(input: StepInput): HostTarget {
  const h = input.spec.hosts.find((x) => x.name === input.host);
  if (!h) throw new Error(`host ${input.host} is not in the spec`);
  const hostKey = h.hostKey ?? input.hostKey;
  return {
    name: h.name,
    address: h.address,
    port: h.port,
    loginUser: h.user,
    opsUser: input.spec.ssh.opsUser,
    trustOnFirstUse: h.trustOnFirstUse,
    ...(h.identityFile ? { identityFile: h.identityFile } : {}),
    ...(hostKey ? { hostKey } : {}),
  };
}

/**
 * Runs an activity body with a heartbeat every few seconds (so a dead worker is noticed within the heartbeat
 * timeout and the step is retried elsewhere) and maps errors to retryable or non-retryable failures.
 */
export async function activityStep<T>(body: () => Promise<T>): Promise<T> {
  const ctx = inActivity() ? Context.current() : undefined;
  const timer = ctx ? setInterval(() => ctx.heartbeat(progressOf.get(ctx)), HEARTBEAT_INTERVAL_MS) : undefined;
  try {
    return await body();
  } catch (err) {
    throw toActivityFailure(err);
  } finally {
    clearInterval(timer);
  }
}

/** Heartbeats now, if running as an activity; for long commands that print as they go. */
export function heartbeat(): void {
  if (!inActivity()) return;
  const ctx = Context.current();
  ctx.heartbeat(progressOf.get(ctx));
}

/** Records how far the running activity is and heartbeats with it (the worker throttles what reaches the server). */
export function reportProgress(progress: StepProgress): void {
  if (!inActivity()) return;
  const ctx = Context.current();
  progressOf.set(ctx, progress);
  ctx.heartbeat(progress);
}

/** The running activity's wait or transfer is over: heartbeats carry no figures until the next one reports. */
export function endProgress(): void {
  if (!inActivity()) return;
  progressOf.delete(Context.current());
}

function inActivity(): boolean {
  try {
    Context.current();
    return true;
  } catch {
    return false;
  }
}
