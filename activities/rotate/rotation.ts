/** What every rotation step starts from: the host session, the spec, and the version store's record of the secret. */
import { createHash } from 'node:crypto';
import type { ControlResult } from '../../model/report';
import { secretConsumers } from '../../model/rotation';
import type { Spec } from '../../model/schema';
import { targetOf } from '../context';
import type { HostSession, SessionPool } from '../host/session';
import { secretRedactor } from '../redact';
import type { SecretRecord, SecretStore } from '../secrets-store';
import { SecretNotRotatable } from './errors';
import type { RotateStepInput } from './types';

export interface Rotation {
  readonly session: HostSession;
  readonly spec: Spec;
  readonly st: SecretStore;
  /** The store's record of the input's host and secret, as the step found it. */
  readonly record: SecretRecord;
}

export const now = () => new Date().toISOString();
export const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

/**
 * Opens the rotation of the input's host and secret; the shape of a generated secret goes into its record (for every
 * later worker's redactor, SecretStore.preload) and its known fingerprints to this worker's redactor.
 * @throws SecretNotRotatable when the spec does not declare the secret or nothing on the host reads it.
 */
export async function openRotation(
  pool: SessionPool,
  store: () => Promise<SecretStore>,
  input: RotateStepInput,
): Promise<Rotation> {
  const { spec, host, secret } = input;
  if (!spec.secrets[secret] || secretConsumers(spec, secret).length === 0) {
    throw new SecretNotRotatable(
      host,
      `secret ${secret} is ${spec.secrets[secret] ? 'not consumed by the stack' : 'not declared under secrets'}; nothing on the host reads it`,
    );
  }
  const [session, st] = await Promise.all([pool.get(targetOf(input)), store()]);
  let record = await st.read(host, secret);
  const generate = spec.secrets[secret]!.generate;
  const shape = generate && { length: generate.length, alphabet: generate.alphabet };
  if (shape && input.mode === 'apply' && JSON.stringify(record.shape) !== JSON.stringify(shape)) {
    record = await st.update(host, secret, (r) => ({ ...r, shape }));
  }
  remember(
    spec,
    secret,
    record.versions.flatMap((v) => (v.sha256 ? [v.sha256] : [])),
  );
  return { session, spec, st, record };
}

export function requireVersion(input: RotateStepInput): string {
  if (!input.versionId) throw new Error(`${input.secret}: the step needs a version id`);
  return input.versionId;
}

export function control(id: string, expected: string, observed: string, pass: boolean, note?: string): ControlResult {
  return { control: id, expected, observed, status: pass ? 'pass' : 'fail', ...(note ? { note } : {}) };
}

/** Tells the worker's redactor how to recognise generated values of `secret` by their hashes. */
export function remember(spec: Spec, secret: string, hashes: readonly string[]): void {
  const generate = spec.secrets[secret]?.generate;
  if (!generate) return;
  for (const h of hashes) secretRedactor.rememberFingerprint(secret, h, generate);
}
