import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KnownHostConflict, KnownHosts, KnownHostsUnusable } from '../../common/known-hosts';

const KEY_A = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFvzyMgO2hs7mVKm0F0rWw3b5YRHqNpY6Sl4oS9Gv2Yb';
const KEY_B = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ3VlmuQ4m5c2bUyQ2hV8cFQk0gqN7cC8c9b8rQ0m6Xz';
const WEB1 = { name: 'web1', address: '203.0.113.10', port: 22 };

describe('the known-hosts file', () => {
  let dir: string;
  let known: KnownHosts;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'steward-known-hosts-test-'));
    known = new KnownHosts(join(dir, 'state', 'known_hosts'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('pins a key once, private to its user, for that name at that address and port only', async () => {
    expect(await known.lookup(WEB1)).toBeUndefined();
    expect(await known.pin(WEB1, `${KEY_A} root@web1`)).toBe(true);
    expect(await known.lookup(WEB1)).toBe(KEY_A);
    expect(statSync(known.path).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'state')).mode & 0o777).toBe(0o700);
    expect(readFileSync(known.path, 'utf8')).toContain(`web1 [203.0.113.10]:22 ${KEY_A}\n`);
    expect(await known.lookup({ ...WEB1, port: 2222 })).toBeUndefined();
    expect(await known.lookup({ ...WEB1, address: '203.0.113.11' })).toBeUndefined();
    expect(await known.lookup({ ...WEB1, name: 'web2' })).toBeUndefined();
    // The same key again changes nothing.
    expect(await known.pin(WEB1, KEY_A)).toBe(false);
  });

  it('refuses another key for a pinned host unless told to replace it (a host steward made itself)', async () => {
    await known.pin(WEB1, KEY_A);
    await known.pin({ ...WEB1, name: 'web2' }, KEY_B);
    await expect(known.pin(WEB1, KEY_B)).rejects.toThrow(KnownHostConflict);
    expect(await known.lookup(WEB1)).toBe(KEY_A);
    expect(await known.pin(WEB1, KEY_B, { replace: true })).toBe(true);
    expect(await known.lookup(WEB1)).toBe(KEY_B);
    expect(await known.lookup({ ...WEB1, name: 'web2' })).toBe(KEY_B);
    expect((await known.entries()).map((e) => e.name).sort()).toEqual(['web1', 'web2']);
  });

  it('keeps every pin when a fleet trusts many hosts at once', async () => {
    const hosts = Array.from({ length: 12 }, (_, i) => ({ ...WEB1, name: `web${i}`, port: 2200 + i }));
    await Promise.all(hosts.map((h) => known.pin(h, KEY_A)));
    expect((await known.entries()).map((e) => e.name).sort()).toEqual(hosts.map((h) => h.name).sort());
  });

  it('names the file and line of an entry it cannot read, and refuses a key it would not pin', async () => {
    await known.pin(WEB1, KEY_A);
    writeFileSync(known.path, `${readFileSync(known.path, 'utf8')}web2 203.0.113.11:22 ${KEY_B}\n`, { mode: 0o600 });
    await expect(known.lookup(WEB1)).rejects.toThrow(
      `${known.path} line 3: "203.0.113.11:22" is not [<address>]:<port>`,
    );
    writeFileSync(known.path, `web1 [203.0.113.10]:22 ssh-dss AAAA\n`, { mode: 0o600 });
    await expect(known.entries()).rejects.toThrow(/line 1: key type "ssh-dss" is not one steward pins/);
    await expect(known.pin({ ...WEB1, name: 'bad name' }, KEY_A)).rejects.toThrow(KnownHostsUnusable);
    await expect(known.pin(WEB1, 'ssh-ed25519 not;base64')).rejects.toThrow(/not base64/);
  });

  it('refuses a file others may write, and a symlink in its place', async () => {
    await known.pin(WEB1, KEY_A);
    chmodSync(known.path, 0o620);
    await expect(known.lookup(WEB1)).rejects.toThrow(/writable by others \(mode 620\): chmod 600 it/);
    chmodSync(known.path, 0o600);
    const link = new KnownHosts(join(dir, 'link'));
    symlinkSync(known.path, link.path);
    await expect(link.lookup(WEB1)).rejects.toThrow(`${link.path} is not a regular file`);
  });

  it('resolves $STEWARD_KNOWN_HOSTS, else .steward/known_hosts in the working directory', () => {
    expect(KnownHosts.fromEnv({ STEWARD_KNOWN_HOSTS: '/srv/steward/known_hosts' }).path).toBe(
      '/srv/steward/known_hosts',
    );
    expect(KnownHosts.fromEnv({}).path).toBe(join(process.cwd(), '.steward/known_hosts'));
  });
});
