/** `steward upgrade`'s spec side: the new image from the release, and the spec file rewritten only where it must be. */
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { imageAt, upgradeChange } from '../../client/commands/upgrade';
import { UsageError } from '../../client/errors';
import { oneHostSpec } from '../support/specs';

const dir = mkdtempSync(join(tmpdir(), 'steward-upgrade-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('steward upgrade --to', () => {
  it("names the release's image in the spec's repository, registry ports kept; a digest pin is refused", () => {
    expect(imageAt('steward/openclaw:2026.9.5', '2026.9.6')).toBe('steward/openclaw:2026.9.6');
    expect(imageAt('registry.example.net:5000/agents/openclaw:1.0', '1.1')).toBe(
      'registry.example.net:5000/agents/openclaw:1.1',
    );
    expect(() => imageAt(`steward/openclaw@sha256:${'a'.repeat(64)}`, '2026.9.6')).toThrow(UsageError);
  });

  it('refuses a release that is not one, before anything starts', async () => {
    await expect(upgradeChange(join(dir, 'x.yaml'), '2026.9.6; reboot', true)).rejects.toThrow(/--to/);
  });

  it('runs with the new image and, once it succeeded, writes only stack.image into the spec, comments kept', async () => {
    const path = join(dir, 'steward.yaml');
    const text = [
      '# production agents',
      'version: 1',
      'hosts:',
      '  - name: vps1 # the first one',
      '    address: 203.0.113.10',
      'stack:',
      '  image: steward/openclaw:2026.9.5 # pinned',
      '',
    ].join('\n');
    writeFileSync(path, text, { mode: 0o640 });
    const change = await upgradeChange(path, '2026.9.6', true);
    const spec = oneHostSpec();
    expect(change.spec({ ...spec, stack: { ...spec.stack, image: 'steward/openclaw:2026.9.5' } }).stack.image).toBe(
      'steward/openclaw:2026.9.6',
    );
    expect(readFileSync(path, 'utf8')).toBe(text); // nothing written before the run succeeded
    await change.after();
    expect(readFileSync(path, 'utf8')).toBe(text.replace('openclaw:2026.9.5', 'openclaw:2026.9.6'));
    expect(statSync(path).mode & 0o777).toBe(0o640);
  });
});
