/** The catalogue: each step applies a slice of it, and drift observes all of it. */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CATALOGUE, resourcesOf, type SliceName } from '../../activities/catalogue';
import { driftChecks } from '../../activities/drift';
import { specSchema, type Spec } from '../../model/schema';
import { DOC_HOST, DOC_HOST_KEY } from '../support/specs';

function spec(firewall: boolean): Spec {
  return specSchema.parse({
    version: 1,
    hosts: [{ ...DOC_HOST, hostKey: DOC_HOST_KEY }],
    ssh: { authorizedKeys: [`${DOC_HOST_KEY} operator`] },
    firewall: { enabled: firewall },
    // Every optional slice in use, so each is checked.
    harden: { logShipping: { collector: 'logs.example.net' } },
  });
}

const slices = Object.keys(CATALOGUE) as SliceName[];

describe('the resource catalogue', () => {
  it('drift observes every resource of every slice, under the operation that owns it', async () => {
    const s = spec(true);
    const checks = await driftChecks(s, DOC_HOST.name);
    const observed = new Map(checks.map((c) => [c.resource.id, c.operation]));
    expect(checks.length).toBe(observed.size); // each resource once
    // Security updates are installed by harden, never drift: a newly published update is not drift.
    for (const name of slices.filter((n) => n !== 'harden.security-updates')) {
      const resources = resourcesOf(name, { spec: s, host: DOC_HOST.name, keys: [`${DOC_HOST_KEY} operator`] });
      expect(resources.length, name).toBeGreaterThan(0);
      for (const r of resources) {
        expect(observed.has(r.id), `${name}: ${r.id}`).toBe(true);
        // A resource two operations name (a volume directory) belongs to the first that applies it.
        const owner = slices.find((n) =>
          resourcesOf(n, { spec: s, host: DOC_HOST.name, keys: [] }).some((x) => x.id === r.id),
        )!;
        expect(observed.get(r.id), `${name}: ${r.id}`).toBe(CATALOGUE[owner].operation);
      }
    }
  });

  it('drift leaves alone only pending security updates, and a disabled firewall, which harden still applies', async () => {
    const s = spec(false);
    const ids = new Set((await driftChecks(s, DOC_HOST.name)).map((c) => c.resource.id));
    const firewall = resourcesOf('harden.firewall', { spec: s, host: DOC_HOST.name });
    expect(firewall.length).toBeGreaterThan(0);
    expect(firewall.filter((r) => ids.has(r.id))).toEqual([]);
    const updates = resourcesOf('harden.security-updates', { spec: s, host: DOC_HOST.name });
    expect(updates.map((r) => r.id)).toEqual(['updates:security']);
    expect(ids.has('updates:security')).toBe(false);
    for (const name of slices.filter((n) => n !== 'harden.firewall' && n !== 'harden.security-updates')) {
      for (const r of resourcesOf(name, { spec: s, host: DOC_HOST.name })) expect(ids.has(r.id), r.id).toBe(true);
    }
  });

  it('the step activities take their resources from the catalogue, never from a builder of their own', () => {
    // A builder called in a step file would make a resource drift never sees.
    const builder = /\b(\w+Resources?|stackDirectories|directoryResource|fileResource|packagesResource)\b/;
    const steps = ['provision', 'harden', 'deploy', 'memory'].map((f) => `activities/${f}/index.ts`);
    for (const file of [...steps, 'activities/drift.ts']) {
      const imports = readFileSync(file, 'utf8').match(/^import [^;]+;$/gms) ?? [];
      const names = imports
        .filter((i) => !/from '\.\.?\/catalogue'|from '\.\.?\/resources\/resource'/.test(i))
        .flatMap((i) => /\{([^}]*)\}/.exec(i)?.[1]?.split(',') ?? [])
        .map((n) => n.trim().replace(/^type /, ''))
        .filter((n) => builder.test(n) && n !== 'Resource');
      expect(names, file).toEqual([]);
    }
  });

  it("a secret file drifts by owner and mode, and an external one by its value against the source's", () => {
    const s = specSchema.parse({
      version: 1,
      hosts: [{ ...DOC_HOST, hostKey: DOC_HOST_KEY }],
      stack: { integrations: { telegram: {} } },
      secrets: { 'gateway-token': { generate: {} }, 'telegram-bot-token': { external: { env: 'BOT_TOKEN' } } },
    });
    const digest = 'a'.repeat(64);
    const [token, bot] = resourcesOf('deploy.secrets', {
      spec: s,
      host: DOC_HOST.name,
      secretDigests: { 'telegram-bot-token': digest },
    }).sort((a, b) => a.id.localeCompare(b.id));
    // A generated secret's value is the host's own: never hashed, never compared.
    expect(token!.probe).not.toContain('sha256sum');
    expect(token!.diff(token!.parse({ out: '1000:1000 0600\n', code: 0 }))).toEqual([]);
    expect(bot!.id).toBe('secret:telegram-bot-token');
    expect(bot!.probe).toContain('sha256sum');
    const observe = (out: string) => bot!.diff(bot!.parse({ out, code: 0 }));
    expect(observe(`1000:1000 0600\n${digest}\n`)).toEqual([]);
    expect(observe(`1000:1000 0600\n${'b'.repeat(64)}\n`)).toEqual([
      {
        resource: 'secret:telegram-bot-token',
        action: 'update',
        before: { owner: '1000:1000', mode: '0600', value: 'not the value of its source' },
        after: { owner: '1000:1000', mode: '0600', value: 'from env BOT_TOKEN' },
      },
    ]);
    expect(observe('0:0 0644\n' + digest)).toEqual([
      expect.objectContaining({ before: { owner: '0:0', mode: '0644' } }),
    ]);
    expect(observe('absent')).toEqual([expect.objectContaining({ action: 'create' })]);
    // Rotated by steward: the live file must be one of its versions on the host, whatever the source gives now.
    const v1 = 'c'.repeat(64);
    expect(observe(`1000:1000 0600\n${v1}\nrotated\n${'d'.repeat(64)}\n${v1}\n`)).toEqual([]);
    expect(observe(`1000:1000 0600\n${'e'.repeat(64)}\nrotated\n${v1}\n`)).toEqual([
      expect.objectContaining({ before: expect.objectContaining({ value: 'not the value of its source' }) }),
    ]);
  });
});
