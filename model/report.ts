/**
 * What operations report: the changes they made (or would make, when planning) and their findings.
 * This is the result document of `--json`. Pure: shared by workflows, activities and the CLI.
 */

export type ChangeAction = 'create' | 'update' | 'delete' | 'install' | 'restart' | 'reload';

/** One difference between the host and the spec, applied (apply mode) or pending (plan mode). */
export interface Change {
  /** `kind:name`, e.g. `dir:/opt/openclaw/state`, `package:docker.io`, `user:steward`. */
  readonly resource: string;
  readonly action: ChangeAction;
  /** Observed values that differ. Never a secret: files are described by hash, owner and mode. */
  readonly before?: unknown;
  readonly after?: unknown;
  /** Drift plans only: the host moved (`corrective`) or the spec moved since the last apply (`intentional`). */
  readonly drift?: 'corrective' | 'intentional';
}

export type Severity = 'info' | 'low' | 'medium' | 'high' | 'critical';

/** Something an operator should know that is not a change: a policy violation, a control not applicable. */
export interface Finding {
  readonly id: string;
  readonly severity: Severity;
  readonly message: string;
  readonly resource?: string;
}

/** One hardening control as checked on the host after applying: what the spec wants and what the host has. */
export interface ControlResult {
  /** Stable id such as `ssh.PermitRootLogin`, `firewall.input-policy`, `sysctl.net.ipv4.ip_forward`. */
  readonly control: string;
  readonly expected: string;
  readonly observed: string;
  /** `not-applicable`: the control cannot apply on this host (e.g. auditd in a container); not a failure. */
  readonly status: 'pass' | 'fail' | 'not-applicable';
  readonly note?: string;
  /** How long the check took (memory checks time each proof). */
  readonly durationMs?: number;
}

export type StepStatus = 'pending' | 'running' | 'completed' | 'failed' | 'skipped';

/** One activity of an operation, as shown live by the CLI and kept in the result. */
export interface StepReport {
  readonly step: string;
  readonly status: StepStatus;
  readonly changes: readonly Change[];
  readonly findings: readonly Finding[];
  readonly controls?: readonly ControlResult[];
  readonly attempts?: number;
  readonly error?: string;
  readonly startedAt?: string;
  readonly durationMs?: number;
}

/**
 * How far a long step is, carried by its activity's heartbeats (so the Temporal UI shows it too); the CLI prints it
 * while the step runs. Figures the step cannot count are absent.
 */
export interface StepProgress {
  /** What the step is doing now, e.g. `sending image layers`. */
  readonly doing: string;
  /** Bytes done and in all, in this phase. */
  readonly done?: number;
  readonly total?: number;
  /** Bytes per second so far in this phase, and the seconds left at that rate. */
  readonly rate?: number;
  readonly secondsLeft?: number;
  /** A wait: seconds waited so far, and the most it waits. */
  readonly waited?: number;
  readonly limit?: number;
}

/**
 * One line for a step's progress: `sending image layers: 412 of 861 MB (48%), 38.2 MB/s, about 12 s left`, or for a
 * wait `waiting for gateway to be healthy: 14 s of at most 120 s`.
 */
export function describeProgress(p: StepProgress): string {
  const mb = (n: number) => (n / 1e6).toFixed(n < 10e6 ? 1 : 0);
  const figures = [
    p.done !== undefined && p.total
      ? `${mb(p.done)} of ${mb(p.total)} MB (${Math.min(100, Math.floor((100 * p.done) / p.total))}%)`
      : p.done !== undefined
        ? `${mb(p.done)} MB`
        : undefined,
    p.rate !== undefined ? `${(p.rate / 1e6).toFixed(1)} MB/s` : undefined,
    p.secondsLeft !== undefined ? `about ${Math.ceil(p.secondsLeft)} s left` : undefined,
    p.waited !== undefined
      ? `${Math.floor(p.waited)} s${p.limit !== undefined ? ` of at most ${Math.ceil(p.limit)} s` : ''}`
      : undefined,
  ].filter((f) => f !== undefined);
  return figures.length > 0 ? `${p.doing}: ${figures.join(', ')}` : p.doing;
}

export type Operation =
  | 'provision'
  | 'harden'
  | 'deploy'
  | 'converge'
  | 'rotate'
  | 'memory'
  | 'drift'
  | 'backup'
  | 'restore'
  | 'drill'
  | 'upgrade'
  | 'verify';

export interface HostReport {
  readonly host: string;
  readonly operation: Operation;
  readonly mode: Mode;
  readonly status: 'completed' | 'failed';
  readonly changes: readonly Change[];
  readonly findings: readonly Finding[];
  readonly steps: readonly StepReport[];
  /** The hardening report: every control checked (harden only). */
  readonly controls?: readonly ControlResult[];
  /** The host key trusted on first use in this run (the worker pinned it in its known-hosts file). */
  readonly hostKey?: string;
  readonly error?: string;
  /**
   * Set when the run did nothing because another steward run on the host was already running: that run's workflow
   * id. The run completes (a schedule is not paused for it) with outcome `skipped`.
   */
  readonly alreadyRunning?: string;
  /** The operation of that run, when visibility named it. */
  readonly alreadyRunningOperation?: string;
}

/** `apply` changes the host; `plan` only reports what apply would change. */
export type Mode = 'apply' | 'plan';
