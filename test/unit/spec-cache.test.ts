/**
 * The compiled CLI's cache of validated specs (client/spec-cache.ts): used only for the same bytes, path and build,
 * only when private to the operator, never for a bad spec, and what it returns is what loading returns.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadSpecCached, specCacheFile } from '../../client/spec-cache';
import { loadSpec } from '../../client/spec-file';
import { ValidationError } from '../../model/validate';
import { oneHostSpec } from '../support/specs';

describe('the validated-spec cache', () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  function specFile(): string {
    const dir = mkdtempSync(join(tmpdir(), 'steward-spec-cache-'));
    dirs.push(dir);
    const file = join(dir, 'steward.yaml');
    writeFileSync(file, stringify(oneHostSpec()));
    return file;
  }

  /** Rewrites the cached entry's spec, key kept: what comes back then shows whether the entry was used. */
  function tamper(file: string): void {
    const cache = specCacheFile(file);
    const entry = JSON.parse(readFileSync(cache, 'utf8'));
    entry.spec.hosts[0].address = '198.51.100.99';
    writeFileSync(cache, JSON.stringify(entry));
  }

  it('returns what loading returns, and the entry for the same bytes, path and build', async () => {
    const file = specFile();
    const loaded = await loadSpec(file);
    // The JSON an entry holds is the spec itself: nothing lost or changed on the way.
    expect(JSON.parse(JSON.stringify(loaded.spec))).toStrictEqual(loaded.spec);
    expect(await loadSpecCached(file, 'build-a')).toStrictEqual(loaded);
    const cache = specCacheFile(file);
    expect(statSync(cache).mode & 0o777).toBe(0o600);
    expect(statSync(dirname(cache)).mode & 0o777).toBe(0o700);
    expect(await loadSpecCached(file, 'build-a')).toStrictEqual(loaded);
    tamper(file);
    expect((await loadSpecCached(file, 'build-a')).spec.hosts[0]!.address).toBe('198.51.100.99');
  });

  it('loads in full after an edit, for another build, for an entry others may write, and from the sources', async () => {
    const file = specFile();
    await loadSpecCached(file, 'build-a');
    tamper(file);
    const real = oneHostSpec().hosts[0]!.address;
    expect((await loadSpecCached(file, 'build-b')).spec.hosts[0]!.address).toBe(real);
    tamper(file);
    writeFileSync(file, `${readFileSync(file, 'utf8')}# an edit\n`);
    expect((await loadSpecCached(file, 'build-b')).spec.hosts[0]!.address).toBe(real);
    tamper(file);
    chmodSync(specCacheFile(file), 0o666);
    expect((await loadSpecCached(file, 'build-b')).spec.hosts[0]!.address).toBe(real);
    writeFileSync(specCacheFile(file), '{ not json');
    expect((await loadSpecCached(file, 'build-b')).spec.hosts[0]!.address).toBe(real);

    const other = specFile();
    expect((await loadSpecCached(other, undefined)).spec.hosts[0]!.address).toBe(real);
    expect(existsSync(specCacheFile(other))).toBe(false);
  });

  it('never remembers a bad spec: it fails the same way every time', async () => {
    const file = specFile();
    writeFileSync(file, stringify({ ...oneHostSpec(), hosts: [{ name: 'vps1' }] }));
    await expect(loadSpecCached(file, 'build-a')).rejects.toThrow(ValidationError);
    await expect(loadSpecCached(file, 'build-a')).rejects.toThrow(/hosts\[0\]\.address/);
    expect(existsSync(specCacheFile(file))).toBe(false);
    await expect(loadSpecCached(join(dirname(file), 'missing.yaml'), 'build-a')).rejects.toThrow(/does not exist/);
  });
});
