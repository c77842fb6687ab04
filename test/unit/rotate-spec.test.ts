/** What the spec says about rotation: rotatable secrets, consumers, intervals, ids; and the CLI's selection. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { selectRotations } from '../../client/commands/rotate';
import { UsageError } from '../../client/errors';
import {
  nextRotationDue,
  rotatableSecrets,
  rotationSchedules,
  secretConsumers,
  VERSION_ID,
  versionId,
} from '../../model/rotation';
import { rotationWorkflowId } from '../../model/ids';
import { specSchema, type SpecInput } from '../../model/schema';
import { durationMs } from '../../model/units';
import { validate, ValidationError } from '../../model/validate';
import { steward } from '../support/cli';

const base = { version: 1, hosts: [{ name: 'vps1', address: '203.0.113.7' }] } as const;
const specOf = (extra: Partial<SpecInput> = {}) => validate(specSchema, { ...base, ...extra }, 'steward.yaml');

const full = specOf({
  stack: {
    providers: { openrouter: {} },
    integrations: { googleOAuth: { clientId: 'client-1.apps.googleusercontent.com' } },
  },
  secrets: {
    'gateway-token': { generate: { length: 48 }, rotateEvery: '30d' },
    'openrouter-api-key': { external: { env: 'OPENROUTER_KEY' }, rotateEvery: '12h' },
    'google-oauth-client-secret': { external: { file: '/etc/steward/google' } },
    unused: { generate: {} },
  },
});

describe('rotation in the spec', () => {
  it('rotates the secrets the stack consumes, each with its consumer and how it takes a new value', () => {
    expect(rotatableSecrets(full)).toEqual(['gateway-token', 'google-oauth-client-secret', 'openrouter-api-key']);
    // SecretRef files reload in the running gateway; the Telegram token (read by the channel) needs a restart.
    expect(secretConsumers(full, 'gateway-token')).toEqual([
      { service: 'gateway', delivery: 'file', path: '/run/secrets/gateway-token', apply: 'reload' },
    ]);
    expect(secretConsumers(full, 'openrouter-api-key')[0]?.apply).toBe('reload');
    const telegram = specOf({
      stack: { integrations: { telegram: {} } },
      secrets: { 'gateway-token': { generate: {} }, 'telegram-bot-token': { external: { env: 'TG' } } },
    });
    expect(secretConsumers(telegram, 'telegram-bot-token')).toEqual([
      { service: 'gateway', delivery: 'file', path: '/run/secrets/telegram-bot-token', apply: 'restart' },
    ]);
    expect(secretConsumers(full, 'google-oauth-client-secret')).toEqual([
      { service: 'gateway', delivery: 'env', variable: 'OPENCLAW_GOOGLE_MEET_CLIENT_SECRET', apply: 'recreate' },
    ]);
    expect(secretConsumers(full, 'unused')).toEqual([]);
  });

  it('takes consumers from the spec when given, and refuses unknown services', () => {
    const spec = specOf({
      secrets: { 'gateway-token': { generate: {}, consumers: [{ service: 'gateway', apply: 'recreate' }] } },
    });
    expect(secretConsumers(spec, 'gateway-token')[0]?.apply).toBe('recreate');
    // A reload reaches only what the gateway reads through a SecretRef: an env variable is refused, naming the field.
    expect(() =>
      specOf({
        stack: { integrations: { googleOAuth: { clientId: 'client-1.apps.googleusercontent.com' } } },
        secrets: {
          'gateway-token': { generate: {} },
          'google-oauth-client-secret': {
            external: { file: '/etc/steward/google' },
            consumers: [{ service: 'gateway', apply: 'reload' }],
          },
        },
      }),
    ).toThrow(
      /secrets\.google-oauth-client-secret\.consumers\[0\]\.apply: reload needs a secret the gateway reads only through a SecretRef file/,
    );
    expect(() =>
      specOf({
        secrets: { 'gateway-token': { generate: {}, consumers: [{ service: 'db', apply: 'restart' } as never] } },
      }),
    ).toThrow(ValidationError);
  });

  it('reads rotation intervals for the schedules and says when a secret is due', () => {
    expect(durationMs('45s')).toBe(45_000);
    expect(durationMs('30min')).toBe(1_800_000);
    expect(durationMs('2w')).toBe(14 * 86_400_000);
    expect(rotationSchedules(full)).toEqual([
      { secret: 'gateway-token', every: '30d', everyMs: 30 * 86_400_000 },
      { secret: 'openrouter-api-key', every: '12h', everyMs: 12 * 3_600_000 },
    ]);
    expect(nextRotationDue(full, 'gateway-token', undefined)).toEqual(new Date(0));
    expect(nextRotationDue(full, 'gateway-token', '2026-11-01T00:00:00.000Z')?.toISOString()).toBe(
      '2026-12-01T00:00:00.000Z',
    );
    expect(nextRotationDue(full, 'google-oauth-client-secret', undefined)).toBeUndefined();
  });

  it('names versions and workflows safely', () => {
    const id = versionId(new Date('2026-11-27T10:15:30.123Z'), 'a1b2c3d4e5f6');
    expect(id).toBe('v20261127T101530Z-a1b2c3d4');
    expect(id).toMatch(VERSION_ID);
    expect(rotationWorkflowId('vps1', 'gateway-token')).toBe('rotate/vps1/gateway-token');
  });

  it('the CLI selects host × secret pairs and refuses unknown hosts and secrets nothing consumes', () => {
    expect(selectRotations(full, [], [])).toHaveLength(3);
    expect(selectRotations(full, ['gateway-token'], ['vps1'])).toEqual([{ host: 'vps1', secret: 'gateway-token' }]);
    expect(() => selectRotations(full, ['unused'], [])).toThrow(/unused is not consumed by the stack/);
    expect(() => selectRotations(full, ['nope'], [])).toThrow(/nope is not declared under secrets/);
    expect(() => selectRotations(full, [], ['web9'])).toThrow(UsageError);
  });

  it('`steward rotate` with an undeclared secret exits 64 before contacting anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'steward-rotate-'));
    const spec = join(dir, 'steward.yaml');
    writeFileSync(spec, stringify({ ...base }));
    const r = await steward(['--spec', spec, '--address', '127.0.0.1:9', 'rotate', 'nope', '--host', 'vps1']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('nope is not declared under secrets');
  });
});
