/** Timeouts and retry policies of steward's activities and child workflows, named once. */
import type { Duration } from '@temporalio/common';
import type { ActivityOptions } from '@temporalio/workflow';

/** Error types no retry can fix: the `name`s of the non-retryable errors in activities/host/errors.ts. */
export const NON_RETRYABLE = [
  'HostKeyMismatch',
  'HostKeyNotPinned',
  'KnownHostsUnavailable',
  'AuthenticationFailed',
  'UnsupportedHost',
  'UnexpectedHostOutput',
  'ValidationError',
  'ChangeReverted',
  'OpsLoginUnavailable',
  'HostUnreachableAfterRevert',
  'ConfigRejected',
  'StackUnhealthy',
  'RebootTimedOut',
  'SecretSourceUnavailable',
  'MemoryApiKeyUnavailable',
  'ConsumerUnavailable',
  'LocalImageMissing',
  'DigestPinnedImage',
  'BackupNotConfigured',
  'SnapshotUnsound',
];

/**
 * How a step runs and is retried (workflows/retry.ts). Each attempt is one activity; the workflow retries it:
 * a real failure (the activity threw, or ran past `startToCloseTimeout`) counts against `retry.maximumAttempts`
 * and waits out the backoff, an attempt whose worker died (no heartbeat within `heartbeatTimeout`) counts only
 * against `maximumWorkerLosses` and is rescheduled at once.
 */
export interface StepProfile {
  /** How long one attempt may run. */
  readonly startToCloseTimeout: Duration;
  /**
   * How long an attempt may go without a heartbeat before it is declared lost with its worker. Activities heartbeat
   * every 5 s (activities/context.ts), and steward's worker sends them at most 5 s apart (workers/worker.ts).
   */
  readonly heartbeatTimeout: Duration;
  /** Real failures: Temporal's retry policy fields, with the same meaning. */
  readonly retry: {
    readonly initialInterval: Duration;
    readonly backoffCoefficient: number;
    readonly maximumInterval: Duration;
    /** Attempts in all that may fail for real, the last one included; 0 for no limit. */
    readonly maximumAttempts: number;
    readonly nonRetryableErrorTypes: readonly string[];
  };
  /**
   * Attempts that may be lost to a dead worker before the step fails (type `WorkerLost`): generous, since a lost
   * worker says nothing about the step, but finite, so an activity that wedges its worker (or stops heartbeating
   * while the worker lives) ends.
   */
  readonly maximumWorkerLosses: number;
}

/**
 * 15 s without a heartbeat declares an attempt lost (it was 30 s): three heartbeat intervals, so a live attempt
 * survives two heartbeats lost or late (a busy event loop, a slow server) before it is given up on, and a dead
 * worker's step moves on within 15 s. Much shorter buys little: the loss is rescheduled at once, while a live attempt
 * wrongly declared lost keeps running on the host beside the next one (both idempotent, but two apt or Compose runs
 * on one host contend).
 */
const HEARTBEAT_TIMEOUT = '15 seconds';
/**
 * Lost attempts a host step tolerates. The cap only ends what no retry fixes — an activity that stops heartbeating
 * while its worker lives, or a worker that this very step crashes — and costs nothing but time until then, so it is
 * generous: a wedged activity ends after 50 × 15 s ≈ 13 min, within the 30 min one attempt may run anyway. A worker
 * killed every 20–40 s (bench/deploy-kill.ts) spent 12 of them on a 1.3 GB first image transfer, which resumes.
 */
const MAXIMUM_WORKER_LOSSES = 50;

/** A step that changes a host: apt installs can take minutes. */
export const HOST_STEP: StepProfile = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: HEARTBEAT_TIMEOUT,
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 6,
    nonRetryableErrorTypes: NON_RETRYABLE,
  },
  maximumWorkerLosses: MAXIMUM_WORKER_LOSSES,
};

/** Connecting and reading facts: quick, so fail fast when the host is unreachable. */
export const HOST_INSPECT: StepProfile = {
  ...HOST_STEP,
  startToCloseTimeout: '2 minutes',
  retry: { ...HOST_STEP.retry, maximumAttempts: 4 },
};

/**
 * A commit-confirmed change (sshd, firewall): when it locks steward out, the activity waits out the host's revert
 * window (≤ 120 s, heartbeating) before reporting, so it needs a longer run; a real failure is not retried blindly.
 */
export const RISKY_STEP: StepProfile = {
  ...HOST_STEP,
  startToCloseTimeout: '10 minutes',
  retry: { ...HOST_STEP.retry, maximumAttempts: 3 },
};

/**
 * A reboot inside the reboot window: the host may take minutes to boot; the activity waits for it (heartbeating,
 * at most 10 min) and a retry after the reboot finds nothing pending, so it reboots at most once.
 */
export const REBOOT_STEP: StepProfile = {
  ...HOST_STEP,
  startToCloseTimeout: '15 minutes',
  retry: { ...HOST_STEP.retry, maximumAttempts: 3 },
};

/** Moving a host's data: as long as a large store takes to stream, read back and stage; heartbeats every 5 s. */
export const DATA_STEP: StepProfile = {
  ...HOST_STEP,
  startToCloseTimeout: '6 hours',
  retry: { ...HOST_STEP.retry, maximumAttempts: 3 },
};

/**
 * The run guard's visibility query (model/runs.ts): quick, retried briefly while the run's own start is not yet
 * visible (visibility trails the start by milliseconds on a healthy server). No heartbeat: a lost worker shows as a
 * start-to-close timeout within 30 s, and 20 attempts absorb a few.
 */
export const RUN_GUARD: ActivityOptions = {
  startToCloseTimeout: '30 seconds',
  retry: {
    initialInterval: '200 milliseconds',
    backoffCoefficient: 1.5,
    maximumInterval: '2 seconds',
    maximumAttempts: 20,
  },
};

/**
 * Telling webhooks of a run's end (activities/notify.ts): the activity retries each delivery itself and reports what
 * it could not deliver, so the server runs it once; 60 s covers three attempts of 5 s with their pauses.
 */
export const NOTIFY: ActivityOptions = {
  startToCloseTimeout: '60 seconds',
  retry: { maximumAttempts: 1 },
};

/** How many hosts a fleet operation works on at once. */
export const DEFAULT_FLEET_CONCURRENCY = 10;
