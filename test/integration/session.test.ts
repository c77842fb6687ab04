// The worker's pooled SSH sessions outlive their hosts' outages: a host that stops answering keepalives ends its
// session (not the worker process), and the pool's next request opens a fresh one once the host is back.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionPool, type HostTarget } from '../../activities/host/session';
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
});
