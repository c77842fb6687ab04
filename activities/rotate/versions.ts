/** How a secret's record changes as versions move through the stages: pure, applied inside SecretStore.update. */
import type { SecretRecord, SecretVersion } from '../secrets-store';
import { staged } from '../secrets-store';
import { now } from './rotation';

export function withVersion(r: SecretRecord, id: string, f: (v: SecretVersion) => SecretVersion): SecretRecord {
  return { ...r, versions: r.versions.map((v) => (v.id === id ? f(v) : v)) };
}

const without = (v: SecretVersion, stage: SecretVersion['stages'][number]) => v.stages.filter((s) => s !== stage);

/** The live value becomes the current version `id`; the current one previous; the previous one deprecated. */
export function adopt(r: SecretRecord, id: string, sha: string): SecretRecord {
  const hadCurrent = !!staged(r, 'current');
  const versions = r.versions.map((v): SecretVersion => {
    if (v.stages.includes('previous') && hadCurrent)
      return { ...v, stages: without(v, 'previous'), outcome: 'deprecated' };
    if (v.stages.includes('current')) return { ...v, stages: [...without(v, 'current'), 'previous'] };
    return v;
  });
  return {
    ...r,
    versions: [
      ...versions,
      { id, createdAt: now(), origin: 'adopted', sha256: sha, stages: ['current'], liveAt: now() },
    ],
  };
}

/** The previous version `id` is live again: it becomes current and the current one previous. */
export function promoteLive(r: SecretRecord, id: string): SecretRecord {
  return {
    ...r,
    versions: r.versions.map((v): SecretVersion => {
      if (v.id === id) return { ...v, stages: [...without(v, 'previous'), 'current'] };
      if (v.stages.includes('current')) return { ...v, stages: [...without(v, 'current'), 'previous'] };
      return v;
    }),
  };
}

/** Pending `id` becomes current; current becomes previous; previous is deprecated. */
export function promote(r: SecretRecord, id: string): SecretRecord {
  return {
    ...r,
    rotatedAt: now(),
    versions: r.versions.map((v): SecretVersion => {
      if (v.id === id) return { ...v, stages: [...without(v, 'pending'), 'current'] };
      if (v.stages.includes('current')) return { ...v, stages: [...without(v, 'current'), 'previous'] };
      if (v.stages.includes('previous')) return { ...v, stages: without(v, 'previous'), outcome: 'deprecated' };
      return v;
    }),
  };
}
