/** Timeouts and retry policies of steward's activities and child workflows, named once. */
import type { ActivityOptions } from '@temporalio/workflow';

/** Error types no retry can fix: the `name`s of the non-retryable errors in activities/host/errors.ts. */
export const NON_RETRYABLE = [
  'HostKeyMismatch',
  'HostKeyNotPinned',
  'AuthenticationFailed',
  'UnsupportedHost',
  'UnexpectedHostOutput',
  'ValidationError',
  'ChangeReverted',
  'OpsLoginUnavailable',
  'HostUnreachableAfterRevert',
  'ConfigRejected',
  'StackUnhealthy',
  'SecretSourceUnavailable',
  'LocalImageMissing',
  'DigestPinnedImage',
];

/** A step that changes a host: apt installs can take minutes; a dead worker is noticed within 30 s. */
export const HOST_STEP: ActivityOptions = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '30 seconds',
  retry: {
    initialInterval: '2 seconds',
    backoffCoefficient: 2,
    maximumInterval: '1 minute',
    maximumAttempts: 6,
    nonRetryableErrorTypes: NON_RETRYABLE,
  },
};

/** Connecting and reading facts: quick, so fail fast when the host is unreachable. */
export const HOST_INSPECT: ActivityOptions = {
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { ...HOST_STEP.retry, maximumAttempts: 4 },
};

/**
 * A commit-confirmed change (sshd, firewall): when it locks steward out, the activity waits out the host's revert
 * window (≤ 120 s) before reporting, so it needs a longer heartbeat-free stretch and must not be retried blindly.
 */
export const RISKY_STEP: ActivityOptions = {
  startToCloseTimeout: '10 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { ...HOST_STEP.retry, maximumAttempts: 3 },
};

/**
 * The run guard's visibility query (spec/runs.ts): quick, retried briefly while the run's own start is not yet
 * visible (visibility trails the start by milliseconds on a healthy server).
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

/** How many hosts a fleet operation works on at once. */
export const DEFAULT_FLEET_CONCURRENCY = 10;
