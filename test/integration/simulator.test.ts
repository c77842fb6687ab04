// The VPS simulator behaves like a fresh cloud server: key login as `admin`, passwordless sudo, systemd up,
// and its own host key, which survives a reboot but not a reinstall.
import { Client } from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateEd25519KeyPair } from '../../common/keygen';
import Docker from 'dockerode';
import { spawnSync } from 'node:child_process';
import {
  OWNER_HOST_LABEL,
  OWNER_PID_LABEL,
  SIMULATOR_IMAGE,
  listSimulators,
  ownerLabels,
  regenerateHostKeys,
  removeOrphanedSimulators,
  removeSimulator,
  restartSimulator,
  simulatorExec,
  snapshotSimulator,
  type Simulator,
} from '../../client/dev/simulator';
import { startSimulators, type SimulatorFleet } from '../support/simulators';

const START_TIMEOUT_MS = 300_000;

describe('VPS simulator', () => {
  const keys = generateEd25519KeyPair('steward-test');
  let fleet: SimulatorFleet | undefined;
  let first: Simulator;
  let second: Simulator;

  beforeAll(async () => {
    fleet = await startSimulators(2, { authorizedKey: keys.public, labels: { 'steward.test': 'simulator' } });
    [first, second] = fleet.simulators as [Simulator, Simulator];
  }, START_TIMEOUT_MS);

  afterAll(async () => {
    await fleet?.cleanup();
  });

  it('lets admin in by key with the pinned host key, sudo without password, systemd running', async () => {
    const ssh = await connect(first, first.hostKey);
    try {
      expect(await run(ssh, 'id -un')).toEqual({ stdout: 'admin\n', code: 0 });
      expect(await run(ssh, 'sudo -n true')).toEqual({ stdout: '', code: 0 });
      expect(await run(ssh, 'systemctl is-system-running')).toEqual({ stdout: 'running\n', code: 0 });
    } finally {
      ssh.end();
    }
  });

  it('gives every simulator its own host key', () => {
    expect(first.hostKey).toMatch(/^ssh-ed25519 AAAA\S+$/);
    expect(second.hostKey).toMatch(/^ssh-ed25519 AAAA\S+$/);
    expect(second.hostKey).not.toBe(first.hostKey);
  });

  it('keeps its host key across a restart and changes it on regeneration', async () => {
    await restartSimulator(second.container);
    (await connect(second, second.hostKey)).end();

    const newHostKey = await regenerateHostKeys(second.container);
    expect(newHostKey).not.toBe(second.hostKey);
    await expect(connect(second, second.hostKey)).rejects.toThrow(/verification failed/i);
    (await connect(second, newHostKey)).end();
  });

  it('boots simulators from a snapshot with the disk kept and a new identity each, keyed for the new operator', async () => {
    const marker = `snapshot-${Date.now()}`;
    const { stdout: machineId } = await simulatorExec(first.container, [
      'sh',
      '-c',
      `echo ${marker} > /root/marker; cat /etc/machine-id`,
    ]);
    const ref = `steward-test/snapshot:${marker}`;
    const image = await snapshotSimulator(first.container, ref, { 'steward.test': 'simulator' });
    fleet!.simulators.splice(fleet!.simulators.indexOf(first), 1); // the snapshot removed it
    const other = generateEd25519KeyPair('steward-test-other');
    const clones = await startSimulators(2, {
      authorizedKey: other.public,
      image: ref,
      keyUsers: ['nobody-such'],
      labels: { 'steward.test': 'simulator' },
    });
    try {
      const [a, b] = clones.simulators as [Simulator, Simulator];
      expect(new Set([a.hostKey, b.hostKey, first.hostKey]).size).toBe(3);
      for (const clone of [a, b]) {
        const facts = await simulatorExec(clone.container, ['sh', '-c', 'cat /root/marker /etc/machine-id']);
        const [kept, id] = facts.stdout.trim().split('\n');
        expect(kept).toBe(marker);
        expect(id).toMatch(/^[0-9a-f]{32}$/);
        expect(id).not.toBe(machineId.trim());
        const ssh = await connectWith(clone, clone.hostKey, other.private);
        try {
          expect(await run(ssh, 'id -un')).toEqual({ stdout: 'admin\n', code: 0 });
        } finally {
          ssh.end();
        }
        await expect(connectWith(clone, clone.hostKey, keys.private)).rejects.toThrow(/authentication/i);
      }
      const a2 = await simulatorExec(a.container, ['cat', '/etc/machine-id']);
      const b2 = await simulatorExec(b.container, ['cat', '/etc/machine-id']);
      expect(a2.stdout).not.toBe(b2.stdout);
    } finally {
      await clones.cleanup();
      await removeImage(image);
    }
  });

  function connect(simulator: Simulator, pinnedHostKey: string): Promise<Client> {
    return connectWith(simulator, pinnedHostKey, keys.private);
  }

  function connectWith(simulator: Simulator, pinnedHostKey: string, privateKey: string): Promise<Client> {
    const pinnedBlob = pinnedHostKey.split(' ')[1];
    return new Promise((resolve, reject) => {
      const client = new Client();
      client
        .once('ready', () => resolve(client))
        .once('error', reject)
        .connect({
          host: simulator.address,
          port: simulator.port,
          username: simulator.user,
          privateKey,
          hostVerifier: (key: Buffer) => key.toString('base64') === pinnedBlob,
        });
    });
  }

  it("removes the simulators of an owner that ended (a killed run's), never those of a live one", async () => {
    const docker = new Docker({ socketPath: '/var/run/docker.sock' });
    const ended = spawnSync('true').pid!; // a process that has exited: its pid names no one now
    const create = (labels: Record<string, string>) =>
      docker.createContainer({
        Image: SIMULATOR_IMAGE,
        Labels: { 'steward.simulator': '1', 'steward.test': 'reap', ...labels },
      });
    const orphan = await create(ownerLabels(ended));
    const live = await create(ownerLabels());
    const elsewhere = await create({ [OWNER_PID_LABEL]: String(ended), [OWNER_HOST_LABEL]: 'another-machine' });
    try {
      await removeOrphanedSimulators();
      const left = (await listSimulators({ 'steward.test': 'reap' })).map((s) => s.container);
      expect(left).not.toContain(orphan.id);
      expect(left).toContain(live.id);
      expect(left).toContain(elsewhere.id);
      // This file's simulators carry their run's owner.
      expect((await listSimulators({ 'steward.test': 'simulator' }))[0]?.labels[OWNER_PID_LABEL]).toMatch(/^\d+$/);
    } finally {
      for (const c of [orphan, live, elsewhere]) await removeSimulator(c.id);
    }
  });
});

async function removeImage(id: string): Promise<void> {
  await new Docker({ socketPath: '/var/run/docker.sock' }).getImage(id).remove({ force: true });
}

function run(ssh: Client, command: string): Promise<{ stdout: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    ssh.exec(command, (error, channel) => {
      if (error) return reject(error);
      let stdout = '';
      channel.on('data', (data: Buffer) => (stdout += data.toString('utf8')));
      channel.stderr.resume();
      channel.once('close', (code: number | null) => resolve({ stdout, code }));
    });
  });
}
