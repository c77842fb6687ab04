/**
 * Errors raised while talking to a host. Each class decides once, where it is made, whether retrying can help;
 * `toActivityFailure` turns that decision into a Temporal failure.
 */
import { ApplicationFailure } from '@temporalio/common';

/** Base class: every host error names the host. */
export abstract class HostError extends Error {
  /** Whether a later attempt can succeed without the operator changing anything. */
  abstract readonly retryable: boolean;
  constructor(
    readonly host: string,
    message: string,
  ) {
    super(`${host}: ${message}`);
  }
}

/** The host presented a key other than the pinned one. Nothing was sent to it. */
export class HostKeyMismatch extends HostError {
  override readonly name = 'HostKeyMismatch';
  readonly retryable = false;
  constructor(
    host: string,
    readonly expected: string,
    readonly presented: string,
    /** Where the pin is: a known-hosts file; else the spec. */
    readonly pinnedIn?: string,
  ) {
    super(
      host,
      `host key changed: pinned ${expected}, host presented ${presented}. ` +
        (pinnedIn
          ? `If the host was rebuilt on purpose, remove its line from ${pinnedIn}; otherwise treat it as an attack.`
          : 'If the host was rebuilt on purpose, update hosts[].hostKey in the spec; otherwise treat it as an attack.'),
    );
  }
}

/** No key is pinned and the spec does not allow trusting the first key seen. */
export class HostKeyNotPinned extends HostError {
  override readonly name = 'HostKeyNotPinned';
  readonly retryable = false;
  constructor(
    host: string,
    readonly presented: string,
  ) {
    super(
      host,
      `host key is not pinned (host presented ${presented}); set hosts[].hostKey or hosts[].trustOnFirstUse: true`,
    );
  }
}

/** The worker's known-hosts file cannot be used (malformed, not private, not writable): nothing was sent. */
export class KnownHostsUnavailable extends HostError {
  override readonly name = 'KnownHostsUnavailable';
  readonly retryable = false;
}

/** The host refused every credential steward has for it. */
export class AuthenticationFailed extends HostError {
  override readonly name = 'AuthenticationFailed';
  readonly retryable = false;
  constructor(
    host: string,
    readonly users: readonly string[],
  ) {
    super(host, `authentication refused for ${users.join(' and ')}; check identityFile or the SSH agent`);
  }
}

/** TCP or SSH transport failure: refused, reset, timed out during handshake. */
export class ConnectionFailed extends HostError {
  override readonly name = 'ConnectionFailed';
  readonly retryable = true;
  constructor(host: string, reason: string) {
    super(host, `cannot connect: ${reason}`);
  }
}

/** A command ran and exited non-zero. Retryable unless the caller knows better (a lock held, a mirror down). */
export class CommandFailed extends HostError {
  override readonly name = 'CommandFailed';
  constructor(
    host: string,
    /** A short description of the command, never its secret inputs. */
    readonly command: string,
    readonly exitCode: number | null,
    readonly stderr: string,
    readonly retryable = true,
  ) {
    super(host, `${command} exited ${exitCode ?? 'by signal'}${stderr ? `: ${lastLines(stderr, 6)}` : ''}`);
  }
}

/** A command did not finish within its timeout; its channel was closed and the remote `timeout` kills it. */
export class CommandTimedOut extends HostError {
  override readonly name = 'CommandTimedOut';
  readonly retryable = true;
  constructor(
    host: string,
    readonly command: string,
    readonly timeoutMs: number,
  ) {
    super(host, `${command} did not finish within ${Math.round(timeoutMs / 1000)} s`);
  }
}

/** The host is not one steward can manage (not Debian-like, no sudo). The operator must change something. */
export class UnsupportedHost extends HostError {
  override readonly name = 'UnsupportedHost';
  readonly retryable = false;
}

/** After applying, the host still differs from the desired state. */
export class VerificationFailed extends HostError {
  override readonly name = 'VerificationFailed';
  readonly retryable = true;
  constructor(
    host: string,
    readonly resources: readonly string[],
  ) {
    super(host, `still differs from the spec after apply: ${resources.join(', ')}`);
  }
}

/** Output from the host that steward cannot parse: treated like invalid input. */
export class UnexpectedHostOutput extends HostError {
  override readonly name = 'UnexpectedHostOutput';
  readonly retryable = false;
}

/** Maps any error thrown by an activity to an ApplicationFailure with the right retry decision. */
export function toActivityFailure(err: unknown): ApplicationFailure {
  if (err instanceof ApplicationFailure) return err;
  if (err instanceof HostError) {
    return ApplicationFailure.create({
      message: err.message,
      type: err.name,
      nonRetryable: !err.retryable,
      cause: err,
    });
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return ApplicationFailure.create({ message: e.message, type: e.name, cause: e });
}

function lastLines(text: string, n: number): string {
  return text.trim().split('\n').slice(-n).join(' | ');
}
