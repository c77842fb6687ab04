/**
 * rotate: one secret on one host per workflow (`rotate/<host>/<secret>`, so two rotations of a pair never overlap),
 * as a saga: inspect → create (pending) → set (live; the gateway restarts onto it) → test (healthy, reads it; the
 * gateway token authenticates and the old one is refused) → finish (promote). A failure in create, set or test rolls
 * back: the live file returns to the current version, the gateway restarts onto it when it had moved, the pending
 * version is dropped, and the run fails saying why. A pending version an interrupted run left is found by inspect:
 * tested and finished when it is live (or rolled back), discarded when it never went live.
 *
 * `rotateSecrets` runs several: hosts side by side (up to `concurrency`), the secrets of one host one after another,
 * since each restarts the same gateway. Only version ids pass through here, never a value.
 */
import { ApplicationFailure, CancellationScope, ChildWorkflowFailure, executeChild, uuid4 } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { RotateStepInput } from '../activities/rotate';
import type { HostReport } from '../model/report';
import { rotationWorkflowId } from '../model/ids';
import { hostPlan } from '../model/plan';
import { ROTATION_NON_RETRYABLE, versionId as makeVersionId } from '../model/rotation';
import type { Spec } from '../model/schema';
import { startAttributes } from '../model/search-attributes';
import { inLanes } from './lanes';
import { describeFailure, HostOperation, type HostOperationInput } from './host-operation';
import { DEFAULT_FLEET_CONCURRENCY, HOST_STEP, NON_RETRYABLE, type StepProfile } from './options';
import { proxySteps } from './retry';
import { autoUpgrade } from './versioning';

/** A host step whose error types include rotation's permanent faults. */
const ROTATE_STEP: StepProfile = {
  ...HOST_STEP,
  retry: { ...HOST_STEP.retry, nonRetryableErrorTypes: [...NON_RETRYABLE, ...ROTATION_NON_RETRYABLE] },
};

const { inspectSecret, createSecret, setSecret, testSecret, finishSecret, rollbackSecret } =
  proxySteps<Activities>(ROTATE_STEP);

export const ROTATE_STEPS = [
  'inspectSecret',
  'discardPending',
  'createSecret',
  'setSecret',
  'testSecret',
  'finishSecret',
  'rollbackSecret',
];

export interface RotateSecretInput extends HostOperationInput {
  readonly secret: string;
  /** Rotate only when the secret's `rotateEvery` has passed since its last rotation. */
  readonly due?: boolean;
}

export async function rotateSecret(input: RotateSecretInput): Promise<HostReport> {
  const op = new HostOperation('rotate', input, ROTATE_STEPS);
  const step = <T extends object>(
    name: string,
    activity: (i: RotateStepInput) => Promise<T>,
    extra: Partial<RotateStepInput> = {},
  ): Promise<T> =>
    op.step(name, (i) => activity({ ...i, secret: input.secret, ...(input.due ? { due: true } : {}), ...extra }));

  return op.run(async () => {
    const { state } = await step('inspectSecret', inspectSecret);
    if (input.mode === 'plan' || !state.due) {
      op.skip(...ROTATE_STEPS);
      return;
    }
    const resume = state.pending?.live ? state.pending.id : undefined;
    if (resume) {
      op.skip('discardPending', 'createSecret');
    } else if (state.pending) {
      const reason = 'left pending by an interrupted rotation, never live';
      await step('discardPending', rollbackSecret, { versionId: state.pending.id, reason });
    } else {
      op.skip('discardPending');
    }
    const versionId = resume ?? makeVersionId(new Date(), uuid4().replace(/-/g, ''));

    try {
      if (!resume) await step('createSecret', createSecret, { versionId });
      await step('setSecret', setSecret, { versionId });
      const { controls } = await step('testSecret', testSecret, { versionId });
      const failed = controls.filter((c) => c.status === 'fail');
      if (failed.length > 0) {
        throw ApplicationFailure.nonRetryable(
          `test of ${input.secret} version ${versionId} failed: ${failed.map((c) => `${c.control} (expected ${c.expected}, observed ${c.observed})`).join('; ')}`,
          'SecretTestFailed',
        );
      }
    } catch (err) {
      op.skip('createSecret', 'setSecret', 'testSecret', 'finishSecret');
      const reason = describeFailure(err);
      let rolledBack;
      try {
        // Compensation runs even when the run is cancelled.
        rolledBack = await CancellationScope.nonCancellable(() =>
          step('rollbackSecret', rollbackSecret, { versionId, reason }),
        );
      } catch (undo) {
        throw ApplicationFailure.nonRetryable(
          `${reason}; rolling back failed too: ${describeFailure(undo)}`,
          'RotationRollbackFailed',
        );
      }
      const unproven = rolledBack.controls.filter((c) => c.status === 'fail');
      throw ApplicationFailure.nonRetryable(
        `${reason}; ${rolledBack.restored ? 'rolled back' : 'nothing went live'}: the host serves version ${rolledBack.current} of ${input.secret}` +
          (unproven.length > 0 ? `, but ${unproven.map((c) => `${c.control} observed ${c.observed}`).join('; ')}` : ''),
        'RotationRolledBack',
      );
    }
    await step('finishSecret', finishSecret, { versionId });
    op.skip('rollbackSecret');
  });
}

/** Several rotations: per host, the secrets in order. */
export interface RotateSecretsInput {
  readonly spec: Spec;
  readonly mode: HostOperationInput['mode'];
  readonly due?: boolean;
  readonly rotations: readonly { readonly host: string; readonly secrets: readonly string[] }[];
  readonly concurrency?: number;
}

/** One rotation's outcome: the child's report. */
export interface RotationOutcome {
  readonly host: string;
  readonly secret: string;
  readonly report: HostReport;
}

export interface RotateSecretsReport {
  readonly operation: 'rotate';
  readonly status: 'completed' | 'failed';
  readonly rotations: readonly RotationOutcome[];
}

export async function rotateSecrets(input: RotateSecretsInput): Promise<RotateSecretsReport> {
  const limit = Math.max(1, input.concurrency ?? DEFAULT_FLEET_CONCURRENCY);

  const rotateOne = async (host: string, secret: string): Promise<RotationOutcome> => {
    const child: RotateSecretInput = {
      spec: hostPlan(input.spec, host),
      host,
      mode: input.mode,
      secret,
      ...(input.due ? { due: true } : {}),
    };
    try {
      const report = await executeChild(rotateSecret, {
        workflowId: rotationWorkflowId(host, secret),
        args: [child],
        typedSearchAttributes: startAttributes({ host, operation: 'rotate' }),
      });
      return { host, secret, report };
    } catch (err) {
      return { host, secret, report: failedReport(child, err) };
    }
  };
  // One lane per host at a time; a host's secrets rotate one after another.
  const perHost = await inLanes(input.rotations, limit, async ({ host, secrets }) => {
    const done: RotationOutcome[] = [];
    for (const secret of secrets) done.push(await rotateOne(host, secret));
    return done;
  });
  const outcomes = perHost.flat();
  const failed = outcomes.filter((o) => o.report.status === 'failed');
  const summary: RotateSecretsReport = {
    operation: 'rotate',
    status: failed.length > 0 ? 'failed' : 'completed',
    rotations: outcomes,
  };
  if (failed.length > 0) {
    throw ApplicationFailure.create({
      message: `rotate failed for ${failed.map((o) => `${o.secret} on ${o.host}`).join(', ')} (${failed.length}/${outcomes.length})`,
      type: 'OperationFailed',
      nonRetryable: true,
      details: [summary],
    });
  }
  return summary;
}

/**
 * Under Worker Deployments (`steward worker --deployment`) a rotation and a rotation plan move to the promoted build at
 * their next workflow task (a rotation waits on restarts and tests for minutes; a plan outlives its children). Their
 * changes must replay on runs started on the build before: guard them with `patched` (test/unit/replay.test.ts).
 */
autoUpgrade(rotateSecret);
autoUpgrade(rotateSecrets);

/** The child's own report when it attached one, else one saying why the child could not run. */
function failedReport(input: RotateSecretInput, err: unknown): HostReport {
  const cause = err instanceof ChildWorkflowFailure ? err.cause : err;
  const attached = (cause instanceof ApplicationFailure ? cause.details?.[0] : undefined) as HostReport | undefined;
  if (attached?.host === input.host) return attached;
  return {
    host: input.host,
    operation: 'rotate',
    mode: input.mode,
    status: 'failed',
    changes: [],
    findings: [],
    steps: [],
    error: describeFailure(err),
  };
}
