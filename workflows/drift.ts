/**
 * drift: plan by default — every managed resource observed in one batch and classified (corrective: the host moved;
 * intentional: the spec moved since the last apply) with the policy's findings on the observed host. With repair,
 * the operations that own drifted resources run again as child workflows (they converge exactly the difference
 * through their own apply code), and a second observation proves nothing is left. The host's drifted resources are
 * metrics (model/metrics.ts): those this run found, and those it leaves drifted as it ends (a plan's, or what a
 * failed repair left), with the time it said so.
 */
import { ApplicationFailure, executeChild, metricMeter } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { DRIFT_CHECKED, DRIFT_FOUND, DRIFT_RESOURCES } from '../model/metrics';
import type { Finding, HostReport } from '../model/report';
import { StewardHost, StewardOperation, StewardOutcome } from '../model/search-attributes';
import type { AppliedOperation } from '../model/sections';
import { deployHost } from './deploy';
import { hardenHost } from './harden';
import { HostOperation, type HostOperationInput } from './host-operation';
import { hostWorkflowId } from '../model/ids';
import { HOST_INSPECT, HOST_STEP } from './options';
import { provisionHost } from './provision';
import { proxySteps } from './retry';

const { observeDrift } = proxySteps<Activities>(HOST_INSPECT);
const { observeDrift: observeAfterRepair } = proxySteps<Activities>(HOST_STEP);

export interface DriftInput extends HostOperationInput {
  /** Fold `openclaw security audit` findings in (about 10 s per host); default true. */
  readonly audit?: boolean;
  /**
   * Reuse the host's cached audit while its inputs are unchanged and it is at most this old (ms); 0 runs it now.
   * Default 24 h (activities/drift.ts).
   */
  readonly auditMaxAgeMs?: number;
}

const REPAIRS: Record<AppliedOperation, { step: string; run: (i: HostOperationInput) => Promise<HostReport> }> = {
  provision: { step: 'repairProvision', run: provisionHost },
  harden: { step: 'repairHarden', run: hardenHost },
  deploy: { step: 'repairDeploy', run: deployHost },
};

export const DRIFT_STEPS = [
  'inspectHost',
  'observeDrift',
  ...Object.values(REPAIRS).map((r) => r.step),
  'verifyRepair',
];

export async function driftHost(input: DriftInput): Promise<HostReport> {
  const op = new HostOperation('drift', input, DRIFT_STEPS);
  const repairing = input.mode === 'apply';
  const host = { host: input.host };
  // What this run leaves drifted, and when it said so: with several workers, the newest word counts.
  const left = (n: number) => {
    metricMeter
      .createGauge(DRIFT_RESOURCES, 'int', undefined, 'resources drifted as the last drift run left them')
      .set(n, host);
    metricMeter
      .createGauge(DRIFT_CHECKED, 'int', 's', 'when a drift run last set steward_drift_resources')
      .set(Math.floor(Date.now() / 1000), host);
  };
  return op.run(async () => {
    let found = 0;
    const plan = await op.step('observeDrift', async (i) => {
      const r = await observeDrift({
        ...i,
        audit: input.audit ?? true,
        ...(input.auditMaxAgeMs !== undefined ? { auditMaxAgeMs: input.auditMaxAgeMs } : {}),
      });
      found = r.changes.length;
      // When repairing, what drifted is reported as findings; the changes are what the repairs make.
      return repairing ? { ...r, changes: [], findings: [...r.findings, ...r.changes.map(asFinding)] } : r;
    });
    metricMeter.createCounter(DRIFT_FOUND, undefined, 'drifted resources found, per run').add(found, host);
    const rest = [...Object.values(REPAIRS).map((r) => r.step), 'verifyRepair'];
    if (!repairing || plan.repair.length === 0) {
      left(found);
      op.skip(...rest);
      return;
    }
    // A repair that fails leaves what was found; one that ends, what its second observation sees.
    let remaining = found;
    try {
      for (const operation of ['provision', 'harden', 'deploy'] as const) {
        const { step, run } = REPAIRS[operation];
        if (!plan.repair.includes(operation)) {
          op.skip(step);
          continue;
        }
        await op.step(step, async () => {
          const report = await executeChild(run, {
            workflowId: hostWorkflowId(operation, input.host, new Date()),
            args: [{ spec: input.spec, host: input.host, mode: 'apply' }],
            typedSearchAttributes: [
              { key: StewardHost, value: input.host },
              { key: StewardOperation, value: operation },
              { key: StewardOutcome, value: 'running' },
            ],
          });
          if (report.alreadyRunning) {
            throw ApplicationFailure.nonRetryable(
              `cannot repair now: a ${report.alreadyRunningOperation ?? operation} of ${input.host} is already running (workflow ${report.alreadyRunning})`,
              'AlreadyRunning',
            );
          }
          // What the repair changed; the operation's own controls stay in its own run.
          return { changes: report.changes, findings: report.findings.filter((f) => f.severity !== 'info') };
        });
      }
      const after = await op.step('verifyRepair', async (i) => {
        const r = await observeAfterRepair({ ...i, audit: false });
        return { ...r, changes: [], findings: r.changes.map(asFinding) };
      });
      remaining = after.findings.length;
      if (after.findings.length > 0) {
        throw ApplicationFailure.nonRetryable(
          `still drifted after repair: ${after.findings.map((f) => f.resource).join(', ')}`,
          'DriftRemains',
        );
      }
    } finally {
      left(remaining);
    }
  });
}

function asFinding(c: { resource: string; drift: string; before?: unknown; after?: unknown }): Finding {
  return {
    id: `drift.${c.drift}`,
    severity: 'medium',
    message: `${c.resource}: expected ${JSON.stringify(c.after ?? null)}, observed ${JSON.stringify(c.before ?? null)}`,
    resource: c.resource,
  };
}
