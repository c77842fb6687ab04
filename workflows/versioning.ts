/**
 * Worker Deployment behaviour of long-lived workflows. A worker started with `--deployment` pins every run to the
 * build it started on (workers/worker.ts); the workflows marked here instead move to the promoted build at their next
 * workflow task, so their changes go behind `patched` (test/unit/replay.test.ts replays recorded histories of each).
 * An unversioned worker must not be told a behaviour (the server refuses the task): the mark applies only when the run's
 * task came from a versioned worker. Deterministic: no Node modules.
 */
import { setWorkflowOptions, workflowInfo } from '@temporalio/workflow';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function autoUpgrade<A extends any[], R>(workflow: (...args: A) => Promise<R>): void {
  setWorkflowOptions(
    () =>
      workflowInfo().currentDeploymentVersion?.deploymentName ? { versioningBehavior: 'AUTO_UPGRADE' as const } : {},
    workflow,
  );
}
