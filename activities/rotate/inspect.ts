/** The rotation's first phase: the version store reconciled with what the host serves. */
import { randomBytes } from 'node:crypto';
import type { Change, Finding } from '../../model/report';
import { nextRotationDue, versionId as makeVersionId } from '../../model/rotation';
import { staged } from '../secrets-store';
import { applyOf } from './consumers';
import { SecretMissingOnHost } from './errors';
import { keepLiveAs, observeSecret } from './host';
import type { Rotation } from './rotation';
import type { InspectSecretResult, RotateStepInput, SecretState } from './types';
import { adopt, promoteLive } from './versions';

/**
 * Reconciles the version store with the host: a live value the store does not know (first rotation, or a deploy
 * wrote a new external value) is kept as a version and becomes current; the current version's file is kept
 * beside the live one; a pending version is reported with whether it is already live. In plan mode it only
 * reports. Safe to retry.
 * @throws SecretMissingOnHost when the host has no live file (deploy first).
 */
export async function inspectSecret(rotation: Rotation, input: RotateStepInput): Promise<InspectSecretResult> {
  const { session, spec, st, record } = rotation;
  const { host, secret } = input;
  const observed = await observeSecret(session, spec, secret);
  const generate = spec.secrets[secret]!.generate;
  if (generate && input.mode === 'apply') await st.keepFingerprints(host, secret, generate, observed.fingerprints);
  if (!observed.live) {
    throw new SecretMissingOnHost(host, `${secret} has no live file on the host; deploy the stack first`);
  }
  const changes: Change[] = [];
  const findings: Finding[] = [];
  let next = record;
  const pending = staged(record, 'pending');
  const known = record.versions.find((v) => v.stages.length > 0 && v.sha256 === observed.live);
  if (!known) {
    // The live value is not a version the store knows: keep it as the current version.
    const id = makeVersionId(new Date(), randomBytes(4).toString('hex'));
    const before = staged(record, 'current')?.id;
    changes.push({
      resource: `secret:${secret}`,
      action: 'update',
      ...(before ? { before: { current: before } } : {}),
      after: { current: id, adopted: 'the live value on the host' },
    });
    if (input.mode === 'apply') {
      next = await st.update(host, secret, (r) => adopt(r, id, observed.live!));
      await keepLiveAs(session, spec, secret, id);
    }
  } else if (known.stages.includes('current') && !observed.versions.has(known.id) && input.mode === 'apply') {
    await keepLiveAs(session, spec, secret, known.id);
  } else if (known.stages.includes('previous')) {
    findings.push({
      id: 'secret.live-is-previous',
      severity: 'medium',
      message: `${secret}: the host serves the previous version ${known.id}, not the current one; it is kept as current`,
      resource: `secret:${secret}`,
    });
    if (input.mode === 'apply') next = await st.update(host, secret, (r) => promoteLive(r, known.id));
  }
  const current = staged(next, 'current');
  const nextDue = nextRotationDue(spec, secret, next.rotatedAt);
  const state: SecretState = {
    ...(current ? { current: current.id } : {}),
    ...(staged(next, 'previous') ? { previous: staged(next, 'previous')!.id } : {}),
    ...(pending ? { pending: { id: pending.id, live: !!pending.sha256 && pending.sha256 === observed.live } } : {}),
    ...(next.rotatedAt ? { rotatedAt: next.rotatedAt } : {}),
    ...(nextDue ? { nextDue: nextDue.toISOString() } : {}),
    due: !input.due || (nextDue !== undefined && nextDue.getTime() <= Date.now()),
  };
  if (pending) {
    findings.push({
      id: 'secret.pending-found',
      severity: 'medium',
      message: `${secret}: pending version ${pending.id} left by an interrupted rotation is ${state.pending?.live ? 'live; this run tests and finishes it, or rolls it back' : 'not live; this run discards it'}`,
      resource: `secret:${secret}`,
    });
  }
  if (input.mode === 'plan') {
    const apply = applyOf(spec, secret);
    findings.push({
      id: 'secret.apply',
      severity: 'info',
      message: `${secret}: a rotation brings the gateway to the new value by ${
        apply === 'reload'
          ? 'a reload (openclaw secrets reload), without a restart'
          : apply === 'recreate'
            ? 'recreating its container (the value is a variable)'
            : 'restarting it (it reads the file only when it starts)'
      }`,
      resource: `secret:${secret}`,
    });
  }
  if (input.due && !state.due) {
    findings.push({
      id: 'secret.not-due',
      severity: 'info',
      message: nextDue
        ? `${secret}: next rotation due ${nextDue.toISOString()} (every ${spec.secrets[secret]!.rotateEvery})`
        : `${secret}: no rotateEvery in the spec; --due never rotates it`,
      resource: `secret:${secret}`,
    });
  }
  return { changes, findings, state };
}
