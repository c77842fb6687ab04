/**
 * provision end to end: the real CLI, the real dev server, steward's worker, and Debian VPS simulators
 * (systemd, sshd, apt from Debian's mirror, nested Docker).
 */
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { regenerateHostKeys, simulatorExec, type Simulator } from '../../client/dev/simulator';
import { openSession } from '../../activities/host/session';
import { KnownHosts } from '../../common/known-hosts';
import { steward } from '../support/cli';
import { cliFor, hostName, makeKeyPair, startWorker, writeSpec, type KeyPair } from '../support/fixtures';
import { startSimulators, type SimulatorFleet } from '../support/simulators';
import { testEnv, type TestEnv } from '../support/temporal';

const TASK_QUEUE = 'provision-test';

let env: TestEnv;
let keys: KeyPair;
let fleet: SimulatorFleet;
let worker: { stop(): Promise<void> };
let fresh: Simulator;
let preinstalled: Simulator;
let rekeyed: Simulator;

const provision = (spec: string, ...args: string[]) => cliFor(env, TASK_QUEUE)(spec, 'provision', ...args);

async function sh(sim: Simulator, script: string): Promise<string> {
  const r = await simulatorExec(sim.container, ['sh', '-c', script]);
  return r.stdout.trim();
}

beforeAll(async () => {
  env = await testEnv();
  keys = makeKeyPair();
  [fleet, worker] = await Promise.all([
    startSimulators(3, { authorizedKey: keys.publicKey, aptCache: true }),
    startWorker(env, TASK_QUEUE),
  ]);
  [fresh, preinstalled, rekeyed] = fleet.simulators as [Simulator, Simulator, Simulator];
});

afterAll(async () => {
  await worker?.stop();
  await fleet?.cleanup();
  await env?.teardown();
});

describe('steward provision', () => {
  it("plans a fresh host from init's starter spec without changing it; the worker pins the key seen first in its known-hosts file", async () => {
    const spec = join(keys.dir, 'init.yaml');
    const init = await steward([
      '--spec',
      spec,
      'init',
      '--host',
      `${hostName(fresh)}=admin@127.0.0.1:${fresh.port}`,
      '--identity',
      keys.privateKeyPath,
    ]);
    expect(init.code).toBe(0);
    const written = readFileSync(spec, 'utf8');
    expect(await KnownHosts.fromEnv().lookup({ name: hostName(fresh), address: '127.0.0.1', port: fresh.port })).toBe(
      undefined,
    );
    const plan = await provision(spec, '--plan');
    expect(plan.code).toBe(0);
    const planned = plan.doc?.hosts[0]?.changes.map((c) => c.resource) ?? [];
    expect(planned).toEqual(expect.arrayContaining(['package:docker.io', 'user:steward', 'dir:/opt/openclaw/state']));
    expect(await sh(fresh, 'getent passwd steward; test -e /opt/openclaw && echo exists; command -v dockerd')).toBe('');
    // The operator's file stays as written; the key is in the worker's known-hosts file, for that name and endpoint.
    expect(readFileSync(spec, 'utf8')).toBe(written);
    expect((parse(written) as { hosts: { hostKey?: string }[] }).hosts[0]?.hostKey).toBeUndefined();
    const known = KnownHosts.fromEnv();
    const pinned = await known.lookup({ name: hostName(fresh), address: '127.0.0.1', port: fresh.port });
    expect(pinned?.split(' ').slice(0, 2)).toEqual(fresh.hostKey.split(' ').slice(0, 2));
    expect(statSync(known.path).mode & 0o777).toBe(0o600);
  });

  it('provisions a fresh host, then a re-run changes nothing', async () => {
    const spec = writeSpec(keys, [fresh]);
    const first = await provision(spec);
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.doc?.status).toBe('completed');
    const changed = first.doc?.hosts[0]?.changes.map((c) => c.resource) ?? [];
    expect(changed).toEqual(
      expect.arrayContaining([
        'package:docker.io',
        'package:sqlite3',
        'file:/etc/docker/daemon.json',
        'user:steward',
        'file:/home/steward/.ssh/authorized_keys',
        'file:/etc/sudoers.d/steward-steward',
        'dir:/opt/openclaw',
        'dir:/opt/openclaw/state',
      ]),
    );

    const again = await provision(spec);
    expect(again.code).toBe(0);
    expect(again.doc?.hosts[0]?.changes).toEqual([]);
  });

  it('leaves a host where the ops user can sudo and use Docker, and directories as the spec says', async () => {
    const target = {
      name: hostName(fresh),
      address: fresh.address,
      port: fresh.port,
      loginUser: 'steward',
      opsUser: 'steward',
      identityFile: keys.privateKeyPath,
      hostKey: fresh.hostKey,
      trustOnFirstUse: false,
    };
    const session = await openSession(target, 'steward');
    try {
      const info = await session.script("docker info --format '{{.LoggingDriver}} {{.LiveRestoreEnabled}}'", {
        sudo: false,
      });
      expect(info.stdout.trim()).toBe('json-file true');
      expect((await session.script('id -u')).stdout.trim()).toBe('0');
    } finally {
      await session.close();
    }
    const stat = await sh(
      fresh,
      'stat -c "%n %u:%g %a" /opt/openclaw /opt/openclaw/state /opt/openclaw/memory /opt/openclaw/workspace',
    );
    expect(stat.split('\n')).toEqual([
      `/opt/openclaw 0:${await sh(fresh, 'getent group steward | cut -d: -f3')} 750`,
      '/opt/openclaw/state 1000:1000 700',
      '/opt/openclaw/memory 1000:1000 700',
      '/opt/openclaw/workspace 1000:1000 750',
    ]);
  });

  it('on a host with Docker already installed, corrects a wrong volume owner and reports it', async () => {
    const installed = await simulatorExec(preinstalled.container, [
      'sh',
      '-c',
      'DEBIAN_FRONTEND=noninteractive apt-get update -q && apt-get install -y -q docker.io && mkdir -p /opt/openclaw/state && chmod 755 /opt/openclaw/state',
    ]);
    expect(installed.exitCode).toBe(0);
    const spec = writeSpec(keys, [preinstalled]);
    const r = await provision(spec);
    expect(r.code).toBe(0);
    const changes = r.doc?.hosts[0]?.changes ?? [];
    expect(changes.map((c) => c.resource)).not.toContain('package:docker.io');
    expect(changes).toContainEqual({
      resource: 'dir:/opt/openclaw/state',
      action: 'update',
      before: { owner: '0:0', mode: '0755' },
      after: { owner: '1000:1000', mode: '0700' },
    });
    expect(await sh(preinstalled, 'stat -c "%u:%g %a" /opt/openclaw/state')).toBe('1000:1000 700');
  });

  it('fails fast on a changed host key, before any command runs', async () => {
    const spec = writeSpec(keys, [rekeyed]);
    await regenerateHostKeys(rekeyed.container);
    const before = await sh(rekeyed, 'ls /var/log/apt /home; getent passwd steward || true');
    const started = Date.now();
    const r = await provision(spec);
    expect(r.code).toBe(1);
    expect(r.doc?.status).toBe('failed');
    expect(r.doc?.hosts[0]?.error).toMatch(/host key changed: pinned SHA256:\S+, host presented SHA256:\S+/);
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(await sh(rekeyed, 'ls /var/log/apt /home; getent passwd steward || true')).toBe(before);
    const sessions = await sh(rekeyed, 'journalctl -u ssh --no-pager | grep -c "Accepted publickey" || true');
    expect(sessions).toBe('0');
  });
});
