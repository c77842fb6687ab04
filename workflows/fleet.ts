/**
 * A fleet operation: one child workflow per host, at most `concurrency` at once, one summary. A host that fails
 * does not stop the others; its report comes back from the failure's details. Children carry the fleet's trigger
 * (workflows/interceptors.ts).
 *
 * With `waves`, the hosts go in waves (model/waves.ts), each after the one before it succeeded and, with `bakeMs`, a
 * pause; with `verifyWaves`, after that pause, a check of the wave's hosts (the operation planned again, or the
 * stack verified) that must pass too. A wave with a failed host halts the rollout: later waves are left untouched, and the run waits (up to
 * `haltWaitMs`) for the `resume` update, which runs the wave's failed hosts again and goes on, or `abort`, which
 * ends it failed. The `fleet` query says where it stands.
 */
import {
  ApplicationFailure,
  ChildWorkflowFailure,
  condition,
  defineQuery,
  defineUpdate,
  executeChild,
  patched,
  setHandler,
  sleep,
} from '@temporalio/workflow';
import { hostPlan } from '../model/plan';
import type { HostReport, Mode, Operation } from '../model/report';
import type { Spec } from '../model/schema';
import { startAttributes } from '../model/search-attributes';
import type { HostOperationInput } from './host-operation';
import { hostWorkflowId } from '../model/ids';
import { inLanes } from './lanes';
import { autoUpgrade } from './versioning';
import { DEFAULT_FLEET_CONCURRENCY } from './options';
import {
  ABORT_UPDATE,
  FLEET_QUERY,
  RESUME_UPDATE,
  UNWATCHED_RESOURCES,
  waveCheck,
  waveGroups,
  type FleetProgress,
  type Halted,
  type WaveSize,
  type WaveStatus,
} from '../model/waves';

export interface FleetInput {
  readonly operation: Operation;
  /** Workflow type run per host, e.g. `provisionHost`. */
  readonly workflowType: string;
  /** The spec, once: each host's plan is cut from it (model/plan.ts). */
  readonly spec?: Spec;
  readonly mode?: Mode;
  /** Operation-specific fields every host's input gets (e.g. drift's `audit`). */
  readonly extra?: Readonly<Record<string, unknown>>;
  /** Host names; a run started before host plans carries each host's whole input instead. */
  readonly hosts: readonly (string | HostOperationInput)[];
  readonly concurrency?: number;
  /** The time in the children's ids (`<operation>/<host>/<time>`), so the CLI can follow them; default now. */
  readonly startedAt?: string;
  /** Roll out in waves of these sizes (absent: every host at once, `concurrency` at a time). */
  readonly waves?: readonly WaveSize[];
  /** Pause between two waves. */
  readonly bakeMs?: number;
  /**
   * Before the next wave, after the bake, prove the wave's hosts again (model/waves.ts `waveCheck`): a host that
   * fails it halts the rollout as a failed host does.
   */
  readonly verifyWaves?: boolean;
  /** How long a halted rollout waits for `resume` or `abort` before it ends failed (default 7 days). */
  readonly haltWaitMs?: number;
}

/** Marks fleets that roll out in waves (only runs started with `waves` take that path). */
export const WAVES_PATCH = 'steward-fleet-waves';
export const DEFAULT_HALT_WAIT_MS = 7 * 24 * 3600_000;

export const fleetQuery = defineQuery<FleetProgress>(FLEET_QUERY);
/** Runs the halted wave's failed hosts again, then the waves after it. Refused unless the rollout is halted. */
export const resumeUpdate = defineUpdate<{ resumed: readonly string[] }, []>(RESUME_UPDATE);
/** Ends a halted rollout failed; its untouched hosts stay so. Refused unless the rollout is halted. */
export const abortUpdate = defineUpdate<{ untouched: readonly string[] }, [reason: string]>(ABORT_UPDATE);

export interface FleetReport {
  readonly operation: Operation;
  readonly status: 'completed' | 'failed';
  readonly hosts: readonly HostReport[];
  /** Waves: hosts never worked on, because an earlier wave failed and the rollout was aborted (or not resumed). */
  readonly untouched?: readonly string[];
  /** Waves: why the rollout ended before its last wave. */
  readonly stopped?: string;
}

export async function fleet(input: FleetInput): Promise<FleetReport> {
  const limit = Math.max(1, input.concurrency ?? DEFAULT_FLEET_CONCURRENCY);
  const startedAt = input.startedAt ? new Date(input.startedAt) : new Date();

  const runOne = async (host: HostOperationInput): Promise<HostReport> => {
    try {
      return await executeChild<(i: HostOperationInput) => Promise<HostReport>>(input.workflowType, {
        workflowId: hostWorkflowId(input.operation, host.host, startedAt),
        args: [host],
        typedSearchAttributes: startAttributes({ host: host.host, operation: input.operation }),
      });
    } catch (err) {
      return failedReport(input.operation, host, err);
    }
  };
  const hosts = fleetHostInputs(input);
  if (input.waves && input.waves.length > 0 && patched(WAVES_PATCH)) {
    return finish(input.operation, await inWaves(input, startedAt, hosts, limit, runOne));
  }
  return finish(input.operation, { hosts: await inLanes(hosts, limit, runOne) });
}

/** The fleet's summary: returned when every host completed, else thrown with it attached. */
function finish(operation: Operation, outcome: Omit<FleetReport, 'operation' | 'status'>): FleetReport {
  const failed = outcome.hosts.filter((r) => r.status === 'failed');
  const untouched = outcome.untouched ?? [];
  const summary: FleetReport = {
    operation,
    status: failed.length || untouched.length ? 'failed' : 'completed',
    ...outcome,
  };
  if (summary.status === 'failed') {
    const total = outcome.hosts.length + untouched.length;
    throw ApplicationFailure.create({
      message:
        `${operation} failed on ${failed.map((r) => r.host).join(', ')} (${failed.length}/${total} hosts)` +
        (untouched.length ? `; untouched: ${untouched.join(', ')}` : '') +
        (outcome.stopped ? ` — ${outcome.stopped}` : ''),
      type: 'OperationFailed',
      nonRetryable: true,
      details: [summary],
    });
  }
  return summary;
}

/** The rollout in waves the module comment describes. */
async function inWaves(
  input: FleetInput,
  startedAt: Date,
  hosts: readonly HostOperationInput[],
  limit: number,
  runOne: (host: HostOperationInput) => Promise<HostReport>,
): Promise<Omit<FleetReport, 'operation' | 'status'>> {
  const groups = waveGroups(hosts, input.waves ?? []);
  const status: WaveStatus[] = groups.map(() => 'pending');
  const reports = new Map<string, HostReport>();
  let halted: Halted | undefined;
  let decision: { kind: 'resume' | 'abort'; reason?: string } | undefined;
  setHandler(fleetQuery, () => ({
    operation: input.operation,
    mode: input.mode ?? 'apply',
    startedAt: startedAt.toISOString(),
    waves: groups.map((g, i) => ({ hosts: g.map((h) => h.host), status: status[i]! })),
    ...(halted ? { halted } : {}),
  }));
  const whileHalted = (): void => {
    if (!halted) throw new Error('the rollout is not halted: there is nothing to resume or abort');
    if (decision) throw new Error(`the rollout was already told to ${decision.kind}`);
  };
  setHandler(
    resumeUpdate,
    () => {
      decision = { kind: 'resume' };
      return { resumed: halted!.failed };
    },
    { validator: whileHalted },
  );
  setHandler(
    abortUpdate,
    (reason: string) => {
      decision = { kind: 'abort', ...(reason ? { reason } : {}) };
      return { untouched: halted!.untouched };
    },
    { validator: (_reason: string) => whileHalted() },
  );

  const untouchedAfter = (w: number): string[] => groups.slice(w + 1).flatMap((g) => g.map((h) => h.host));
  const failedIn = (wave: readonly HostOperationInput[]): string[] =>
    wave
      .filter((h) => {
        const r = reports.get(h.host);
        return r?.status === 'failed' || r?.alreadyRunning !== undefined;
      })
      .map((h) => h.host);
  const check = input.verifyWaves ? waveCheck(input.operation) : undefined;
  /** Hosts that passed their wave's check: a resume checks the others, not only the hosts it ran again. */
  const checkedOk = new Set<string>();
  for (let w = 0; w < groups.length; w++) {
    let pending: readonly HostOperationInput[] = groups[w]!;
    const last = w === groups.length - 1;
    for (let attempt = 1; ; attempt++) {
      status[w] = 'running';
      for (const r of await inLanes(pending, limit, runOne)) reports.set(r.host, r);
      // A host another run held (this run yielded it) was not worked on: it halts the rollout like a failure.
      let failed = failedIn(groups[w]!);
      if (failed.length === 0 && !last && check) {
        // Between waves: the bake, then the wave's hosts proven again before the next wave starts.
        if (input.bakeMs) {
          status[w] = 'baking';
          await sleep(input.bakeMs);
        }
        status[w] = 'verifying';
        const unchecked = groups[w]!.filter((h) => !checkedOk.has(h.host));
        const checked = await inLanes(unchecked, limit, (h) => checkOne(h, w + 1, attempt));
        for (const c of checked) {
          if (c.status === 'failed') reports.set(c.host, verificationFailed(reports.get(c.host), c, w + 1));
          else checkedOk.add(c.host);
        }
        failed = failedIn(groups[w]!);
      }
      if (failed.length === 0) break;
      status[w] = 'halted';
      halted = {
        wave: w + 1,
        waves: groups.length,
        failed,
        untouched: untouchedAfter(w),
        reports: orderedReports(hosts, reports),
      };
      decision = undefined;
      const decided = await condition(() => decision !== undefined, input.haltWaitMs ?? DEFAULT_HALT_WAIT_MS);
      const chosen = decision as { kind: 'resume' | 'abort'; reason?: string } | undefined;
      const untouched = halted.untouched;
      halted = undefined;
      if (!decided || chosen?.kind !== 'resume') {
        status[w] = 'failed';
        for (let later = w + 1; later < groups.length; later++) status[later] = 'untouched';
        const stopped = !decided
          ? `halted at wave ${w + 1} of ${groups.length}; no resume or abort came in time`
          : `aborted at wave ${w + 1} of ${groups.length}${chosen?.reason ? `: ${chosen.reason}` : ''}`;
        return { hosts: orderedReports(hosts, reports), untouched, stopped };
      }
      pending = pending.filter((h) => failed.includes(h.host));
    }
    status[w] = 'completed';
    // Without a check the bake follows the wave; with one it came before the check.
    if (input.bakeMs && !last && !check) {
      status[w] = 'baking';
      await sleep(input.bakeMs);
      status[w] = 'completed';
    }
  }
  return { hosts: orderedReports(hosts, reports) };

  /** The wave check of one host: a plan or a verification, as a child run; failed when it fails or finds changes. */
  async function checkOne(host: HostOperationInput, wave: number, attempt: number): Promise<HostReport> {
    const { workflowType, expectsNoChanges } = check!;
    try {
      const r = await executeChild<(i: HostOperationInput) => Promise<HostReport>>(workflowType, {
        workflowId: `${hostWorkflowId(input.operation, host.host, startedAt)}/wave-check-${wave}-${attempt}`,
        args: [{ ...host, mode: 'plan' }],
      });
      // What drift does not watch (a security update published during the bake) is no failure of the wave.
      const changes = r.changes.filter((c) => !UNWATCHED_RESOURCES.includes(c.resource));
      if (expectsNoChanges && changes.length > 0) {
        return {
          ...r,
          status: 'failed',
          error: `${changes.length} change(s) found again after the wave: ${changes
            .slice(0, 5)
            .map((c) => c.resource)
            .join(', ')}`,
        };
      }
      return r;
    } catch (err) {
      return failedReport(input.operation, host, err);
    }
  }
}

/** A host that passed its operation and failed the wave's check: its report, failed with the check's reason. */
function verificationFailed(done: HostReport | undefined, check: HostReport, wave: number): HostReport {
  const base: HostReport = done ?? { ...check, changes: [] };
  return {
    ...base,
    status: 'failed',
    findings: [...base.findings, ...check.findings.filter((f) => f.severity !== 'info')],
    error: `the check after wave ${wave} failed: ${check.error ?? 'unknown error'}`,
  };
}

/** The reports of the hosts worked on, in the fleet's order. */
function orderedReports(hosts: readonly HostOperationInput[], reports: Map<string, HostReport>): HostReport[] {
  return hosts.map((h) => reports.get(h.host)).filter((r): r is HostReport => r !== undefined);
}

/**
 * A fleet plan outlives its hosts' runs: under Worker Deployments it moves to the promoted build at its next workflow
 * task, while each host's run stays on the build it started on (the worker's default, pinned). A change here must
 * replay on plans started before it: guard it with `patched` (test/unit/replay.test.ts).
 */
autoUpgrade(fleet);

/** Each host's input: its plan cut from the fleet's spec, or, for a run started before plans, the input it carries. */
export function fleetHostInputs(input: FleetInput): HostOperationInput[] {
  return input.hosts.map((h) => {
    if (typeof h !== 'string') return h;
    if (!input.spec || !input.mode || !input.spec.hosts.some((x) => x.name === h)) {
      throw ApplicationFailure.nonRetryable(`the fleet's input names host ${h}, which its spec does not have`);
    }
    return { ...input.extra, spec: hostPlan(input.spec, h), host: h, mode: input.mode };
  });
}

/** The child's own report when it attached one, else a report saying why the child could not run. */
function failedReport(operation: Operation, host: HostOperationInput, err: unknown): HostReport {
  const cause = err instanceof ChildWorkflowFailure ? err.cause : err;
  const details = cause instanceof ApplicationFailure ? cause.details : undefined;
  const attached = details?.[0] as HostReport | undefined;
  if (attached?.host === host.host) return attached;
  return {
    host: host.host,
    operation,
    mode: host.mode,
    status: 'failed',
    changes: [],
    findings: [],
    steps: [],
    error: err instanceof Error ? err.message : String(err),
  };
}
