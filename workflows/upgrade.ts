/**
 * upgrade: OpenClaw to another release as one transaction. A snapshot first (with its canary); the new image sent
 * and the rendered config validated by the new version before anything live changes; then the new release applied
 * and verified — the gateway healthy and its token accepted, the canary written before the snapshot recalled by the
 * new version, the operator's own check. On any failure after the new version started, the previous release comes
 * back (files and image) and so does the snapshot's data: whatever the new version migrated is rolled back too, and
 * the canary proves the old version reads its memories again. `--plan` shows the version change and what the new
 * version's validation says, when the image is on the host already.
 */
import { ApplicationFailure, CancellationScope, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { BackupCanary, RestoreStepInput } from '../activities/backup';
import type { StepInput } from '../activities/context';
import type { HostReport } from '../model/report';
import { describeFailure, HostOperation, type HostOperationInput } from './host-operation';
import { describeFailedControls } from './memory';
import { DATA_STEP, HOST_INSPECT, HOST_STEP } from './options';
import { proxySteps } from './retry';

const { inspectHost } = proxySteps<Activities>(HOST_INSPECT);
const {
  writeBackupCanary,
  transferStackImages,
  ensureStackSecrets,
  prepareStack,
  applyStack,
  verifyStack,
  recallCanary,
  runUpgradeCheck,
  commitStack,
  rollbackStack,
  swapVolumes,
  proveRestore,
  removeRestoreStage,
} = proxySteps<Activities>(HOST_STEP);
const { snapshotHost, stageSnapshot } = proxySteps<Activities>(DATA_STEP);

export const UPGRADE_STEPS = [
  'inspectHost',
  'writeBackupCanary',
  'snapshotHost',
  'transferStackImages',
  'ensureStackSecrets',
  'prepareStack',
  'applyStack',
  'verifyStack',
  'recallCanary',
  'runUpgradeCheck',
  'commitStack',
  'stageSnapshot',
  'swapVolumes',
  'rollbackStack',
  'proveRestore',
  'removeRestoreStage',
];

export interface UpgradeInput extends HostOperationInput {
  /** The operator's check, run in the new gateway after it started (`--check`): an argument vector. */
  readonly check?: readonly string[];
}

const ROLLBACK = ['stageSnapshot', 'swapVolumes', 'rollbackStack', 'proveRestore', 'removeRestoreStage'];

export async function upgradeHost(input: UpgradeInput): Promise<HostReport> {
  const op = new HostOperation('upgrade', input, UPGRADE_STEPS);
  const stageId = workflowInfo().runId;
  const startedAt = new Date().toISOString();
  return op.run(async () => {
    const facts = await op.step('inspectHost', inspectHost);
    if (!input.spec.hosts.find((h) => h.name === input.host)?.hostKey) op.pinHostKey(facts.hostKey);
    if (input.mode === 'plan') {
      op.skip('writeBackupCanary', 'snapshotHost');
      await op.step('transferStackImages', transferStackImages);
      await op.step('ensureStackSecrets', ensureStackSecrets);
      await op.step('prepareStack', (i) => prepareStack({ ...i, validate: true } as StepInput));
      await op.step('applyStack', applyStack);
      op.skip(...UPGRADE_STEPS.slice(UPGRADE_STEPS.indexOf('verifyStack')));
      return;
    }
    const { canary } = await op.step('writeBackupCanary', writeBackupCanary);
    const { snapshot } = await op.step('snapshotHost', (i) => snapshotHost(canary ? { ...i, canary } : i));
    // Nothing live changes before applyStack: a new version that rejects the config stops the run here.
    await op.step('transferStackImages', transferStackImages);
    await op.step('ensureStackSecrets', ensureStackSecrets);
    await op.step('prepareStack', prepareStack);
    const withCanary = (i: StepInput) => ({ ...i, ...(canary ? { canary } : {}) });
    try {
      await op.step('applyStack', applyStack);
      const verified = await op.step('verifyStack', verifyStack);
      const recalled = await op.step('recallCanary', (i) => recallCanary(withCanary(i)));
      const checked = await op.step('runUpgradeCheck', (i) =>
        runUpgradeCheck({ ...i, ...(input.check ? { check: input.check } : {}) }),
      );
      const failed = describeFailedControls([...verified.controls, ...recalled.controls, ...checked.controls]);
      if (failed) throw ApplicationFailure.nonRetryable(`the new version is not proven: ${failed}`, 'UpgradeNotProven');
    } catch (err) {
      op.skip('verifyStack', 'recallCanary', 'runUpgradeCheck', 'commitStack');
      await CancellationScope.nonCancellable(() => rollBack(op, snapshot.id, stageId, startedAt, canary));
      throw ApplicationFailure.nonRetryable(
        `${describeFailure(err)}; rolled back to the previous release and to snapshot ${snapshot.shortId} of its data`,
        'UpgradeRolledBack',
      );
    }
    await op.step('commitStack', commitStack);
    op.skip(...ROLLBACK);
  });
}

/**
 * The snapshot's data first, then the previous release on it, proven by the canary. In this order because a newer
 * version may have migrated the state past what the previous one starts on: the previous release never sees the
 * migrated data. The snapshot is staged and checked while the new version still serves.
 */
async function rollBack(
  op: HostOperation,
  snapshot: string,
  stageId: string,
  startedAt: string,
  canary: BackupCanary | undefined,
): Promise<void> {
  try {
    const base = { stageId, startedAt, snapshot };
    const staged = await op.step('stageSnapshot', (i) => stageSnapshot({ ...i, ...base }));
    const restoreInput = (i: StepInput): RestoreStepInput => ({
      ...i,
      ...base,
      snapshot: staged.snapshot.shortId,
      snapshotTime: staged.snapshot.time,
      volumes: staged.volumes,
      ...(canary ? { canary } : {}),
    });
    await op.step('swapVolumes', (i) => swapVolumes({ ...restoreInput(i), leaveStopped: true }));
    await op.step('rollbackStack', rollbackStack);
    const proof = await op.step('proveRestore', (i) => proveRestore(restoreInput(i)));
    const failed = describeFailedControls(proof.controls);
    if (failed) throw ApplicationFailure.nonRetryable(`the old version does not read its data back: ${failed}`);
    await op.step('removeRestoreStage', (i) => removeRestoreStage(restoreInput(i)));
  } catch (err) {
    throw ApplicationFailure.nonRetryable(
      `the upgrade failed and so did its rollback: ${describeFailure(err)}; the data from before the upgrade is ` +
        `in snapshot ${snapshot.slice(0, 8)}, and any volume swapped out is kept as <path>.pre-restore-${stageId}`,
      'UpgradeRollbackFailed',
    );
  }
}
