/**
 * What operations report: the changes they made (or would make, when planning) and their findings.
 * This is the result document of PRODUCT.md's `--json`. Pure: shared by workflows, activities and the CLI.
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

export type Operation = 'provision' | 'harden' | 'deploy' | 'converge' | 'rotate' | 'memory' | 'drift';

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
