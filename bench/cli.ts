/**
 * The CLI as an operator times it: whole processes (`node bin/steward.js …`), median of N runs (default 7).
 * - Start-up: `steward --help` and `steward schema` (no server, no SDK loaded), against `node -e 0` on the same
 *   machine in the same run, so the figure says what steward adds to Node's own start.
 * - `steward drift` with defaults on a converged simulator (provisioned, hardened, deployed, and quiet again after the
 *   new stack's start-up): one host, every managed resource, the policy and OpenClaw's audit reused from the host's
 *   cache. As an operator runs it, with `steward worker` on the same machine (the CLI hands the command to it); and
 *   with no worker of its build there (the CLI loads the Temporal client and connects itself), `drift --audit` (the
 *   audit run now) and `--no-audit` for comparison.
 * Targets: `--help` ≤ 0.3 s; `drift` ≤ 0.8 s. Build the compiled CLI first (scripts/setup.sh does); the bench says
 * whether it ran compiled or from the TypeScript sources.
 *   npx tsx bench/cli.ts [runs]
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { waitForWorker } from '../client/commands/dev';
import { builtAndCurrent } from '../bin/build-freshness.js';
import { writeSpec } from '../test/support/fixtures';
import type { SpecInput } from '../model/schema';
import { STEWARD_BIN } from '../test/support/cli';
import { cliRun, median, report, untilSettled, withSimulators, withTemporal } from './support';

const RUNS = Number(process.argv[2] ?? 7);
const BENCH: Partial<SpecInput> = { harden: { confirmSeconds: 30 }, proxy: { domain: 'bench.steward.test' } };

/** Seconds `node argv…` takes from spawn to exit (output discarded); throws on a non-zero exit. */
function timeProcess(argv: readonly string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = performance.now();
    const child = spawn(process.execPath, argv, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve((performance.now() - s) / 1000) : reject(new Error(`${argv.join(' ')} exited ${code}`)),
    );
  });
}

interface Timing {
  readonly median: number;
  readonly runs: readonly number[];
}

async function medianOf(runs: number, once: () => Promise<number>): Promise<Timing> {
  await once(); // warm: the page cache, not steward
  const xs: number[] = [];
  for (let i = 0; i < runs; i++) xs.push(await once());
  return { median: median(xs), runs: xs };
}

/** The median against its target, and every run's figure: this machine's speed varies from minute to minute. */
function show(label: string, t: Timing, target?: number): void {
  report(`${label}, median`, t.median, 's', target);
  console.log(`    runs: ${t.runs.map((x) => x.toFixed(3)).join(' ')}`);
}

const compiled = builtAndCurrent(new URL('../', import.meta.url));
console.log(`CLI: ${compiled ? 'compiled (dist/cli)' : 'from the TypeScript sources (run scripts/setup.sh to build)'}`);
const node = await medianOf(RUNS, () => timeProcess(['-e', '0']));
const help = await medianOf(RUNS, () => timeProcess([STEWARD_BIN, '--help']));
const schema = await medianOf(RUNS, () => timeProcess([STEWARD_BIN, 'schema']));
show('node -e 0 (Node itself)', node);
show('steward --help', help, 0.3);
show('steward schema', schema);
console.log(`  steward's own start-up over Node's: ${((help.median - node.median) * 1000).toFixed(0)} ms`);

await withTemporal((address) =>
  withSimulators(1, async ([sim], keys) => {
    const spec = writeSpec(keys, [sim!], BENCH);
    const base = ['--spec', spec, '--address', address];
    for (const op of ['provision', 'harden', 'deploy']) {
      const r = await cliRun([...base, op]);
      if (r.code !== 0) throw new Error(`${op} failed`);
    }
    const drift = async (...extra: string[]) => {
      const r = await cliRun([...base, 'drift', ...extra]);
      if (r.code !== 0) throw new Error(`the converged host drifted: ${JSON.stringify(r.doc.hosts[0]?.changes)}`);
      return r;
    };
    await drift(); // the first drift after a deploy may run the audit (and fill the host's cache)
    // A converged host is a settled one: the new stack's start-up work is not drift's.
    const waited = await untilSettled(sim!.container);
    console.log(
      waited === undefined
        ? "the simulator's CPU could not be read, or it never went quiet: figures measured beside its work"
        : `the simulator went quiet (under 10% of a core over 2 s) ${waited.toFixed(0)} s after the first drift`,
    );
    const cached = (await drift()).doc.hosts[0]!.findings.some((f) => f.id === 'openclaw.audit.cached');
    const plain = await medianOf(RUNS, async () => (await drift()).seconds);
    const audited = await medianOf(Math.min(RUNS, 3), async () => (await drift('--audit')).seconds);
    const noAudit = await medianOf(RUNS, async () => (await drift('--no-audit')).seconds);

    // The operator's setup: `steward worker` runs on this machine (`steward dev up` starts one; the README's real-host
    // sequence too), and the CLI hands the command to it over its socket (client/local-worker.ts).
    const queue = `bench-cli-${process.pid}`;
    const worker = spawn(process.execPath, [STEWARD_BIN, '--address', address, '--task-queue', queue, 'worker'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let workerLog = '';
    worker.stderr!.on('data', (d: Buffer) => (workerLog += d.toString()));
    let local: Timing;
    try {
      await waitForWorker({ address, namespace: 'default', taskQueue: queue }, 120_000);
      const onQueue = ['--spec', spec, '--address', address, '--task-queue', queue];
      local = await medianOf(RUNS, async () => {
        const r = await cliRun([...onQueue, 'drift']);
        if (r.code !== 0) throw new Error(`the converged host drifted: ${JSON.stringify(r.doc.hosts[0]?.changes)}`);
        return r.seconds;
      });
    } finally {
      worker.kill('SIGTERM');
      await once(worker, 'exit');
    }
    const handed = workerLog.match(/steward worker: drift /g)?.length ?? 0;

    console.log(`drift of one converged host, the audit ${cached ? 'reused from the host cache' : 'NOT reused'}:`);
    show('steward drift, via the local worker', local, 0.8);
    console.log(`    the worker took ${handed} of ${RUNS + 1} runs (one of them the warm-up)`);
    show('steward drift, the CLI connecting itself', plain);
    show('steward drift --audit (audit run now)', audited);
    show('steward drift --no-audit', noAudit);
  }),
);
