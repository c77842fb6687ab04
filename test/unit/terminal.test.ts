/**
 * Host text never steers the operator's terminal (client/terminal.ts): control characters are printed as visible
 * escapes, in plain lines and in `--json` documents alike, and a JSON document still means the same.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { terminalSafe } from '../../client/terminal';
import { steward } from '../support/cli';

describe('terminal-safe output', () => {
  it('writes control characters as \\u escapes, keeping tabs, newlines and other text', () => {
    expect(terminalSafe('a\tb\nc')).toBe('a\tb\nc');
    expect(terminalSafe('x\x1b[2Jy\rz\x07')).toBe('x\\u001b[2Jy\\u000dz\\u0007');
    expect(terminalSafe('\x7f\x9b31m ok é ✓')).toBe('\\u007f\\u009b31m ok é ✓');
  });

  it('leaves a JSON document the same value', () => {
    const doc = { path: '/etc/x\x1b]0;owned\x07', c1: 'a\x9bb', nested: ['\x00', '\u2028'] };
    const printed = terminalSafe(JSON.stringify(doc, null, 2));
    expect(printed).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f-\x9f]/);
    expect(JSON.parse(printed)).toEqual(doc);
  });

  it('the CLI prints an error naming a hostile path without its control bytes', async () => {
    const hostile = join(mkdtempSync(join(tmpdir(), 'steward-term-')), 'spec\x1b[2J\x1b]0;title\x07.yaml');
    const r = await steward(['--spec', hostile, 'drift']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('spec\\u001b[2J\\u001b]0;title\\u0007.yaml');
    expect(r.stderr).not.toMatch(/[\x1b\x07]/);
  });
});
