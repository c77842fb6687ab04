/** The local version store: encrypted at rest, bound to its host and secret, following a codec key rotation. */
import { createHash, randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fingerprintScript, parseFingerprint } from '../../activities/deploy/secrets';
import { run } from '../../activities/host/shell';
import { encodings, secretRedactor } from '../../activities/redact';
import { SecretStore, SecretStoreUnreadable, staged, type SecretRecord } from '../../activities/secrets-store';
import { generateKey, KeyRing } from '../../codec/keys';
import { versionId } from '../../model/rotation';

const v = (n: number) => versionId(new Date(Date.UTC(2026, 10, 27, 10, 0, n)), randomBytes(4).toString('hex'));

function record(value: string): (r: SecretRecord) => SecretRecord {
  return (r) => ({
    ...r,
    versions: [
      ...r.versions,
      {
        id: v(1),
        createdAt: new Date().toISOString(),
        origin: 'external',
        value,
        sha256: 'a'.repeat(64),
        stages: ['current'],
      },
    ],
  });
}

describe('SecretStore', () => {
  it('teaches a fresh worker process every value it holds: external values, and generated ones by fingerprint', async () => {
    // The redactor in this process has never seen either value; only the store's records reach it.
    const dir = join(mkdtempSync(join(tmpdir(), 'steward-store-')), 'secrets');
    const ring = KeyRing.of([generateKey()]);
    const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    const token = [...randomBytes(48)].map((b) => chars[b % 62]).join('');
    const key = `sk-or-v1-${randomBytes(24).toString('hex')}`;
    const writer = new SecretStore(dir, ring);
    await writer.update('vps1', 'gateway-token', (r) => ({
      ...r,
      shape: { length: 48, alphabet: 'base62' },
      versions: [
        {
          id: v(1),
          createdAt: new Date().toISOString(),
          origin: 'generated',
          sha256: createHash('sha256').update(token).digest('hex'),
          stages: ['current'],
        },
      ],
    }));
    await writer.update('vps1', 'openrouter-api-key', record(key));
    const text = `stderr: Authorization: Bearer ${token}; key=${key}`;
    expect(secretRedactor.redact(text)).toBe(text);
    expect(await new SecretStore(dir, ring).preload()).toBe(2);
    const scrubbed = secretRedactor.redact(text);
    expect(scrubbed).not.toContain(token);
    expect(scrubbed).not.toContain(key);
    // A store it cannot decrypt teaches nothing and breaks nothing.
    expect(await new SecretStore(dir, KeyRing.of([generateKey()])).preload()).toBe(0);
  });

  it("keeps a deployed generated value's fingerprint as the host prints it, so a fresh worker finds it cut short", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'steward-store-')), 'secrets');
    const ring = KeyRing.of([generateKey()]);
    const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
    const token = [...randomBytes(40)].map((b) => chars[b % 62]).join('');
    // The host side: the same shell steward runs over SSH, on a file holding the value (no trailing newline).
    const file = join(dirname(dir), 'gateway-token');
    writeFileSync(file, token, { mode: 0o600 });
    const printed = execFileSync('sh', ['-c', fingerprintScript(run(file))], { encoding: 'utf8' });
    const seen = parseFingerprint(printed)!;
    const sha = (s: string) => createHash('sha256').update(s).digest('hex');
    expect(seen).toEqual({ sha256: sha(token), head: sha(token.slice(0, 12)), tail: sha(token.slice(-12)) });
    expect(parseFingerprint(`${printed.trim()} extra`)).toBeUndefined();

    const writer = new SecretStore(dir, ring);
    await writer.keepFingerprints('vps1', 'gateway-token', { length: 40, alphabet: 'base62' }, [seen]);
    const written = readFileSync(writer.path('vps1', 'gateway-token'), 'utf8');
    // Known already: nothing is written again.
    await writer.keepFingerprints('vps1', 'gateway-token', { length: 40, alphabet: 'base62' }, [seen]);
    expect(readFileSync(writer.path('vps1', 'gateway-token'), 'utf8')).toBe(written);
    expect(written).not.toContain(seen.head);

    const text = `ws connect: Authorization: Bearer ${token.slice(0, 25)}\n${token.slice(-15)}" refused`;
    expect(secretRedactor.redact(text)).toBe(text);
    expect(await new SecretStore(dir, ring).preload()).toBe(1);
    expect(secretRedactor.redact(text)).toBe(
      'ws connect: Authorization: Bearer [redacted:gateway-token]\n[redacted:gateway-token]" refused',
    );
  });

  it('keeps records encrypted at rest, 0600 in 0700 directories, and reads them back', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'steward-store-')), 'secrets');
    const store = new SecretStore(dir, KeyRing.of([generateKey()]));
    const value = `sk-${randomBytes(20).toString('hex')}`;
    expect(await store.read('vps1', 'openrouter-api-key')).toEqual({
      host: 'vps1',
      secret: 'openrouter-api-key',
      versions: [],
    });
    await store.update('vps1', 'openrouter-api-key', record(value));
    const file = store.path('vps1', 'openrouter-api-key');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(file)).mode & 0o777).toBe(0o700);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    const raw = readFileSync(file, 'utf8');
    for (const form of encodings(value)) expect(raw).not.toContain(form);
    expect(raw).not.toContain('openrouter-api-key');
    const back = await store.read('vps1', 'openrouter-api-key');
    expect(staged(back, 'current')?.value).toBe(value);
  });

  it('refuses a file moved to another pair, altered, or written with a key it does not have', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'steward-store-'));
    const key = generateKey();
    const store = new SecretStore(dir, KeyRing.of([key]));
    await store.update('vps1', 'gateway-token', record('value-for-vps1-token'));
    mkdirSync(join(dir, 'vps2'), { recursive: true });
    copyFileSync(store.path('vps1', 'gateway-token'), store.path('vps2', 'gateway-token'));
    await expect(store.read('vps2', 'gateway-token')).rejects.toThrow(/belongs to another host or secret/);
    await expect(new SecretStore(dir, KeyRing.of([generateKey()])).read('vps1', 'gateway-token')).rejects.toThrow(
      SecretStoreUnreadable,
    );
  });

  it('follows a codec key rotation: old records still read, the next write uses the new key', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'steward-store-'));
    const old = generateKey();
    await new SecretStore(dir, KeyRing.of([old])).update('vps1', 'gateway-token', record('value-under-old-key'));
    const next = generateKey();
    const rotated = new SecretStore(dir, KeyRing.of([next, old]));
    expect(staged(await rotated.read('vps1', 'gateway-token'), 'current')?.value).toBe('value-under-old-key');
    await rotated.update('vps1', 'gateway-token', (r) => r);
    const file = rotated.path('vps1', 'gateway-token');
    expect(JSON.parse(readFileSync(file, 'utf8')).keyId).toBe(next.id);
    expect(
      staged(await new SecretStore(dir, KeyRing.of([next])).read('vps1', 'gateway-token'), 'current'),
    ).toBeTruthy();
  });

  it('drops the values of versions without a stage and keeps a bounded history', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'steward-store-'));
    const store = new SecretStore(dir, KeyRing.of([generateKey()]));
    await store.update('vps1', 'k', (r) => ({
      ...r,
      versions: Array.from({ length: 30 }, (_, i) => ({
        id: v(i),
        createdAt: new Date().toISOString(),
        origin: 'external' as const,
        value: `value-number-${i}`,
        stages: i === 29 ? (['current'] as const).slice() : [],
      })),
    }));
    const r = await store.read('vps1', 'k');
    expect(r.versions).toHaveLength(21);
    expect(r.versions.filter((x) => x.value).map((x) => x.value)).toEqual(['value-number-29']);
  });

  it('serialises concurrent updates of one pair', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'steward-store-'));
    const store = new SecretStore(dir, KeyRing.of([generateKey()]));
    await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        store.update('vps1', 'k', (r) => ({
          ...r,
          versions: [
            ...r.versions,
            { id: v(i), createdAt: new Date().toISOString(), origin: 'generated' as const, stages: [] },
          ],
        })),
      ),
    );
    expect((await store.read('vps1', 'k')).versions).toHaveLength(8);
  });
});
