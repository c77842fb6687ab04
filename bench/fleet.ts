/**
 * Fleet drift plans with several workers. 50, 100 and 200 host entries (bench-000…) spread over four provisioned simulators (so
 * no one sshd's MaxStartups is the limit), planned by `steward drift --no-audit` end to end through the CLI with 1 and
 * with 3 `steward worker` processes on one task queue: cold (workers just started, no pooled SSH session) and warm
 * (the same workers again). Prints each plan's time, the 3-worker/1-worker ratio, and every worker's peak resident
 * set (target ≤ 400 MB each). Each entry is a host of its own to steward (own workflow, own SSH session, full
 * observation); entries share a simulator because this machine cannot run 200 Debian VMs.
 *   npx tsx bench/fleet.ts [entries, default "50,100,200"] [concurrency, default 32] [worker counts, default "1,3"]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { findFreePort, resolveTemporalBinary, startDevServer, stopProcess } from '../client/dev/temporal';
import { generateKey, KEY_FILE_ENV, KEYS_ENV } from '../codec/keys';
import type { SpecInput } from '../model/schema';
import { steward, STEWARD_BIN } from '../test/support/cli';
import { writeSpec } from '../test/support/fixtures';
import { aliasHosts, cliRun, procRssMb, report, withSimulators } from './support';

/** Positive whole numbers from a comma-separated argument; anything else ends the bench naming the argument. */
function counts(name: string, value: string): number[] {
  const list = value.split(',').map(Number);
  if (list.some((n) => !Number.isInteger(n) || n < 1)) {
    console.error(`bench/fleet: ${name} ${JSON.stringify(value)}: expected positive whole numbers, comma-separated`);
    process.exit(2);
  }
  return list;
}
const SIZES = counts('entries', process.argv[2] ?? '50,100,200');
const [CONCURRENCY] = counts('concurrency', process.argv[3] ?? '32');
if (process.argv[3]?.includes(',')) {
  console.error(`bench/fleet: concurrency ${JSON.stringify(process.argv[3])}: expected one number`);
  process.exit(2);
}
const WORKER_COUNTS = counts('worker counts', process.argv[4] ?? '1,3');
const SIMULATORS = 4;
const BENCH: Partial<SpecInput> = { firewall: { sshRateLimit: 1000 }, proxy: { domain: 'bench.steward.test' } };

interface Workers {
  readonly procs: ChildProcess[];
  /** Peak VmRSS sampled per worker since the last `resetPeaks`, MB. */
  readonly peaks: number[];
  resetPeaks(): void;
  stop(): Promise<void>;
}

/** `n` fresh `steward worker` processes on `queue`, started from one prebuilt workflow bundle. */
async function startWorkers(address: string, queue: string, n: number, bundle: string): Promise<Workers> {
  const procs = Array.from({ length: n }, () =>
    spawn(process.execPath, [STEWARD_BIN, '--address', address, '--task-queue', queue, 'worker'], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env: { ...process.env, STEWARD_WORKFLOW_BUNDLE: bundle },
    }),
  );
  const peaks = procs.map(() => 0);
  const sampler = setInterval(() => {
    procs.forEach((p, i) => (peaks[i] = Math.max(peaks[i]!, procRssMb(p.pid!, 'VmRSS'))));
  }, 50);
  const stop = async () => {
    clearInterval(sampler);
    await Promise.all(
      procs.map(async (p) => {
        if (p.exitCode !== null || p.signalCode !== null) return;
        const exited = once(p, 'exit');
        p.kill('SIGTERM');
        await exited;
      }),
    );
  };
  // Ready when the server has seen each of them poll for activities (a plan then finds them all).
  const connection = await Connection.connect({ address });
  try {
    for (let seen = 0; seen < n; await new Promise((r) => setTimeout(r, 200))) {
      const q = await connection.workflowService.describeTaskQueue({
        namespace: 'default',
        taskQueue: { name: queue },
        taskQueueType: proto.temporal.api.enums.v1.TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
      });
      seen = new Set((q.pollers ?? []).map((p) => p.identity)).size;
      if (procs.some((p) => p.exitCode !== null)) throw new Error('a bench worker exited at start');
    }
  } catch (err) {
    await stop();
    throw err;
  } finally {
    await connection.close();
  }
  return { procs, peaks, resetPeaks: () => peaks.fill(0), stop };
}

if (!resolveTemporalBinary()) throw new Error('no temporal CLI: run scripts/setup.sh first');
if (!process.env[KEYS_ENV] && !process.env[KEY_FILE_ENV]) {
  const key = generateKey();
  process.env[KEYS_ENV] = `${key.id}=${key.key.toString('base64')}`;
}
const server = await startDevServer({ port: await findFreePort() });
try {
  const bundleFile = `${process.cwd()}/.steward/bench-fleet-workflows.js`;
  const b = await steward(['bundle', '--out', bundleFile]);
  if (b.code !== 0) throw new Error(`steward bundle failed: ${b.stderr}`);

  await withSimulators(SIMULATORS, async (sims, keys) => {
    const base = writeSpec(keys, sims, BENCH, 'sims.yaml');
    const setup = await startWorkers(server.address, 'bench-fleet-setup', 1, bundleFile);
    try {
      const p = await cliRun([
        '--spec',
        base,
        '--address',
        server.address,
        '--task-queue',
        'bench-fleet-setup',
        'provision',
      ]);
      console.log(`provisioned ${SIMULATORS} simulators in ${p.seconds.toFixed(1)} s`);
    } finally {
      await setup.stop();
    }

    const rows: { n: number; workers: number; cold: number; warm: number; peaks: number[] }[] = [];
    for (const n of SIZES) {
      const spec = writeSpec(
        keys,
        [],
        { ...BENCH, hosts: aliasHosts(sims, keys, n) } as Partial<SpecInput>,
        `fleet-${n}.yaml`,
      );
      for (const w of WORKER_COUNTS) {
        const queue = `bench-fleet-${n}-${w}`;
        const workers = await startWorkers(server.address, queue, w, bundleFile);
        try {
          const plan = async () => {
            const r = await cliRun([
              '--spec',
              spec,
              '--address',
              server.address,
              '--task-queue',
              queue,
              'drift',
              '--no-audit',
              '--concurrency',
              String(CONCURRENCY),
            ]);
            const hosts = r.doc.hosts.length;
            const failed = r.doc.hosts.filter((h) => h.status !== 'completed').length;
            if (hosts !== n || failed > 0) throw new Error(`plan of ${n}: ${hosts} hosts reported, ${failed} failed`);
            return r.seconds;
          };
          const cold = await plan();
          const warm = await plan();
          const peaks = workers.procs.map((p, i) => Math.max(workers.peaks[i]!, procRssMb(p.pid!, 'VmHWM')));
          rows.push({ n, workers: w, cold, warm, peaks });
          console.log(
            `${n} entries, ${w} worker(s): cold ${cold.toFixed(1)} s, warm ${warm.toFixed(1)} s, ` +
              `peak RSS ${peaks.map((m) => m.toFixed(0)).join('/')} MB`,
          );
        } finally {
          await workers.stop();
        }
      }
    }

    console.log(`\nsteward drift --no-audit, ${SIMULATORS} simulators, --concurrency ${CONCURRENCY}`);
    for (const n of SIZES) {
      for (const r of rows.filter((row) => row.n === n)) {
        report(`${n} entries, ${r.workers} worker(s), cold`, r.cold, 's');
        report(`${n} entries, ${r.workers} worker(s), warm`, r.warm, 's');
      }
      const one = rows.find((r) => r.n === n && r.workers === 1);
      const three = rows.find((r) => r.n === n && r.workers === 3);
      if (one && three)
        console.log(
          `${n} entries: 3 workers / 1 worker = ${(three.cold / one.cold).toFixed(2)} cold, ` +
            `${(three.warm / one.warm).toFixed(2)} warm (below 1: faster)`,
        );
    }
    const peak = Math.max(...rows.flatMap((r) => r.peaks));
    report('worker peak RSS, any run', peak, 'MB', 400);
  });
} finally {
  await stopProcess(server.pid);
}
