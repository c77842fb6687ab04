import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { run, sh } from '../../activities/host/shell';

const hostile = [
  '/srv/a; touch pwned',
  '$(id)',
  '`id`',
  "it's",
  'a"b',
  'x\ny',
  '*',
  '~root',
  '--',
  '',
  'back\\slash',
  '$HOME',
  '!event',
];

describe('shell quoting', () => {
  it.each(hostile)('a real shell receives %j literally', (value) => {
    const out = execFileSync('sh', ['-c', `${sh(['printf', '%s', value])}`], { encoding: 'utf8' });
    expect(out).toBe(value);
  });

  it('keeps argument boundaries', () => {
    const out = execFileSync('sh', ['-c', `${run('printf', '[%s]', 'a b', 'c', 7)}`], { encoding: 'utf8' });
    expect(out).toBe('[a b][c][7]');
  });

  it('refuses an empty command', () => {
    expect(() => sh([])).toThrow('empty command');
  });
});
