import { mkdirSync, mkdtempSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { builtAndCurrent } from '../../bin/build-freshness.js';

describe('the compiled CLI is used only while it matches its sources', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  function checkout(): { root: URL; dir: string; record: () => void } {
    const dir = mkdtempSync(join(tmpdir(), 'steward-cli-build-'));
    dirs.push(dir);
    mkdirSync(join(dir, 'client'));
    mkdirSync(join(dir, 'dist/cli'), { recursive: true });
    writeFileSync(join(dir, 'client/cli.ts'), 'export const a = 1;\n');
    writeFileSync(join(dir, 'client/run.ts'), 'export const b = 2;\n');
    const record = () => {
      const sources = Object.fromEntries(
        ['client/cli.ts', 'client/run.ts'].map((f) => {
          const s = statSync(join(dir, f));
          return [f, [s.size, Math.trunc(s.mtimeMs)]];
        }),
      );
      writeFileSync(join(dir, 'dist/cli/sources.json'), JSON.stringify(sources));
    };
    return { root: pathToFileURL(`${dir}/`), dir, record };
  }

  it('takes the build when every source is as recorded, and the sources when one changed, went or was never built', () => {
    const c = checkout();
    expect(builtAndCurrent(c.root)).toBe(false);
    c.record();
    expect(builtAndCurrent(c.root)).toBe(true);
    // Same size, newer time: an edit that kept the length.
    const later = new Date(Date.now() + 5_000);
    utimesSync(join(c.dir, 'client/run.ts'), later, later);
    expect(builtAndCurrent(c.root)).toBe(false);
    c.record();
    writeFileSync(join(c.dir, 'client/cli.ts'), 'export const a = 10;\n');
    expect(builtAndCurrent(c.root)).toBe(false);
    c.record();
    rmSync(join(c.dir, 'client/run.ts'));
    expect(builtAndCurrent(c.root)).toBe(false);
    writeFileSync(join(c.dir, 'dist/cli/sources.json'), 'not json');
    expect(builtAndCurrent(c.root)).toBe(false);
  });
});
