/** The way back: the current version live again, the gateway on it, the pending version dropped. */
import type { Change, ControlResult } from '../../model/report';
import { isGatewayToken } from '../../model/rotation';
import { describeOutcome } from '../deploy/verify';
import { VerificationFailed } from '../host/errors';
import { secretRedactor } from '../redact';
import { staged } from '../secrets-store';
import { bringConsumers, refreshEnvFile, reloadAuth, switchesInPlace } from './consumers';
import { RotationStateInvalid } from './errors';
import { observeSecret, removeVersions, switchLive } from './host';
import { probeVersions } from './probe';
import { control, requireVersion, type Rotation } from './rotation';
import type { RollbackSecretResult, RotateStepInput } from './types';
import { withVersion } from './versions';

/**
 * Undoes a pending version: when the live file is it, switches back to the current version (atomically), rebuilds
 * the env file, restarts the gateway unless it already reads the current value and waits until healthy (for the
 * gateway token, until the restored value authenticates); then removes the pending version's file and marks it
 * rolled back in the store. Also discards a pending version an
 * interrupted run left that never went live. Safe to retry.
 * @throws StackUnhealthy when the gateway does not turn healthy on the restored value.
 */
export async function rollbackSecret(rotation: Rotation, input: RotateStepInput): Promise<RollbackSecretResult> {
  const { session, spec, st, record } = rotation;
  const { host, secret } = input;
  const id = requireVersion(input);
  const pending = staged(record, 'pending');
  const current = staged(record, 'current');
  if (!current?.sha256) throw new RotationStateInvalid(host, `${secret} has no current version to restore`);
  const observed = await observeSecret(session, spec, secret);
  const changes: Change[] = [];
  let restored = false;
  if (observed.live !== current.sha256) {
    if (observed.versions.get(current.id) !== current.sha256) {
      throw new RotationStateInvalid(
        host,
        `cannot restore ${secret}: the file of current version ${current.id} is missing or altered`,
      );
    }
    const live = await switchLive(session, spec, secret, current.id, switchesInPlace(spec, secret));
    if (live !== current.sha256) throw new VerificationFailed(host, [`secret:${secret}`]);
    restored = true;
    changes.push({
      resource: `secret:${secret}`,
      action: 'update',
      before: { live: pending?.id === id ? id : 'an unknown value' },
      after: { live: current.id, rolledBack: true },
    });
  }
  changes.push(...(await refreshEnvFile(session, spec, secret)));
  // A gateway that never restarted onto the pending value still reads the current one: no restart then. One
  // that may have reloaded onto it (it went live) reloads back, authenticated with whichever token it holds.
  const auth = reloadAuth(spec, secret, observed.versions.has(id) ? [id, current.id] : [current.id]);
  const needed = restored || !!pending?.liveAt;
  changes.push(...(await bringConsumers(session, spec, secret, observed, current.sha256, auth, needed)));
  if (observed.versions.has(id) && id !== current.id && id !== staged(record, 'previous')?.id) {
    const keep = [...observed.versions.keys()].filter((v) => v !== id);
    await removeVersions(session, spec, secret, keep);
    changes.push({ resource: `secret-version:${secret}/${id}`, action: 'delete' });
  }
  const controls: ControlResult[] = [];
  if (isGatewayToken(spec, secret) && (restored || pending?.liveAt)) {
    const p = await probeVersions(session, spec, secret, { current: current.id });
    controls.push(
      control(
        `secret.${secret}.restored-accepted`,
        'accepted',
        describeOutcome(p.tokens.current),
        p.tokens.current?.outcome === 'accepted',
        `version ${current.id}`,
      ),
    );
  }
  if (pending?.id === id) {
    const outcome = pending.liveAt || restored ? 'rolled-back' : 'discarded';
    await st.update(host, secret, (r) =>
      withVersion(r, id, (v) => ({
        ...v,
        stages: [],
        outcome,
        ...(input.reason ? { reason: secretRedactor.redact(input.reason).slice(0, 2000) } : {}),
      })),
    );
  }
  return { changes, findings: [], controls, restored, current: current.id };
}
