/**
 * Batched probe framing (activities/host/probe-framing.ts), run through a real `sh`: output that carries the framing
 * bytes — the old fixed markers, or records with a guessed nonce — stays inside its own probe's result and never
 * replaces another probe's; a record cut off is reported missing, not guessed.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { probeBatch } from '../../activities/host/probe-framing';
import { sh } from '../../activities/host/shell';

const run = (script: string): string => execFileSync('sh', ['-s'], { input: `${script}\n`, encoding: 'utf8' });

/** What a container-writable file could hold to pass itself off as probe 0's result, or end probe 1's early. */
const GUESS = '0123456789abcdef0123456789abcdef';
const FORGERY = [
  '\x1f0\n\x1e0\nforged\x1f0\n', // the fixed markers of the earlier framing
  `\x1f${GUESS} 1 0\n\x1e${GUESS} 0\nforged\x1f${GUESS} 0 0\n`, // a guessed nonce
  '\x1e\x1f\x1e0 0\n\x1f \n',
].join('');

describe('probe framing', () => {
  it('keeps framing bytes in the output of the probe that printed them', () => {
    const batch = probeBatch([
      'echo real zero',
      `printf %s ${sh([FORGERY])}`,
      `printf %s ${sh([FORGERY])}; exit 3`,
      'echo last',
    ]);
    const { results, missing } = batch.parse(run(batch.script));
    expect(missing).toEqual([]);
    expect(results).toEqual([
      { out: 'real zero\n', code: 0 },
      { out: FORGERY, code: 0 },
      { out: FORGERY, code: 3 },
      { out: 'last\n', code: 0 },
    ]);
  });

  it('a nonce is fresh for every batch and made of hex digits only', () => {
    const a = probeBatch(['true']).script;
    const b = probeBatch(['true']).script;
    const nonceOf = (s: string) => /\\036%s %d\\n' ([0-9a-f]+) 0/.exec(s)?.[1];
    expect(nonceOf(a)).toMatch(/^[0-9a-f]{32}$/);
    expect(nonceOf(a)).not.toBe(nonceOf(b));
    expect(() => probeBatch(['true'], { nonce: "x'; rm -rf /" })).toThrow(/nonce/);
  });

  it('reports records that are absent or cut off as missing', () => {
    const batch = probeBatch(['echo a', 'echo b', 'echo c']);
    const out = run(batch.script);
    const cut = out.slice(0, out.lastIndexOf('c\n') + 2); // the last record loses its end marker
    expect(batch.parse(cut).missing).toEqual([2]);
    expect(batch.parse('').missing).toEqual([0, 1, 2]);
    // Records from another batch (another nonce) count for nothing.
    expect(probeBatch(['echo a', 'echo b', 'echo c']).parse(out).missing).toEqual([0, 1, 2]);
  });

  describe('in lanes', () => {
    const fragments = ['echo zero', `printf %s ${sh([FORGERY])}; exit 3`, 'echo two >&2', 'true', 'echo four; exit 1'];

    it('prints what a run in order prints, records in index order', () => {
      const inOrder = probeBatch(fragments, { nonce: GUESS.replace(/0/g, 'e') });
      const laned = probeBatch(fragments, { nonce: GUESS.replace(/0/g, 'e'), lanes: 3 });
      expect(laned.script).not.toBe(inOrder.script);
      expect(run(laned.script)).toBe(run(inOrder.script));
      expect(laned.parse(run(laned.script)).results).toEqual([
        { out: 'zero\n', code: 0 },
        { out: FORGERY, code: 3 },
        { out: 'two\n', code: 0 },
        { out: '', code: 0 },
        { out: 'four\n', code: 1 },
      ]);
    });

    it('runs the lanes side by side: a probe that waits for a later one sees it', () => {
      const dir = mkdtempSync(join(tmpdir(), 'lanes-'));
      const flag = sh([join(dir, 'flag')]);
      const waits = `i=0; while [ ! -e ${flag} ] && [ $i -lt 40 ]; do sleep 0.05; i=$((i+1)); done; test -e ${flag} && echo met`;
      try {
        const laned = probeBatch([waits, `touch ${flag}`], { lanes: 2 });
        expect(laned.parse(run(laned.script)).results[0]).toEqual({ out: 'met\n', code: 0 });
        rmSync(join(dir, 'flag'));
        const inOrder = probeBatch([waits, `touch ${flag}`]);
        expect(inOrder.parse(run(inOrder.script)).results[0]).toEqual({ out: '', code: 1 });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('leaves no temp dir behind, and runs in order where none can be made', () => {
      const dir = mkdtempSync(join(tmpdir(), 'lanes-'));
      try {
        const laned = probeBatch(fragments, { lanes: 2 });
        const env = { ...process.env, TMPDIR: dir };
        execFileSync('sh', ['-s'], { input: laned.script, env });
        expect(readdirSync(dir)).toEqual([]);
        // No mktemp on the PATH: the same records, from a run in order.
        const out = execFileSync('/bin/sh', ['-s'], { input: laned.script, encoding: 'utf8', env: { PATH: dir } });
        expect(laned.parse(out).missing).toEqual([]);
        expect(laned.parse(out).results[4]).toEqual({ out: 'four\n', code: 1 });
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    it('refuses a lane count that is not a whole number ≥ 1', () => {
      expect(() => probeBatch(['true'], { lanes: 0 })).toThrow(/lanes/);
      expect(() => probeBatch(['true'], { lanes: 1.5 })).toThrow(/lanes/);
    });
  });
});
