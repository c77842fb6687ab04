/** The rotation's last phase: the pending version promoted, older ones pruned from the store and the host. */
import type { Change, Finding } from '../../model/report';
import { nextRotationDue } from '../../model/rotation';
import type { StepResult } from '../context';
import { staged } from '../secrets-store';
import { RotationStateInvalid } from './errors';
import { removeVersions } from './host';
import { requireVersion, type Rotation } from './rotation';
import type { RotateStepInput } from './types';
import { promote } from './versions';

/**
 * Promotes the pending version: it becomes current, the current one previous (kept for rollback); older versions
 * lose their value in the store and their file on the host. Safe to retry.
 */
export async function finishSecret(rotation: Rotation, input: RotateStepInput): Promise<StepResult> {
  const { session, spec, st, record } = rotation;
  const { host, secret } = input;
  const id = requireVersion(input);
  const pending = staged(record, 'pending');
  const changes: Change[] = [];
  let next = record;
  if (pending?.id === id) {
    const before = { current: staged(record, 'current')?.id, previous: staged(record, 'previous')?.id };
    next = await st.update(host, secret, (r) => promote(r, id));
    changes.push({
      resource: `secret:${secret}`,
      action: 'update',
      before,
      after: { current: id, previous: staged(next, 'previous')?.id },
    });
  } else if (staged(record, 'current')?.id !== id) {
    throw new RotationStateInvalid(host, `${secret} has no pending version ${id} to finish`);
  }
  const keep = [staged(next, 'current')!.id, ...(staged(next, 'previous') ? [staged(next, 'previous')!.id] : [])];
  const removed = await removeVersions(session, spec, secret, keep);
  for (const r of removed) changes.push({ resource: `secret-version:${secret}/${r}`, action: 'delete' });
  const due = nextRotationDue(spec, secret, next.rotatedAt);
  const findings: Finding[] = due
    ? [
        {
          id: 'secret.next-rotation',
          severity: 'info',
          message: `${secret}: next rotation due ${due.toISOString()} (every ${spec.secrets[secret]!.rotateEvery})`,
          resource: `secret:${secret}`,
        },
      ]
    : [];
  return { changes, findings };
}
