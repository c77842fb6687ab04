/**
 * Secret rotation on one host, in AWS Secrets Manager's four phases plus the way back:
 *
 *   inspectSecret   reconcile the version store with the host (adopt a live value it does not know; find a pending
 *                   version an interrupted run left)
 *   createSecret    a pending version beside the current one: generated on the host, or the operator's new value
 *   setSecret       switch the live file to it atomically, then restart/recreate the consumer and wait until healthy
 *   testSecret      the consumer is healthy and reads the new version; for the gateway token, a WebSocket `connect`
 *                   with the new value is accepted and one with the old value refused
 *   finishSecret    promote: pending → current, current → previous; prune older version files
 *   rollbackSecret  switch back to current, restart the consumer, drop the pending version
 *
 * Only version ids travel through the workflow (and its history); values stay on the host (generated) or in the
 * worker and its encrypted version store (external). Every step is idempotent: a retry after a worker crash observes
 * the host and the store and carries on from where they are.
 */
import { activityStep } from '../context';
import { createSecret } from './create';
import { finishSecret } from './finish';
import { inspectSecret } from './inspect';
import { testSecret } from './prove';
import { rollbackSecret } from './rollback';
import { openRotation, type Rotation } from './rotation';
import { setSecret } from './set';
import type { RotateDeps, RotateStepInput } from './types';

export type * from './types';

/** The rotation activities: each phase (a function of its own) runs on the host and store record it opens. */
export function createRotateActivities({ pool, store }: RotateDeps) {
  const phase =
    <R>(body: (rotation: Rotation, input: RotateStepInput) => Promise<R>) =>
    (input: RotateStepInput): Promise<R> =>
      activityStep(async () => body(await openRotation(pool, store, input), input));
  return {
    inspectSecret: phase(inspectSecret),
    createSecret: phase(createSecret),
    setSecret: phase(setSecret),
    testSecret: phase(testSecret),
    finishSecret: phase(finishSecret),
    rollbackSecret: phase(rollbackSecret),
  };
}
