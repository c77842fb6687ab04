/** Redaction: values the worker handled and values known only by hash never leave an activity in a failure. */
import { createHash, randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { activityStep } from '../../activities/context';
import { CommandFailed } from '../../activities/host/errors';
import { EDGE_LENGTH, encodings, redactError, redactingActivities, Redactor } from '../../activities/redact';

const base62 = (n: number) => {
  const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
  return [...randomBytes(n)].map((b) => chars[b % 62]).join('');
};
const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** Every text of an error: message, stack, details and causes. */
function everything(err: unknown): string {
  const out: string[] = [];
  for (let e: unknown = err; e; e = (e as Error).cause) {
    const x = e as Error & { details?: unknown };
    out.push(x.message, x.stack ?? '', JSON.stringify(x.details ?? null));
  }
  return out.join('\n');
}

describe('Redactor', () => {
  it('scrubs a handled value in every encoding steward uses', () => {
    const r = new Redactor();
    const value = `sk-or-v1-${randomBytes(24).toString('hex')}"/+=`;
    r.remember('openrouter-api-key', value);
    const forms = encodings(value);
    expect(forms.length).toBeGreaterThanOrEqual(7);
    for (const form of forms) {
      const text = `before ${form} after`;
      expect(r.redact(text)).toBe('before [redacted:openrouter-api-key] after');
    }
    expect(r.redact('nothing secret here')).toBe('nothing secret here');
  });

  it('scrubs a value cut short where a line or the text ends or begins, and leaves short coincidences', () => {
    const r = new Redactor();
    const value = `sk-or-v1-${randomBytes(24).toString('hex')}`;
    r.remember('openrouter-api-key', value);
    const text = [
      `curl: (22) Authorization: Bearer ${value.slice(0, 30)}`,
      `${value.slice(-20)}" was refused`,
      `a line that ends with ${value.slice(0, 8)}`,
      `whole ${value} and a cut ${value.slice(0, 25)}`,
    ].join('\n');
    expect(r.redact(text)).toBe(
      [
        'curl: (22) Authorization: Bearer [redacted:openrouter-api-key]',
        '[redacted:openrouter-api-key]" was refused',
        `a line that ends with ${value.slice(0, 8)}`,
        'whole [redacted:openrouter-api-key] and a cut [redacted:openrouter-api-key]',
      ].join('\n'),
    );
  });

  it('finds a generated value it knows only by hash, plain, base64 or hex, and leaves look-alikes', () => {
    const r = new Redactor();
    const token = base62(48);
    r.rememberFingerprint('gateway-token', sha(token), { length: 48, alphabet: 'base62' });
    const other = base62(48);
    const b64 = Buffer.from(token).toString('base64');
    const text = [
      `stderr: token=${token}`,
      `glued:${token}xyz`,
      `b64 ${b64}.`,
      `b64url ${Buffer.from(token).toString('base64url')}`,
      `hex ${Buffer.from(token).toString('hex')}`,
      `other ${other}`,
    ].join('\n');
    const out = r.redact(text);
    for (const form of [token, b64, Buffer.from(token).toString('hex')]) expect(out).not.toContain(form);
    expect(out).toContain('stderr: token=[redacted:gateway-token]');
    expect(out).toContain('b64 [redacted:gateway-token].');
    expect(out).toContain(`other ${other}`);
    expect(out.match(/\[redacted:gateway-token\]/g)).toHaveLength(5);
  });

  it('finds a generated value cut short by its edges alone, plain, hex or base64, and leaves look-alikes', () => {
    const r = new Redactor();
    const token = base62(48);
    const edges = { head: sha(token.slice(0, EDGE_LENGTH)), tail: sha(token.slice(-EDGE_LENGTH)) };
    r.rememberFingerprint('gateway-token', sha(token), { length: 48, alphabet: 'base62' }, edges);
    const hex = Buffer.from(token).toString('hex');
    const b64 = Buffer.from(token).toString('base64');
    const other = base62(48);
    const lines = [
      `curl: Authorization: Bearer ${token.slice(0, 30)}`,
      `cut at the line's end: x${token.slice(0, EDGE_LENGTH)}...`,
      `${token.slice(-20)}" was refused`,
      `hex ${hex.slice(0, 40)}`,
      `${hex.slice(-30)} hex tail`,
      `b64 ${b64.slice(0, 20)}`,
    ];
    const out = r.redact(lines.join('\n')).split('\n');
    expect(out).toEqual([
      'curl: Authorization: Bearer [redacted:gateway-token]',
      "cut at the line's end: x[redacted:gateway-token]...",
      '[redacted:gateway-token]" was refused',
      'hex [redacted:gateway-token]',
      '[redacted:gateway-token] hex tail',
      'b64 [redacted:gateway-token]',
    ]);
    // Pieces shorter than the edge, pieces not at a line's edge, and other values stay.
    const keep = [
      `short ${token.slice(0, EDGE_LENGTH - 1)}`,
      `middle ${token.slice(0, 30)} of a line`,
      `other ${other.slice(0, 30)}`,
      `${other.slice(-20)} other tail`,
    ].join('\n');
    expect(r.redact(keep)).toBe(keep);
  });

  it('ignores values too short to redact safely', () => {
    const r = new Redactor();
    r.remember('x', 'abc');
    expect(r.redact('abc abc')).toBe('abc abc');
  });
});

describe('redacting activities', () => {
  it("a host command's stderr echoing a value leaves the activity scrubbed: message, stack, cause, details", async () => {
    const r = new Redactor();
    const value = `${base62(40)}`;
    r.remember('telegram-bot-token', value);
    const activities = redactingActivities(
      {
        async writeSecret(): Promise<void> {
          await activityStep(async () => {
            throw new CommandFailed(
              'vps1',
              'write /opt/openclaw/secrets/x',
              1,
              `cp: cannot write '${value}': denied\n`,
            );
          });
        },
        async withDetails(): Promise<void> {
          throw ApplicationFailure.create({
            message: 'failed',
            type: 'X',
            nonRetryable: true,
            details: [{ echoed: Buffer.from(value).toString('base64') }],
          });
        },
      },
      r,
    );
    const err = await activities.writeSecret().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    const failure = err as ApplicationFailure;
    expect(failure.type).toBe('CommandFailed');
    expect(failure.nonRetryable).toBe(false);
    expect(failure.message).toContain("cannot write '[redacted:telegram-bot-token]'");
    const text = everything(err);
    for (const form of encodings(value)) expect(text).not.toContain(form);

    const withDetails = (await activities.withDetails().catch((e: unknown) => e)) as ApplicationFailure;
    expect(withDetails.nonRetryable).toBe(true);
    expect(withDetails.details).toEqual([{ echoed: '[redacted:telegram-bot-token]' }]);
  });

  it('passes a failure without secrets through unchanged, class and all', () => {
    const r = new Redactor();
    r.remember('k', 'a-secret-value-1234');
    const original = ApplicationFailure.nonRetryable('plain failure', 'Plain');
    expect(redactError(original, r)).toBe(original);
  });
});
