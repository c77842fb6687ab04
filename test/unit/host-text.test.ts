/** Host text made fit for a report (model/host-text.ts): printable, bounded, and no secret-shaped run kept. */
import { describe, expect, it } from 'vitest';
import { printable, scrubbed } from '../../model/host-text';

describe('host text', () => {
  it('masks every run of 16 or more characters without a space, in any alphabet, before anything else', () => {
    const base64 = 'q3Zx+T9/kLm2Pw8=R7vN';
    const split = 'abcdefghij/klmnopqrstuv';
    const inUrl = 'https://api.telegram.org/bot123456:AAH-secret_part/getMe';
    for (const secret of [base64, split, inUrl]) {
      const out = scrubbed(`call failed: ${secret} (401)`, 200);
      expect(out).toBe('call failed: [...] (401)');
      for (const piece of secret.split(/[^A-Za-z0-9]+/).filter((p) => p.length >= 6)) expect(out).not.toContain(piece);
    }
    expect(scrubbed('Authentication failed (provider returned HTTP 401).', 200)).toBe(
      'Authentication failed (provider returned HTTP 401).',
    );
    expect(scrubbed('a\x1b[31mred\x1b[0m\nline', 200)).toBe('a [31mred [0m line');
  });

  it('keeps printable ASCII on one line, cut with an ellipsis', () => {
    expect(printable('  one\ntwo\tthree\x00 ', 100)).toBe('one two three');
    expect(printable('x'.repeat(300), 10)).toBe(`${'x'.repeat(9)}…`);
  });
});
