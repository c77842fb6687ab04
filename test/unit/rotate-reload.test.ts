/** Rotation by `openclaw secrets reload`: the host script steward sends and how it reads what the host printed. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { engineTime } from '../../activities/deploy/stack';
import { parseReload, reloadScript } from '../../activities/rotate/consumers';
import { specSchema } from '../../model/schema';
import { validate } from '../../model/validate';

const spec = validate(specSchema, { version: 1, hosts: [{ name: 'vps1', address: '203.0.113.7' }] }, 'steward.yaml');
const nonce = randomBytes(12).toString('hex');
const files = ['/opt/openclaw/.steward/secrets/gateway-token/v1', "/opt/o'dd dir/$(touch x)/v2"];

describe('reload script', () => {
  it('is valid sh, quotes every path, and passes the token on stdin, never as an argument', () => {
    const script = reloadScript(spec, files, nonce);
    execFileSync('sh', ['-n'], { input: script });
    // The loop gets both paths as two words, the odd one literal: the shell expands nothing in it.
    const words = execFileSync('sh', [
      '-c',
      `${script.split('\n').find((l) => l.startsWith('for f in '))} echo "$f"; done`,
    ]);
    expect(words.toString().trim().split('\n')).toEqual(files);
    expect(script).toMatch(/docker exec -i -u 1000\\:1000 "\$id" sh -c '.*' < "\$f"/);
    expect(script).not.toMatch(/--token/);
    expect(script).toContain('OPENCLAW_GATEWAY_TOKEN="$t"');
    expect(() => reloadScript(spec, files, 'not-hex')).toThrow(/nonce/);
  });
});

describe('reading what the host printed', () => {
  const since = '2026-12-05T12:24:13.123456789Z';

  it('a reload the gateway confirmed, with the engine time it started at', () => {
    const out = [`${nonce} since ${since}`, `${nonce} rc 0`, '{', '  "ok": true,', '  "warningCount": 0', '}'];
    expect(parseReload(out.join('\n'), nonce)).toEqual({ outcome: 'reloaded', since });
  });

  it('the first token refused and the second accepted is a reload', () => {
    const out = [
      `${nonce} since ${since}`,
      `${nonce} rc 1`,
      'gateway connect failed: GatewayClientRequestError: unauthorized: gateway token mismatch',
      `${nonce} rc 0`,
      '{"ok": true, "warningCount": 0}',
    ];
    expect(parseReload(out.join('\n'), nonce)).toEqual({ outcome: 'reloaded', since });
  });

  it('every token refused, a failed reload, and no gateway are told apart', () => {
    const refused = [`${nonce} since ${since}`, `${nonce} rc 1`, 'unauthorized: gateway token mismatch'];
    expect(parseReload(refused.join('\n'), nonce)).toEqual({ outcome: 'unauthorized' });
    const failed = [`${nonce} since ${since}`, `${nonce} rc 1`, '{"ok": false, "error": {"code": "UNAVAILABLE"}}'];
    expect(parseReload(failed.join('\n'), nonce)).toEqual({
      outcome: 'failed',
      reason: 'exit 1: {"ok": false, "error": {"code": "UNAVAILABLE"}}',
    });
    expect(parseReload(`${nonce} none\n`, nonce)).toBeUndefined();
  });

  it('lines the container prints cannot pass for steward marks', () => {
    // The CLI's output comes from the agent's container: without the nonce, its "marks" are only text.
    const forged = [`${nonce} since ${since}`, `${nonce} rc 1`, 'x rc 0', '{"ok": true}', 'none'];
    expect(parseReload(forged.join('\n'), nonce)).toEqual({
      outcome: 'failed',
      reason: 'exit 1: {"ok": true} none',
    });
    expect(parseReload(['abc since x', 'abc rc 0', '{"ok": true}'].join('\n'), nonce)).toEqual({
      outcome: 'failed',
      reason: 'the host printed no reload result',
    });
    expect(parseReload(`${nonce} since ${since}\n`, nonce)).toEqual({
      outcome: 'failed',
      reason: 'no token file to authenticate with',
    });
  });
});

describe('engine timestamps', () => {
  it('compares health check times with nanoseconds and offsets', () => {
    expect(engineTime('2026-12-05T12:24:13.123456789Z')).toBe(Date.parse('2026-12-05T12:24:13.123Z'));
    expect(engineTime('2026-12-05T12:24:13.5+00:00')).toBe(Date.parse('2026-12-05T12:24:13.500Z'));
    expect(engineTime('2026-12-05T12:24:14.000000001Z')).toBeGreaterThan(engineTime('2026-12-05T12:24:13.999999Z'));
    expect(engineTime('')).toBeNaN();
  });
});
