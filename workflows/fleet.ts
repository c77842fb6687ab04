/**
 * A fleet operation: one child workflow per host, at most `concurrency` at once, one summary. A host that fails
 * does not stop the others; its report comes back from the failure's details. Children carry the fleet's trigger
 * (workflows/interceptors.ts).
 */
import { ApplicationFailure, ChildWorkflowFailure, executeChild } from '@temporalio/workflow';
import { hostPlan } from '../model/plan';
import type { HostReport, Mode, Operation } from '../model/report';
import type { Spec } from '../model/schema';
import { startAttributes } from '../model/search-attributes';
import type { HostOperationInput } from './host-operation';
import { hostWorkflowId } from '../model/ids';
import { inLanes } from './lanes';
import { autoUpgrade } from './versioning';
import { DEFAULT_FLEET_CONCURRENCY } from './options';

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
}

export interface FleetReport {
  readonly operation: Operation;
  readonly status: 'completed' | 'failed';
  readonly hosts: readonly HostReport[];
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
  const reports = await inLanes(fleetHostInputs(input), limit, runOne);
  const failed = reports.filter((r) => r.status === 'failed');
  const summary: FleetReport = {
    operation: input.operation,
    status: failed.length ? 'failed' : 'completed',
    hosts: reports,
  };
  if (failed.length > 0) {
    throw ApplicationFailure.create({
      message: `${input.operation} failed on ${failed.map((r) => r.host).join(', ')} (${failed.length}/${reports.length} hosts)`,
      type: 'OperationFailed',
      nonRetryable: true,
      details: [summary],
    });
  }
  return summary;
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
