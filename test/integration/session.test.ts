// The worker's pooled SSH sessions outlive their hosts' outages: a host that stops answering keepalives ends its
// session (not the worker process), and the pool's next request opens a fresh one once the host is back. Keys trusted
// on first use are pinned in the worker's known-hosts file and hold from then on.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HostKeyMismatch } from '../../activities/host/errors';
import { SessionPool, type HostTarget } from '../../activities/host/session';
import { regenerateHostKeys } from '../../client/dev/simulator';
import { KnownHosts } from '../../common/known-hosts';
import { makeKeyPair } from '../support/fixtures';
import { startSimulators, type SimulatorFleet } from '../support/simulators';

describe('SSH session pool', () => {
  const keys = makeKeyPair();
  let fleet: SimulatorFleet | undefined;
  let target: HostTarget;

  beforeAll(async () => {
    fleet = await startSimulators(1, { authorizedKey: keys.publicKey, labels: { 'steward.test': 'session' } });
    const sim = fleet.simulators[0]!;
    target = {
      name: 'session-test',
      address: sim.address,
      port: sim.port,
      loginUser: sim.user,
      opsUser: sim.user,
      identityFile: keys.privateKeyPath,
      hostKey: sim.hostKey,
      trustOnFirstUse: false,
    };
  }, 300_000);

  afterAll(async () => {
    await fleet?.cleanup();
  });

  it('a host that stops answering keepalives ends the session, not the process; the next get reconnects', async () => {
    const pool = new SessionPool({ keepaliveMs: 500 });
    const container = fleet!.simulators[0]!.container;
    try {
      const first = await pool.get(target);
      expect((await first.script('echo up')).stdout).toBe('up\n');

      // A frozen host: TCP stays open, nothing answers. ssh2 raises "Keepalive timeout" after three misses.
      execFileSync('docker', ['pause', container]);
      try {
        const deadline = Date.now() + 20_000;
        while (first.connected && Date.now() < deadline) await new Promise((r) => setTimeout(r, 200));
        expect(first.connected).toBe(false);
      } finally {
        execFileSync('docker', ['unpause', container]);
      }

      const second = await pool.get(target);
      expect(second).not.toBe(first);
      expect((await second.script('echo back')).stdout).toBe('back\n');
    } finally {
      await pool.closeAll();
    }
  });

  it('writes into a directory a container owns without following what it planted there', async () => {
    const pool = new SessionPool();
    try {
      const s = await pool.get(target);
      const sh = async (script: string) => (await s.script(script)).stdout.trim();
      // A volume the container (uid 1000) owns, under a root-only parent; the target name is a symlink it planted.
      await sh(
        'set -e; rm -rf /srv/t; install -d -m 0755 /srv/t; install -d -o 1000 -g 1000 -m 0700 /srv/t/state; ' +
          'printf "host file\\n" > /srv/t/host-file; chmod 0600 /srv/t/host-file; ln -s /srv/t/host-file /srv/t/state/openclaw.json',
      );
      const before = await sh('stat -c "%u:%g %a" /srv/t/host-file; sha256sum < /srv/t/host-file');
      await s.writeFile('/srv/t/state/openclaw.json', '{"ok":true}\n', '1000:1000', '0640');
      expect(await sh('stat -c "%u:%g %a" /srv/t/host-file; sha256sum < /srv/t/host-file')).toBe(before);
      expect(await sh('stat -c "%F %u:%g %a" /srv/t/state/openclaw.json; cat /srv/t/state/openclaw.json')).toBe(
        'regular file 1000:1000 640\n{"ok":true}',
      );
      // Staged where only root writes, on the same filesystem, and nothing left there.
      expect(await sh('stat -c "%U %a" /srv/t/.steward-staging; ls -A /srv/t/.steward-staging | wc -l')).toBe(
        'root 700\n0',
      );
      // A name the container turned into a directory is refused, not written into.
      await sh(
        'rm -f /srv/t/state/openclaw.json; mkdir /srv/t/state/openclaw.json; chown 1000 /srv/t/state/openclaw.json',
      );
      await expect(s.writeFile('/srv/t/state/openclaw.json', 'x\n', '1000:1000', '0640')).rejects.toThrow();
      expect(await sh('ls -A /srv/t/state/openclaw.json | wc -l')).toBe('0');
    } finally {
      await pool.closeAll();
    }
  });

  // Last: it gives the host new keys.
  it('a key trusted on first use is pinned in the known-hosts file, which then holds: another key is refused, naming it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'steward-known-'));
    const known = new KnownHosts(join(dir, 'known_hosts'));
    const unpinned: HostTarget = { ...target, hostKey: undefined, trustOnFirstUse: true };
    const pools = [new SessionPool({ knownHosts: known }), new SessionPool({ knownHosts: known })] as const;
    try {
      expect((await (await pools[0].get(unpinned)).script('true')).code).toBe(0);
      expect(await known.lookup(target)).toBe(target.hostKey!.split(' ').slice(0, 2).join(' '));
      expect(statSync(known.path).mode & 0o777).toBe(0o600);
      const pinnedFile = readFileSync(known.path, 'utf8');

      // The file's pin holds where the spec allows no trust on first use, and against a host with new keys.
      const strict: HostTarget = { ...unpinned, trustOnFirstUse: false };
      expect((await (await pools[1].get(strict)).script('true')).code).toBe(0);
      await pools[1].closeAll();
      await regenerateHostKeys(fleet!.simulators[0]!.container);
      const refused = pools[1].get(unpinned);
      await expect(refused).rejects.toThrow(HostKeyMismatch);
      await expect(refused).rejects.toThrow(`remove its line from ${known.path}`);
      expect(readFileSync(known.path, 'utf8')).toBe(pinnedFile);
    } finally {
      await Promise.all(pools.map((p) => p.closeAll()));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
