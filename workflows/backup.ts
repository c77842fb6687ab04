/**
 * backup, restore and restore drills of one host. A backup leaves a canary memory, snapshots the volumes into the
 * restic repository (proven by reading it back) and applies retention. A restore stages the snapshot and checks it
 * before anything live is touched, swaps the volumes in with the gateway stopped, and proves the canary is back; a
 * failure after the swap puts the old volumes back. A drill stages and proves beside production, and changes
 * nothing live. RPO and RTO are controls of the restore's report, so every run keeps them in its history.
 */
import { ApplicationFailure, CancellationScope, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { RestoreStepInput } from '../activities/backup';
import type { StepInput } from '../activities/context';
import type { HostReport } from '../model/report';
import { describeFailure, HostOperation, type HostOperationInput } from './host-operation';
import { describeFailedControls } from './memory';
import { DATA_STEP, HOST_INSPECT, HOST_STEP } from './options';
import { proxySteps } from './retry';

const { inspectHost } = proxySteps<Activities>(HOST_INSPECT);
const { writeBackupCanary, pruneSnapshots, swapVolumes, revertRestore, proveRestore, removeRestoreStage } =
  proxySteps<Activities>(HOST_STEP);
const { snapshotHost, stageSnapshot } = proxySteps<Activities>(DATA_STEP);

export const BACKUP_STEPS = ['inspectHost', 'writeBackupCanary', 'snapshotHost', 'pruneSnapshots'];
export const RESTORE_STEPS = [
  'inspectHost',
  'stageSnapshot',
  'swapVolumes',
  'proveRestore',
  'revertRestore',
  'removeRestoreStage',
];

export async function backupHost(input: HostOperationInput): Promise<HostReport> {
  const op = new HostOperation('backup', input, BACKUP_STEPS);
  return op.run(async () => {
    const facts = await op.step('inspectHost', inspectHost);
    if (!input.spec.hosts.find((h) => h.name === input.host)?.hostKey) op.pinHostKey(facts.hostKey);
    const { canary } = await op.step('writeBackupCanary', writeBackupCanary);
    await op.step('snapshotHost', (i) => snapshotHost(canary ? { ...i, canary } : i));
    await op.step('pruneSnapshots', pruneSnapshots);
  });
}

export interface RestoreInput extends HostOperationInput {
  /** Full or short snapshot id; default the host's newest. */
  readonly snapshot?: string;
  /** Stage and prove beside production, and change nothing live. */
  readonly drill?: boolean;
}

export async function restoreHost(input: RestoreInput): Promise<HostReport> {
  const drill = input.drill === true;
  const op = new HostOperation(drill ? 'drill' : 'restore', input, RESTORE_STEPS);
  const startedAt = new Date().toISOString();
  const stageId = workflowInfo().runId;
  return op.run(async () => {
    const facts = await op.step('inspectHost', inspectHost);
    if (!input.spec.hosts.find((h) => h.name === input.host)?.hostKey) op.pinHostKey(facts.hostKey);
    const base = { stageId, startedAt, drill, ...(input.snapshot ? { snapshot: input.snapshot } : {}) };
    const staged = await op.step('stageSnapshot', (i) => stageSnapshot({ ...i, ...base }));
    const proofInput = (i: StepInput): RestoreStepInput => ({
      ...i,
      ...base,
      snapshot: staged.snapshot.shortId,
      snapshotTime: staged.snapshot.time,
      volumes: staged.volumes,
      ...(staged.canary ? { canary: staged.canary } : {}),
    });
    const failIfAny = (controls: Parameters<typeof describeFailedControls>[0]) => {
      const failed = describeFailedControls(controls);
      if (failed) throw ApplicationFailure.nonRetryable(`restore not proven: ${failed}`, 'RestoreNotProven');
    };
    // Cleanup and the revert run even when the run is cancelled: a cancelled restore must not leave its volumes.
    const always = <T>(fn: () => Promise<T>) => CancellationScope.nonCancellable(fn);
    if (drill) {
      op.skip('swapVolumes', 'revertRestore');
      try {
        const proof = await op.step('proveRestore', (i) => proveRestore(proofInput(i)));
        failIfAny(proof.controls);
      } finally {
        await always(() => op.step('removeRestoreStage', (i) => removeRestoreStage(proofInput(i))));
      }
      return;
    }
    try {
      await op.step('swapVolumes', (i) => swapVolumes(proofInput(i)));
      const proof = await op.step('proveRestore', (i) => proveRestore(proofInput(i)));
      failIfAny(proof.controls);
    } catch (err) {
      op.skip('proveRestore', 'removeRestoreStage');
      try {
        await always(() => op.step('revertRestore', (i) => revertRestore(proofInput(i))));
      } catch (revertErr) {
        throw ApplicationFailure.nonRetryable(
          `${describeFailure(err)}; the volumes could NOT be put back (${describeFailure(revertErr)}): the ones from ` +
            `before the restore are kept as <path>.pre-restore-${stageId}`,
          'RestoreRevertFailed',
        );
      }
      throw ApplicationFailure.nonRetryable(
        `${describeFailure(err)}; the volumes were put back as they were`,
        'RestoreReverted',
      );
    }
    op.skip('revertRestore');
    await op.step('removeRestoreStage', (i) => removeRestoreStage(proofInput(i)));
  });
}
