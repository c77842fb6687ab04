/** Shared bench setup: a simulator with a key made at run time, and figures printed as a table. */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import {
  ensureSimulatorImage,
  ownerLabels,
  removeOrphanedSimulators,
  removeSimulator,
  startSimulator,
  type Simulator,
} from '../client/dev/simulator';
import { findFreePort, resolveTemporalBinary, startDevServer, stopProcess } from '../client/dev/temporal';
import { encryptingDataConverter } from '../codec/aes-gcm';
import { generateKey, KEY_FILE_ENV, KEYS_ENV, keyRingFromEnv } from '../codec/keys';
import type { ResultDocument } from '../client/operation';
import type { HostReport } from '../model/report';
import { StewardHost, StewardOperation } from '../model/search-attributes';
import { steward, STEWARD_BIN } from '../test/support/cli';
import { makeKeyPair, type KeyPair } from '../test/support/fixtures';
import { TASK_QUEUE } from '../model/ids';
import { createWorker } from '../workers/worker';

export async function withSimulators<T>(
  count: number,
  body: (sims: Simulator[], keys: KeyPair) => Promise<T>,
): Promise<T> {
  const keys = makeKeyPair();
  await ensureSimulatorImage();
  // A killed bench or test run's simulators would share the CPU the figures are about.
  const orphans = await removeOrphanedSimulators();
  if (orphans.length > 0) console.log(`removed ${orphans.length} simulators a killed run left`);
  const sims = await Promise.all(
    Array.from({ length: count }, () => startSimulator({ authorizedKey: keys.publicKey, labels: ownerLabels() })),
  );
  try {
    return await body(sims, keys);
  } finally {
    await Promise.all(sims.map((s) => removeSimulator(s.container)));
  }
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Prints `name  value unit  (target …, ratio …)`. */
export function report(name: string, value: number, unit: string, target?: number): void {
  const t =
    target === undefined
      ? ''
      : `  target ≤ ${target} ${unit}, ${(value / target).toFixed(2)}× of target ${value <= target ? 'MET' : 'MISSED'}`;
  console.log(`${name.padEnd(44)} ${value.toFixed(unit === 'ms' ? 2 : 3).padStart(9)} ${unit}${t}`);
}

/** Runs `body` with a local dev server and an in-process worker; stops both afterwards. */
export async function withTemporal<T>(body: (address: string) => Promise<T>): Promise<T> {
  if (!resolveTemporalBinary()) throw new Error('no temporal CLI: run scripts/setup.sh first');
  Runtime.install({ logger: new DefaultLogger('WARN') });
  // Payloads are encrypted as in production: a throwaway codec key for the worker here and the CLI processes.
  if (!process.env[KEYS_ENV] && !process.env[KEY_FILE_ENV]) {
    const key = generateKey();
    process.env[KEYS_ENV] = `${key.id}=${key.key.toString('base64')}`;
  }
  const server = await startDevServer({ port: await findFreePort() });
  const { worker, pool, connection } = await createWorker({ address: server.address, namespace: 'default' });
  // A worker that stops on its own must not hide why: its failure is printed, the body's error still thrown.
  const stopped = worker.run().then(
    () => undefined,
    (err: unknown) => err,
  );
  try {
    return await body(server.address);
  } finally {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    const failure = await stopped;
    if (failure) console.error('the bench worker stopped with:', failure);
    await pool.closeAll();
    await connection.close();
    await stopProcess(server.pid);
  }
}

/**
 * Seconds one `steward --json <args>` takes end to end. The worker may run in this process, so the CLI runs as a
 * child without blocking the event loop.
 */
export async function timeCli(args: readonly string[]): Promise<number> {
  const s = performance.now();
  const r = await steward(['--json', ...args]);
  if (r.code !== 0) throw new Error(`steward ${args.join(' ')} failed: ${r.stderr || r.stdout}`);
  return (performance.now() - s) / 1000;
}

/** `steward --json <args>` timed end to end, with its result document. Exit 2 (drift found) counts as success. */
export async function cliRun(args: readonly string[]): Promise<{ seconds: number; doc: ResultDocument; code: number }> {
  const s = performance.now();
  const r = await steward(['--json', ...args]);
  const seconds = (performance.now() - s) / 1000;
  if (r.code !== 0 && r.code !== 2)
    throw new Error(`steward ${args.join(' ')} exited ${r.code}: ${r.stderr || r.stdout}`);
  return { seconds, doc: JSON.parse(r.stdout) as ResultDocument, code: r.code };
}

/**
 * `count` host entries named bench-00…, round-robin over `sims` (all on one when given one), for fleet figures on
 * fewer simulators than entries.
 */
export function aliasHosts(sims: Simulator | readonly Simulator[], keys: KeyPair, count: number) {
  const list = Array.isArray(sims) ? sims : [sims as Simulator];
  return Array.from({ length: count }, (_, i) => {
    const sim = list[i % list.length]!;
    return {
      name: `bench-${String(i).padStart(count > 100 ? 3 : 2, '0')}`,
      address: sim.address,
      port: sim.port,
      user: sim.user,
      identityFile: keys.privateKeyPath,
      hostKey: sim.hostKey,
    };
  });
}

/** A drift plan of the spec's first host, timed as the workflow's wall time from a client (start → result). */
export interface DriftPlanner {
  /** `audit`: false skips OpenClaw's audit, true reuses the host's cached one when current, 'fresh' runs it now. */
  plan(audit: boolean | 'fresh'): Promise<{ seconds: number; report: HostReport }>;
  close(): Promise<void>;
}

/** @throws when the planned host shows drift: a bench measures converged hosts only. */
export async function driftPlanner(address: string, specFile: string): Promise<DriftPlanner> {
  const ring = await keyRingFromEnv();
  const client = new Client({
    connection: await Connection.connect({ address }),
    dataConverter: encryptingDataConverter(ring!),
  });
  const { loadSpec } = await import('../client/spec-file');
  const { spec } = await loadSpec(specFile);
  const host = spec.hosts[0]!.name;
  return {
    async plan(audit) {
      const s = performance.now();
      const report = (await client.workflow.execute('driftHost', {
        taskQueue: TASK_QUEUE,
        workflowId: `drift/${host}/bench-${Date.now()}`,
        args: [
          { spec, host, mode: 'plan', audit: audit !== false, ...(audit === 'fresh' ? { auditMaxAgeMs: 0 } : {}) },
        ],
        typedSearchAttributes: [
          { key: StewardHost, value: host },
          { key: StewardOperation, value: 'drift' },
        ],
      })) as HostReport;
      if (report.changes.length > 0) throw new Error(`the converged host drifted: ${JSON.stringify(report.changes)}`);
      return { seconds: (performance.now() - s) / 1000, report };
    },
    close: () => client.connection.close(),
  };
}

/**
 * CPU seconds a container has used so far, from its cgroup (v1 cpuacct or v2 cpu.stat); undefined when neither is
 * readable. Shows how much of a fleet figure is the simulator's own work, which 50 real hosts would do in parallel.
 */
export function containerCpuSeconds(container: string): number | undefined {
  const id = execFileSync('docker', ['inspect', '-f', '{{.Id}}', container], { encoding: 'utf8' }).trim();
  const v1 = `/sys/fs/cgroup/cpuacct/docker/${id}/cpuacct.usage`;
  if (existsSync(v1)) return Number(readFileSync(v1, 'utf8')) / 1e9;
  const v2 = `/sys/fs/cgroup/system.slice/docker-${id}.scope/cpu.stat`;
  if (!existsSync(v2)) return undefined;
  const usec = /^usage_usec (\d+)$/m.exec(readFileSync(v2, 'utf8'))?.[1];
  return usec === undefined ? undefined : Number(usec) / 1e6;
}

/**
 * Waits until the container is quiet: under `share` of one core over each `windowMs`, for at most `maxMs`. A freshly
 * deployed stack keeps starting for a while (the gateway, memory), and its CPU is taken from every figure measured
 * beside it on a small machine. Returns the seconds waited, or undefined when the cgroup cannot be read or the
 * container never settled.
 */
export async function untilSettled(
  container: string,
  { share = 0.1, windowMs = 2_000, maxMs = 120_000 } = {},
): Promise<number | undefined> {
  const start = Date.now();
  while (Date.now() - start < maxMs) {
    const before = containerCpuSeconds(container);
    if (before === undefined) return undefined;
    await new Promise((r) => setTimeout(r, windowMs));
    const used = (containerCpuSeconds(container) ?? Infinity) - before;
    if (used / (windowMs / 1000) < share) return (Date.now() - start) / 1000;
  }
  return undefined;
}

/** CPU seconds (user + system) this process has used so far. */
export function processCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Resident set of a process in MB from /proc: `VmRSS` now, or `VmHWM`, its peak so far; 0 once it has exited. */
export function procRssMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Starts `steward worker` as a process of its own on a task queue nobody else polls, runs the CLI `args` on that
 * queue with every host at once (a warm-up run, then the measured one), and reads the worker's resident set: the peak
 * sampled during the measured run, and its lifetime peak (start and warm-up run included). The kernel's VmHWM can
 * miss a short peak that the sampler saw (it is updated lazily), so the lifetime figure is the larger of the two.
 */
export async function fleetWorkerRss(
  address: string,
  specFile: string,
  command: readonly string[],
): Promise<{ fleetPeakMb: number; lifetimePeakMb: number }> {
  const queue = `bench-rss-${process.pid}`;
  const worker = spawn(process.execPath, [STEWARD_BIN, '--address', address, '--task-queue', queue, 'worker'], {
    stdio: 'ignore',
  });
  const pid = worker.pid!;
  try {
    const run = () =>
      cliRun(['--spec', specFile, '--address', address, '--task-queue', queue, ...command, '--concurrency', '1000']);
    await run();
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, procRssMb(pid, 'VmRSS'))), 50);
    try {
      await run();
    } finally {
      clearInterval(sampler);
    }
    return { fleetPeakMb: peak, lifetimePeakMb: Math.max(peak, procRssMb(pid, 'VmHWM')) };
  } finally {
    const exited = once(worker, 'exit');
    worker.kill('SIGTERM');
    await exited;
  }
}
