/**
 * Durability and fleets: a worker killed with SIGKILL mid-provision is replaced and the run completes with the host
 * in the same state as a clean run; several hosts run as one fleet workflow with a child per host; three workers share
 * a 50-entry drift plan, one is killed with SIGKILL part way, and every host is planned exactly once; a rollout in
 * waves halts at the wave with a failed host, leaves the later waves untouched, and `resume` or `abort` ends it.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatorExec, type Simulator } from '../../client/dev/simulator';
import type { RunSummary } from '../../client/commands/status';
import type { ResultDocument } from '../../client/operation';
import type { HostReport } from '../../model/report';
import { StewardHost } from '../../model/search-attributes';
import type { HostProgress } from '../../workflows/host-operation';
import { steward, STEWARD_BIN } from '../support/cli';
import { cliFor, hostName, makeKeyPair, startWorker, writeSpec, type KeyPair } from '../support/fixtures';
import { startSimulators, type SimulatorFleet } from '../support/simulators';
import { testEnv, type TestEnv } from '../support/temporal';

let env: TestEnv;
let keys: KeyPair;
let fleet: SimulatorFleet;
let a: Simulator;
let b: Simulator;

/** Distinct identities (`<pid>@<machine>`) polling `taskQueue` for activities. */
async function pollers(taskQueue: string): Promise<string[]> {
  const r = await env.connection.workflowService.describeTaskQueue({
    namespace: env.namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
  });
  return [...new Set((r.pollers ?? []).map((p) => p.identity ?? ''))];
}

/** Whether any workflow or activity task of the run was started by the worker `identity`. */
async function touchedBy(workflowId: string, runId: string, identity: string): Promise<boolean> {
  const history = await env.client.workflow.getHandle(workflowId, runId).fetchHistory();
  return (history.events ?? []).some(
    (e) =>
      e.workflowTaskStartedEventAttributes?.identity === identity ||
      e.activityTaskStartedEventAttributes?.identity === identity,
  );
}

function workerProcess(taskQueue: string): ChildProcess {
  return spawn(process.execPath, [STEWARD_BIN, '--address', env.address, '--task-queue', taskQueue, 'worker'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 300_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`timed out waiting for ${what}`);
}

async function hostState(sim: Simulator): Promise<string> {
  const script = [
    'getent passwd steward | cut -d: -f1,6,7',
    'id -nG steward',
    'stat -c "%n %U:%G %a" /opt/openclaw /opt/openclaw/* /home/steward/.ssh/authorized_keys /etc/sudoers.d/steward-steward /etc/docker/daemon.json',
    'dpkg-query -W -f="${Package} ${db:Status-Abbrev}\\n" docker.io docker-compose sqlite3 acl',
    'dpkg --audit',
    'systemctl is-active docker',
  ].join('; ');
  return (await simulatorExec(sim.container, ['sh', '-c', script])).stdout;
}

beforeAll(async () => {
  env = await testEnv();
  keys = makeKeyPair();
  fleet = await startSimulators(2, { authorizedKey: keys.publicKey, aptCache: true });
  [a, b] = fleet.simulators as [Simulator, Simulator];
});

afterAll(async () => {
  await fleet?.cleanup();
  await env?.teardown();
});

describe('durability', () => {
  it('a worker killed with SIGKILL mid-provision is replaced and the run completes as a clean run would', async () => {
    const queue = 'kill-test';
    const spec = writeSpec(keys, [a], {}, 'kill.yaml');
    let worker = workerProcess(queue);
    const started = await cliFor(env, queue)(spec, '--no-wait', 'provision');
    expect(started.code).toBe(0);
    const { workflowId } = JSON.parse(started.stdout) as { workflowId: string };
    const handle = env.client.workflow.getHandle(workflowId);

    // The id reads as operation, host and start time; a second provision of the host is refused while this one runs.
    expect(workflowId).toMatch(new RegExp(`^provision/${hostName(a)}/\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`));
    const second = await steward(['--spec', spec, '--address', env.address, '--task-queue', queue, 'provision']);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`a provision of ${hostName(a)} is already running (workflow ${workflowId})`);

    // Kill the worker while apt installs Docker on the host.
    await waitFor('the Docker install to start', async () => {
      const p = await handle.query<HostProgress>('progress').catch(() => undefined);
      return p?.steps.find((s) => s.step === 'ensureDockerEngine' && s.status === 'running');
    });
    await new Promise((r) => setTimeout(r, 3_000));
    worker.kill('SIGKILL');
    await new Promise((r) => worker.once('exit', r));

    worker = workerProcess(queue);
    try {
      const report = (await handle.result()) as HostReport;
      expect(report.status).toBe('completed');
      const history = await handle.fetchHistory();
      // The workflow retries the step itself: the killed attempt timed out on its heartbeat and a new one ran.
      const events = history.events ?? [];
      const scheduled = new Set(
        events
          .filter((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'ensureDockerEngine')
          .map((e) => String(e.eventId)),
      );
      expect(scheduled.size).toBeGreaterThan(1);
      const lost = events.filter(
        (e) =>
          scheduled.has(String(e.activityTaskTimedOutEventAttributes?.scheduledEventId)) &&
          e.activityTaskTimedOutEventAttributes?.failure?.timeoutFailureInfo?.timeoutType ===
            proto.temporal.api.enums.v1.TimeoutType.TIMEOUT_TYPE_HEARTBEAT,
      );
      expect(lost.length).toBeGreaterThanOrEqual(1);

      // A second run finds nothing to do: the interrupted one left the host converged.
      const again = await cliFor(env, queue)(spec, 'provision');
      expect(again.code).toBe(0);
      expect(again.doc?.hosts[0]?.changes).toEqual([]);
    } finally {
      worker.kill('SIGTERM');
      await new Promise((r) => worker.once('exit', r));
    }
  });

  it('provisions several hosts as one fleet workflow, and status lists the runs', async () => {
    const queue = 'fleet-test';
    const worker = await startWorker(env, queue);
    try {
      const spec = writeSpec(keys, [a, b], {}, 'fleet.yaml');
      const r = await cliFor(env, queue)(spec, 'provision');
      expect(r.code).toBe(0);
      const doc = r.doc!;
      expect(doc.workflowId).toMatch(/^provision\/fleet\//);
      expect(doc.hosts.map((h) => h.host)).toEqual([hostName(a), hostName(b)]);
      expect(doc.hosts[0]?.changes).toEqual([]);
      expect(doc.hosts[1]?.changes.length).toBeGreaterThan(5);
      expect(await hostState(a)).toBe(await hostState(b));

      const status = await waitFor('visibility to show the outcome', async () => {
        const s = await steward(['--address', env.address, '--json', 'status', '--host', hostName(b)]);
        const runs = (JSON.parse(s.stdout) as { runs: RunSummary[] }).runs;
        return runs[0]?.outcome === 'completed' ? runs : undefined;
      });
      expect(status[0]).toMatchObject({
        workflowId: expect.stringMatching(new RegExp(`^provision/${hostName(b)}/\\d{4}-`)),
        host: hostName(b),
        operation: 'provision',
        outcome: 'completed',
        changes: doc.hosts[1]?.changes.length,
        status: 'COMPLETED',
      });
    } finally {
      await worker.stop();
    }
  });

  it('three workers share a 50-entry drift plan; one killed with SIGKILL, the plan completes with each host once', async () => {
    const queue = 'workers-test';
    // 25 entries on each provisioned simulator; fleets run 10 hosts at a time (the default), so no sshd sees more
    // handshakes at once than its MaxStartups takes.
    const sims = Array.from({ length: 50 }, (_, i) => {
      const sim = i % 2 === 0 ? a : b;
      return { ...sim, name: `steward-vps-entry-${String(i).padStart(2, '0')}` };
    });
    const spec = writeSpec(keys, sims, {}, 'workers.yaml');
    const workers = [workerProcess(queue), workerProcess(queue), workerProcess(queue)];
    const exited = workers.map((w) => new Promise((r) => w.once('exit', r)));
    try {
      const identities = await waitFor('three workers polling', async () => {
        const ids = await pollers(queue);
        return ids.length >= 3 ? ids : undefined;
      });
      const victim = workers[0]!;
      const victimIdentity = identities.find((id) => id.startsWith(`${victim.pid}@`));
      expect(victimIdentity).toBeDefined();

      // Started without waiting: a CLI following the run would be following it through the local worker it handed the
      // command to, which may be the one killed (the run goes on; that CLI says so and exits 1).
      const started = await cliFor(env, queue)(spec, '--no-wait', 'drift', '--no-audit');
      expect(started.code, started.stderr).toBe(0);
      const { workflowId } = JSON.parse(started.stdout) as { workflowId: string };
      const plan = env.client.workflow.getHandle(workflowId).result() as Promise<{
        status: string;
        hosts: { host: string; status: string }[];
      }>;
      // Kill the first worker once it is running part of the plan: a host run it has started tasks of.
      await waitFor(
        'the first worker to take part in the plan',
        async () => {
          for await (const run of env.client.workflow.list({
            query: `TaskQueue = '${queue}' AND WorkflowType = 'driftHost' AND ExecutionStatus = 'Running'`,
          })) {
            if (await touchedBy(run.workflowId, run.runId, victimIdentity!)) return true;
          }
          return undefined;
        },
        120_000,
      );
      victim.kill('SIGKILL');
      await exited[0];

      const r = await plan;
      const names = sims.map((s) => s.name.replace(/^steward-vps-/, ''));
      expect(r.hosts.map((h) => h.host).sort()).toEqual(names);
      expect(r.hosts.every((h) => h.status === 'completed')).toBe(true);

      // Each host planned once: one run per host, completed.
      const runs: { host: string; status: string; workflowId: string; runId: string }[] = [];
      for await (const run of env.client.workflow.list({
        query: `TaskQueue = '${queue}' AND WorkflowType = 'driftHost'`,
      })) {
        runs.push({
          host: run.workflowId.split('/')[1]!,
          status: run.status.name,
          workflowId: run.workflowId,
          runId: run.runId,
        });
      }
      expect(runs.map((x) => x.host).sort()).toEqual(names);
      expect(runs.every((x) => x.status === 'COMPLETED')).toBe(true);
    } finally {
      for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGTERM');
      await Promise.all(exited);
    }
  });

  it('a rollout in waves halts at the wave with a failed host, later waves untouched; resume completes it, abort ends it', async () => {
    const queue = 'waves-test';
    // Five entries, waves of 1, 2, 2: the third (second wave) lives on simulator b, which refuses every login.
    const entries = ['w1', 'w2', 'w3', 'w4', 'w5'].map((n, i) => ({ ...(i === 2 ? b : a), name: `steward-vps-${n}` }));
    const spec = writeSpec(keys, entries, {}, 'waves.yaml');
    const cli = cliFor(env, queue);
    const keysOn = (from: string, to: string) =>
      simulatorExec(b.container, [
        'sh',
        '-c',
        `for d in /root /home/*; do [ -f $d/.ssh/${from} ] && mv $d/.ssh/${from} $d/.ssh/${to}; done; true`,
      ]);
    const runsOn = async (host: string): Promise<number> => {
      const { count } = await env.client.workflow.count(`${StewardHost.name} = '${host}'`);
      return count;
    };
    const worker = await startWorker(env, queue);
    try {
      await keysOn('authorized_keys', 'authorized_keys.off');
      const halted = await cli(spec, 'drift', '--no-audit', '--waves', '1,2,2');
      expect(halted.code, halted.stderr).toBe(1);
      const doc = halted.doc as ResultDocument;
      expect(doc).toMatchObject({
        status: 'failed',
        halted: { wave: 2, waves: 3, failed: ['w3'] },
        untouched: ['w4', 'w5'],
      });
      expect(doc.hosts.map((h) => [h.host, h.status])).toEqual([
        ['w1', 'completed'],
        ['w2', 'completed'],
        ['w3', 'failed'],
      ]);
      expect([await runsOn('w4'), await runsOn('w5')]).toEqual([0, 0]);
      // A host's own run (completed) is no rollout to resume.
      const notRollout = await cli(spec, 'resume', `drift/w1/${doc.workflowId.split('/')[2]}`);
      expect(notRollout.code).toBe(1);

      // The fix, then resume: w3 again, then the third wave.
      await keysOn('authorized_keys.off', 'authorized_keys');
      const resumed = await cli(spec, 'resume', doc.workflowId);
      expect(resumed.code, resumed.stderr).toBe(0);
      expect(resumed.doc?.hosts.map((h) => [h.host, h.status])).toEqual(
        ['w1', 'w2', 'w3', 'w4', 'w5'].map((h) => [h, 'completed']),
      );
      expect(resumed.doc?.untouched).toBeUndefined();
      expect([await runsOn('w4'), await runsOn('w5')]).toEqual([1, 1]);
      const again = await cli(spec, 'resume', doc.workflowId);
      expect(again.code).toBe(1);
      expect(again.stderr).toContain('is not a running rollout in waves');

      // Halted again (w3 now answers with another key than the one pinned: the worker's pooled session to b is of no
      // use), then aborted: failed, the third wave untouched, the reason recorded.
      const stranger = makeKeyPair().publicKey.split(' ').slice(0, 2).join(' ');
      const misPinned = writeSpec(
        keys,
        entries.map((e, i) => (i === 2 ? { ...e, hostKey: stranger } : e)),
        {},
        'waves-mispinned.yaml',
      );
      const second = await cli(misPinned, 'drift', '--no-audit', '--waves', '1,2,2');
      expect(second.doc?.halted).toMatchObject({ wave: 2, failed: ['w3'] });
      const aborted = await cli(misPinned, 'abort', second.doc!.workflowId, '--reason', 'maintenance window over');
      expect(aborted.code).toBe(1);
      expect(aborted.doc).toMatchObject({
        status: 'failed',
        untouched: ['w4', 'w5'],
        stopped: 'aborted at wave 2 of 3: maintenance window over',
      });
      expect([await runsOn('w4'), await runsOn('w5')]).toEqual([1, 1]);
    } finally {
      await keysOn('authorized_keys.off', 'authorized_keys');
      await worker.stop();
    }
  }, 300_000);
});
