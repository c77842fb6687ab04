/**
 * The README's real-host sequence as written, in an empty directory and with none of steward's variables set:
 * `steward init --host …` (spec, SSH key, codec key), `steward worker` (finds the codec key beside the spec, pins the
 * host key in its own known-hosts file), `steward provision web1`. The host is a simulator booted from the run's
 * golden provisioned image with the key `init` generated, as a VPS provider installs the operator's key; what is
 * tested is the sequence, not provisioning itself (provision.test.ts). Only the server's address and a task queue of
 * its own are set, and the run's workflow bundle, which saves the worker a bundling and changes nothing it does.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { freePort, removeSimulator, startSimulator, type Simulator } from '../../client/dev/simulator';
import { publicKeyOf } from '../../activities/provision/resources';
import { waitForWorker } from '../../client/commands/dev';
import { steward, STEWARD_BIN, type CliResult } from '../support/cli';
import { goldenHostImage } from '../support/fixtures';
import { GOLDEN_OPS_USER } from '../support/golden';
import { phase } from '../support/phases';
import { builtAndCurrent } from '../../bin/build-freshness.js';

const QUEUE = `first-run-${inject('testRunId')}`;
const compiled = builtAndCurrent(new URL('../../', import.meta.url));

let dir: string;
let env: NodeJS.ProcessEnv;
let sim: Simulator | undefined;
let worker: ChildProcess | undefined;
let workerLog = '';

/** The environment an operator's shell has: the test run's steward variables removed, the server's address set. */
function operatorEnv(): NodeJS.ProcessEnv {
  const removed = Object.fromEntries(
    Object.keys(process.env).flatMap((k) => (k.startsWith('STEWARD_') ? [[k, undefined]] : [])),
  );
  return {
    ...removed,
    STEWARD_ADDRESS: inject('temporalAddress'),
    STEWARD_NAMESPACE: inject('temporalNamespace'),
    STEWARD_TASK_QUEUE: QUEUE,
    STEWARD_WORKFLOW_BUNDLE: inject('workflowBundlePath'),
  };
}

const run = (args: string[]): Promise<CliResult> => steward(args, env, dir);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'steward-first-run-'));
  env = operatorEnv();
}, 10_000);

afterAll(async () => {
  if (worker && worker.exitCode === null) {
    worker.kill('SIGTERM');
    await once(worker, 'exit');
  }
  if (sim) await removeSimulator(sim.container);
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 60_000);

describe("the README's real-host sequence in an empty directory", () => {
  it('init, worker, provision: each step finds what the one before it made', async () => {
    const port = await freePort();
    const init = await run(['init', '--host', `web1=admin@127.0.0.1:${port}`]);
    expect(init.stderr).toBe('');
    expect(init.code).toBe(0);
    expect(readdirSync(dir).sort()).toEqual(['keys', 'steward.yaml']);
    expect(readdirSync(join(dir, 'keys')).sort()).toEqual(['codec.keys', 'steward_ed25519', 'steward_ed25519.pub']);
    expect(statSync(join(dir, 'keys/codec.keys')).mode & 0o777).toBe(0o600);

    const image = await goldenHostImage('provisioned');
    // As provision writes it, so the golden ops user's key is already what this spec wants.
    const authorizedKey = await publicKeyOf(join(dir, 'keys/steward_ed25519'));
    sim = await phase('start 1 provisioned simulator(s)', () =>
      startSimulator({
        port,
        image,
        keyUsers: [GOLDEN_OPS_USER],
        authorizedKey,
        labels: { 'steward.test': 'first-run' },
      }),
    );

    worker = spawn(process.execPath, [STEWARD_BIN, 'worker'], {
      cwd: dir,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    worker.stdout!.on('data', (d: Buffer) => (workerLog += d.toString()));
    worker.stderr!.on('data', (d: Buffer) => (workerLog += d.toString()));
    // Polling within the deadline; a worker that exits instead (no codec key, say) fails at once, with its log.
    const exited = once(worker, 'exit').then(([code]) => {
      throw new Error(`steward worker exited ${String(code)}`);
    });
    await Promise.race([
      waitForWorker(
        { address: inject('temporalAddress'), namespace: inject('temporalNamespace'), taskQueue: QUEUE },
        60_000,
      ),
      exited,
    ]).catch((err: Error) => {
      throw new Error(`${err.message}\n${workerLog}`);
    });
    exited.catch(() => undefined); // the worker is stopped in afterAll

    const provision = await run(['provision', 'web1']);
    expect(provision.code, provision.stderr + provision.stdout).toBe(0);
    expect(provision.stdout).toContain('trusted the host key of web1 on first use');
    // The compiled CLI (scripts/setup.sh builds it) had the worker of its build run the command over its socket;
    // from the TypeScript sources it connects itself.
    const handedOver = /steward worker: provision web1 for \S+@\S+/;
    if (compiled) expect(workerLog).toMatch(handedOver);
    else expect(workerLog).not.toMatch(handedOver);
    // The worker pinned the key in its own file, in its working directory; the spec is as init wrote it.
    const known = readFileSync(join(dir, '.steward/known_hosts'), 'utf8');
    expect(known).toContain(`web1 [127.0.0.1]:${port} ssh-ed25519 `);
    expect(known).toContain(sim.hostKey.split(' ')[1]);
    expect(readFileSync(join(dir, 'steward.yaml'), 'utf8')).not.toContain('hostKey');

    // A second run trusts nothing new and changes nothing.
    const again = await run(['--json', 'provision', 'web1']);
    expect(again.code, again.stderr).toBe(0);
    const doc = JSON.parse(again.stdout) as { hosts: { host: string; changes: unknown[] }[] };
    expect(doc.hosts.map((h) => [h.host, h.changes])).toEqual([['web1', []]]);

    // Refusals come back as the CLI's own would: a host the spec does not have is a usage error, and nothing runs.
    const unknown = await run(['provision', 'web9']);
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toContain('unknown host web9; the spec has web1');

    // STEWARD_LOCAL_WORKER=0: the CLI connects itself, with the same outcome, and the worker is not asked.
    const handed = workerLog.match(new RegExp(handedOver, 'g'))?.length ?? 0;
    const direct = await steward(['--json', 'provision', 'web1'], { ...env, STEWARD_LOCAL_WORKER: '0' }, dir);
    expect(direct.code, direct.stderr).toBe(0);
    expect((JSON.parse(direct.stdout) as typeof doc).hosts.map((h) => [h.host, h.changes])).toEqual([['web1', []]]);
    expect(workerLog.match(new RegExp(handedOver, 'g'))?.length ?? 0).toBe(handed);
  }, 300_000);
});
