/**
 * Steps retried by the workflow, so that losing a worker does not spend the retry budget meant for real failures.
 *
 * Temporal's own retry policy counts every failed attempt alike, and a worker killed mid-step (SIGKILL, OOM, a host
 * reboot) shows up as a heartbeat timeout that counts as one: a worker restarted a few times during a long step used
 * up the step's six attempts and failed a deploy that had nothing wrong with it. Here each attempt is an activity
 * the server does not retry (maximumAttempts 1), and the workflow decides after each one:
 *
 * - a heartbeat timeout — the attempt's worker stopped heartbeating: it died, lost the server, or its event loop is
 *   stuck — is a worker loss. The attempt is scheduled again at once (it waits in the task queue until a live worker
 *   polls) and counts only against the profile's `maximumWorkerLosses`;
 * - a failure the activity reported, or a start-to-close timeout (an attempt that ran too long while heartbeating),
 *   is a real failure: retried after the profile's backoff (Temporal's formula, counted in real failures only, and an
 *   ApplicationFailure's `nextRetryDelay` honoured) until `retry.maximumAttempts` real failures, then thrown as is;
 * - a non-retryable failure (flagged so, or of a type in `retry.nonRetryableErrorTypes`), a cancellation, or
 *   anything else is thrown at once.
 *
 * Deterministic: activities, `sleep` and `patched` only.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  patched,
  scheduleActivity,
  sleep,
  TimeoutFailure,
  type ActivityOptions,
} from '@temporalio/workflow';
import type { Duration } from '@temporalio/common';
import { msToNumber } from '@temporalio/common/lib/time';
import { attemptSummary } from '../model/attempts';
import { stepSummary } from './interceptors';
import type { StepProfile } from './options';

/**
 * Marks histories whose steps are retried here. Runs started before it retried steps on the server (one activity
 * with up to `maximumAttempts` server-side attempts). A worker upgraded while such a run is open replays its history:
 * every step scheduled before the upgrade must again be one activity whose outcome is final, or the replay would
 * issue a timer or a new activity where the history holds the next step, and fail as non-deterministic. `patched`
 * is false while replaying a step recorded without this marker, so that step runs the old way to its end; the first
 * step the run schedules live records the marker and every later step is retried here. Once no run started before
 * this change can still be open (the namespace's retention has passed since the upgrade), replace `patched` with
 * `deprecatePatch` and drop the old path.
 */
export const STEP_RETRY_PATCH = 'steward-step-retry-in-workflow';

/** Type of the failure thrown when a step has lost its worker `maximumWorkerLosses` times. */
export const WORKER_LOST = 'WorkerLost';

/** The activities of `A` as steps: same names, arguments and results. */
export type Steps<A> = {
  [K in keyof A]: A[K] extends (...args: infer P) => Promise<infer R> ? (...args: P) => Promise<R> : never;
};

/**
 * Like `proxyActivities`, but each call is a step retried by the workflow under `profile` (see the module comment).
 * Accessing a name returns a function that runs that activity; nothing is scheduled until it is called.
 */
export function proxySteps<A extends object>(profile: StepProfile): Steps<A> {
  return new Proxy({} as Steps<A>, {
    get(_, name) {
      if (typeof name !== 'string') return undefined;
      return (...args: unknown[]) => runStep(name, args, profile);
    },
  });
}

/** How one failed attempt counts: a lost worker, a real failure to retry, or the step's end. */
export type AttemptOutcome = 'worker-lost' | 'retry' | 'final';

export function classifyAttempt(err: unknown, nonRetryableErrorTypes: readonly string[]): AttemptOutcome {
  if (!(err instanceof ActivityFailure)) return 'final';
  const cause = err.cause;
  if (cause instanceof TimeoutFailure) return cause.timeoutType === 'HEARTBEAT' ? 'worker-lost' : 'retry';
  if (cause instanceof ApplicationFailure) {
    return cause.nonRetryable || (cause.type != null && nonRetryableErrorTypes.includes(cause.type))
      ? 'final'
      : 'retry';
  }
  // Cancelled (the run or its scope was), terminated, or a server failure: another attempt changes none of them.
  return 'final';
}

/** Milliseconds to wait after the `failures`-th real failure: Temporal's backoff, or the failure's own delay. */
export function backoffMs(retry: StepProfile['retry'], failures: number, err?: unknown): number {
  const cause = err instanceof ActivityFailure ? err.cause : undefined;
  if (cause instanceof ApplicationFailure && cause.nextRetryDelay != null) return msToNumber(cause.nextRetryDelay);
  const interval = msToNumber(retry.initialInterval) * retry.backoffCoefficient ** (failures - 1);
  return Math.min(interval, msToNumber(retry.maximumInterval));
}

/** Runs `activityType` as one step under `profile`: the retry loop this module describes. */
export async function runStep<R>(activityType: string, args: unknown[], profile: StepProfile): Promise<R> {
  const { retry } = profile;
  const nonRetryableErrorTypes = [...retry.nonRetryableErrorTypes];
  if (!patched(STEP_RETRY_PATCH)) {
    // Only a replay of a step scheduled before the upgrade comes here; the server already holds the options it was
    // scheduled with (replay matches commands by activity type and id, not options).
    return scheduleActivity<R>(activityType, args, {
      startToCloseTimeout: profile.startToCloseTimeout,
      heartbeatTimeout: profile.heartbeatTimeout,
      retry: { ...retry, nonRetryableErrorTypes },
    });
  }
  const options: ActivityOptions = {
    startToCloseTimeout: profile.startToCloseTimeout,
    heartbeatTimeout: profile.heartbeatTimeout,
    retry: { maximumAttempts: 1, nonRetryableErrorTypes },
  };
  let failures = 0;
  let losses = 0;
  for (let attempt = 1; ; attempt++) {
    try {
      // The UI shows which attempt an activity is and what became of the earlier ones; the first gets the
      // interceptor's summary (workflows/interceptors.ts).
      const summary =
        attempt === 1 ? undefined : attemptSummary(stepSummary(activityType, args[0]), attempt, failures, losses);
      return await scheduleActivity<R>(activityType, args, summary ? { ...options, summary } : options);
    } catch (err) {
      const outcome = classifyAttempt(err, nonRetryableErrorTypes);
      if (outcome === 'final') throw err;
      if (outcome === 'worker-lost') {
        losses++;
        if (losses >= profile.maximumWorkerLosses) {
          throw ApplicationFailure.create({
            type: WORKER_LOST,
            nonRetryable: true,
            message:
              `${activityType} lost its worker on ${losses} attempts (no heartbeat for ${duration(profile.heartbeatTimeout)}` +
              ` each time; ${failures} real failure${failures === 1 ? '' : 's'} besides): the worker crash-loops or the` +
              ' activity wedges it; giving up',
            cause: err as Error,
          });
        }
        continue;
      }
      failures++;
      if (retry.maximumAttempts > 0 && failures >= retry.maximumAttempts) throw err;
      await sleep(backoffMs(retry, failures, err));
    }
  }
}

function duration(d: Duration): string {
  return typeof d === 'number' ? `${d} ms` : d;
}
