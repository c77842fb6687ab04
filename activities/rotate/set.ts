/** The rotation's third phase: the pending version goes live and the gateway takes it. */
import type { Change } from '../../model/report';
import type { StepResult } from '../context';
import { VerificationFailed } from '../host/errors';
import { staged } from '../secrets-store';
import { bringConsumers, refreshEnvFile, reloadAuth, switchesInPlace } from './consumers';
import { RotationStateInvalid } from './errors';
import { keepLiveAs, observeSecret, switchLive } from './host';
import { now, requireVersion, type Rotation } from './rotation';
import type { RotateStepInput } from './types';
import { withVersion } from './versions';

/**
 * Switches the live file to the pending version atomically (the current one stays beside it), rebuilds the env
 * file when the secret is a variable, then restarts or recreates the gateway unless it already reads the new
 * value, and waits until the stack is healthy. Safe to retry: a retry after a crash finds the switch made and
 * restarts only when the gateway still reads the old value.
 * @throws StackUnhealthy when the gateway does not turn healthy (the workflow rolls back).
 */
export async function setSecret(rotation: Rotation, input: RotateStepInput): Promise<StepResult> {
  const { session, spec, st, record } = rotation;
  const { host, secret } = input;
  const id = requireVersion(input);
  const pending = staged(record, 'pending');
  const current = staged(record, 'current');
  if (pending?.id !== id || !pending.sha256 || !current?.sha256) {
    throw new RotationStateInvalid(host, `${secret} has no pending version ${id} to set`);
  }
  const observed = await observeSecret(session, spec, secret);
  if (observed.versions.get(id) !== pending.sha256) {
    throw new RotationStateInvalid(host, `version file ${id} of ${secret} is missing or altered on the host`);
  }
  const changes: Change[] = [];
  if (observed.live !== pending.sha256) {
    if (observed.live === current.sha256 && !observed.versions.has(current.id)) {
      await keepLiveAs(session, spec, secret, current.id);
    }
    const live = await switchLive(session, spec, secret, id, switchesInPlace(spec, secret));
    if (live !== pending.sha256) throw new VerificationFailed(host, [`secret:${secret}`]);
    await st.update(host, secret, (r) => withVersion(r, id, (v) => ({ ...v, liveAt: now() })));
    changes.push({
      resource: `secret:${secret}`,
      action: 'update',
      before: { live: current.id },
      after: { live: id, stage: 'pending' },
    });
  }
  changes.push(...(await refreshEnvFile(session, spec, secret)));
  // The gateway takes the new value on a reload authenticated with the token it holds: the current one, or the
  // pending one when this is a retry after the reload.
  const auth = reloadAuth(spec, secret, [current.id, id]);
  changes.push(...(await bringConsumers(session, spec, secret, observed, pending.sha256, auth)));
  return { changes, findings: [] };
}
