/** The rotation's second phase: a pending version beside the current one; the live file does not change. */
import type { SecretVersion } from '../secrets-store';
import { staged } from '../secrets-store';
import { resolveExternal, sourceLabel } from '../deploy/secrets';
import { VerificationFailed } from '../host/errors';
import { RotationStateInvalid, SecretUnchanged } from './errors';
import { generateVersion, observeSecret, writeVersion } from './host';
import { now, requireVersion, sha256, type Rotation } from './rotation';
import type { CreateSecretResult, RotateStepInput } from './types';
import { withVersion } from './versions';

/**
 * Creates version `versionId` as pending, beside the current one: generated on the host, or the external
 * source's value written over SSH stdin. The live file does not change. Safe to retry with the same id.
 * @throws SecretUnchanged when an external source still gives the current value.
 */
export async function createSecret(rotation: Rotation, input: RotateStepInput): Promise<CreateSecretResult> {
  const { session, spec, st, record } = rotation;
  const { host, secret } = input;
  const id = requireVersion(input);
  const current = staged(record, 'current');
  if (!current?.sha256) throw new RotationStateInvalid(host, `${secret} has no current version; inspect it first`);
  let pending = staged(record, 'pending');
  if (pending && pending.id !== id) {
    throw new RotationStateInvalid(host, `${secret} already has pending version ${pending.id}; resolve it first`);
  }
  const definition = spec.secrets[secret]!;
  if (!pending) {
    let value: string | undefined;
    if (definition.external) {
      value = await resolveExternal(host, secret, definition);
      if (sha256(value) === current.sha256) {
        throw new SecretUnchanged(
          host,
          `secrets.${secret}: ${sourceLabel(definition)} still gives the current value; put the new value there, then rotate`,
        );
      }
    }
    const version: SecretVersion = {
      id,
      createdAt: now(),
      origin: definition.external ? 'external' : 'generated',
      stages: ['pending'],
      ...(value !== undefined ? { value, sha256: sha256(value) } : {}),
    };
    const updated = await st.update(host, secret, (r) => ({ ...r, versions: [...r.versions, version] }));
    pending = staged(updated, 'pending')!;
  }
  let sha: string;
  if (definition.generate) {
    const made = await generateVersion(session, spec, secret, id);
    await st.keepFingerprints(host, secret, definition.generate, [made]);
    sha = made.sha256;
  } else {
    const value = pending.value;
    if (value === undefined) throw new RotationStateInvalid(host, `pending version ${id} of ${secret} lost its value`);
    await writeVersion(session, spec, secret, id, value);
    sha = sha256(value);
    const observed = await observeSecret(session, spec, secret);
    if (observed.versions.get(id) !== sha) throw new VerificationFailed(host, [`secret-version:${secret}/${id}`]);
  }
  if (sha === current.sha256) {
    throw new RotationStateInvalid(host, `new version ${id} of ${secret} equals the current one`);
  }
  if (pending.sha256 !== sha) {
    await st.update(host, secret, (r) => withVersion(r, id, (v) => ({ ...v, sha256: sha })));
  }
  return {
    changes: [
      {
        resource: `secret:${secret}`,
        action: 'create',
        after: { version: id, stage: 'pending', origin: definition.external ? 'external' : 'generated' },
      },
    ],
    findings: [],
    versionId: id,
    replaces: current.id,
  };
}
