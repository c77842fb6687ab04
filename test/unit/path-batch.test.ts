// The batched observation of files and directories (one stat, one sha256sum) hands every resource exactly what its
// own probe prints: run here with the local sh on a temp tree, the parsed observations are equal path by path.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { directoryResource, fileResource, pathBatch } from '../../activities/resources/files';

const sh = (script: string) => {
  const out = execFileSync('sh', ['-c', `( ${script}\n) 2>&1; true`], { encoding: 'utf8' });
  return { out, code: 0 };
};

describe('pathBatch', () => {
  const dir = mkdtempSync(join(tmpdir(), 'steward-batch-'));
  writeFileSync(join(dir, 'a.conf'), 'a = 1\n', { mode: 0o640 });
  writeFileSync(join(dir, 'empty'), '');
  writeFileSync(join(dir, 'with space & $dollar'), 'x');
  mkdirSync(join(dir, 'sub'), { mode: 0o750 });
  symlinkSync(join(dir, 'a.conf'), join(dir, 'link'));
  const file = (name: string) =>
    fileResource({ path: join(dir, name), content: 'a = 1\n', owner: 0, group: 0, mode: '0640' }, 'h');
  const resources = [
    file('a.conf'),
    file('empty'),
    file('with space & $dollar'),
    file('missing'),
    file('sub'),
    file('link'),
    file('back\\slash'),
    directoryResource({ path: join(dir, 'sub'), owner: 0, group: 0, mode: '0750' }, 'h'),
    directoryResource({ path: join(dir, 'gone'), owner: 0, group: 0, mode: '0750' }, 'h'),
  ];

  it('observes each path as its own probe does', () => {
    const batch = pathBatch(
      resources.map((r) => ({ path: (r.desired as { path: string }).path, hash: r.desired!.kind === 'file' })),
    );
    expect(batch.batched).toEqual([true, true, true, true, true, true, false, true, true]);
    const results = batch.results(sh(batch.probe));
    resources.forEach((r, i) => {
      if (!batch.batched[i]) return;
      const own = r.parse(sh(r.probe));
      const batched = r.parse(results[i]!);
      if (own.type === 'directory' && r.desired!.kind === 'file') {
        // A file expected where a directory is: both refuse it (its own probe also "hashes" sha256sum's complaint).
        expect(batched.type).toBe('directory');
        expect(() => r.diff(batched)).toThrow(/is a directory, not a regular file/);
        return;
      }
      expect({ path: r.id, observed: batched }).toEqual({ path: r.id, observed: own });
    });
    expect(resources[0]!.diff(resources[0]!.parse(results[0]!))).toEqual([]);
    expect(resources[1]!.parse(results[1]!)).toMatchObject({
      type: 'regular empty file',
      sha256: expect.stringMatching(/^e3b0c442/),
    });
    expect(resources[3]!.parse(results[3]!)).toEqual({ type: 'absent' });
    expect(resources[5]!.parse(results[5]!)).toMatchObject({ type: 'symbolic link' });
    // A link is never read through, in a batch or alone: no hash of what it points at, and the diff refuses it.
    expect(resources[5]!.parse(results[5]!)).not.toHaveProperty('sha256');
    expect(resources[5]!.parse(sh(resources[5]!.probe))).not.toHaveProperty('sha256');
    expect(() => resources[5]!.diff(resources[5]!.parse(results[5]!))).toThrow(
      /is a symbolic link, not a regular file/,
    );
  });

  it('a path that exists but cannot be statted is refused, not read as absent', () => {
    const batch = pathBatch([{ path: join(dir, 'a.conf'), hash: true }]);
    const [r] = batch.results({
      out: `stat: cannot statx '${join(dir, 'a.conf')}': Permission denied\n--steward-hashes--\n`,
      code: 1,
    });
    expect(() => file('a.conf').parse(r!)).toThrow(/unexpected stat output/);
  });
});
