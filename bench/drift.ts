/**
 * Drift plan time. One converged host (provisioned, hardened, deployed simulator): the plan over every managed
 * resource, measured as the workflow's wall time from the client (start → result) and end to end through the CLI;
 * with and without OpenClaw's security audit (run now, and reused from the host's cache). Then a fleet of 50 host
 * entries.
 * Targets: one host ≤ 0.75 s (the 10× under `ansible-playbook --check` at 7.6 s); 50 hosts ≤ 15 s.
 *
 * The fleet's 50 entries all point at the one converged simulator: this machine (2 cores) cannot run 50 OpenClaw
 * stacks. Each entry is a separate host to steward (own workflow, own SSH session, full check batch), so the figure
 * is steward's fan-out over 50 plans, 10 at a time (the one sshd's MaxStartups), against one sshd; the bench spec raises the firewall's SSH rate
 * limit so 50 sessions from one source are not dropped.
 *   npx tsx bench/drift.ts [runs]
 */
import { cpus } from 'node:os';
import type { Simulator } from '../client/dev/simulator';
import { fleetInput } from '../client/operation';
import { loadSpec } from '../client/spec-file';
import type { SpecInput } from '../model/schema';
import { writeSpec, type KeyPair } from '../test/support/fixtures';
import {
  aliasHosts,
  cliRun,
  containerCpuSeconds,
  driftPlanner,
  fleetWorkerRss,
  median,
  processCpuSeconds,
  report,
  withSimulators,
  withTemporal,
} from './support';

const RUNS = Number(process.argv[2] ?? 7);
const FLEET = 50;
/** Hosts planned at once; sshd drops handshakes beyond its MaxStartups (10), and all 50 entries share one sshd. */
const CONCURRENCY = 10;
const BENCH: Partial<SpecInput> = {
  harden: { confirmSeconds: 30 },
  firewall: { sshRateLimit: 1000 },
  proxy: { domain: 'bench.steward.test' },
};

function fleetSpec(keys: KeyPair, sim: Simulator): string {
  return writeSpec(keys, [], { ...BENCH, hosts: aliasHosts(sim, keys, FLEET) } as Partial<SpecInput>, 'fleet.yaml');
}

await withTemporal((address) =>
  withSimulators(1, async ([sim], keys) => {
    const file = writeSpec(keys, [sim!], BENCH);
    const base = ['--spec', file, '--address', address];
    for (const op of ['provision', 'harden', 'deploy']) await cliRun([...base, op]);

    const { plan, close } = await driftPlanner(address, file);
    await plan(false); // warm: SSH session and workflow bundle
    const fast: number[] = [];
    let checks = '';
    for (let i = 0; i < RUNS; i++) {
      const r = await plan(false);
      fast.push(r.seconds);
      checks = r.report.findings.find((f) => f.id === 'drift.checked')?.message ?? '';
    }
    const audited: number[] = [];
    for (let i = 0; i < 3; i++) audited.push((await plan('fresh')).seconds);
    const reused: number[] = [];
    for (let i = 0; i < 3; i++) reused.push((await plan(true)).seconds);
    const viaCli: number[] = [];
    for (let i = 0; i < 3; i++) viaCli.push((await cliRun([...base, 'drift', '--no-audit'])).seconds);

    const fleetFile = fleetSpec(keys, sim!);
    const fleet: number[] = [];
    const simCpu0 = containerCpuSeconds(sim!.container);
    const ownCpu0 = processCpuSeconds();
    for (let i = 0; i < 2; i++) {
      const r = await cliRun([
        '--spec',
        fleetFile,
        '--address',
        address,
        'drift',
        '--no-audit',
        '--concurrency',
        String(CONCURRENCY),
      ]);
      if (r.doc.hosts.length !== FLEET) throw new Error(`fleet plan covered ${r.doc.hosts.length} hosts`);
      fleet.push(r.seconds);
    }
    const simCpu = simCpu0 === undefined ? undefined : (containerCpuSeconds(sim!.container)! - simCpu0) / 2;
    const ownCpu = (processCpuSeconds() - ownCpu0) / 2;
    await close();

    // The worker's footprint with 50 concurrent host workflows: a worker process of its own, only the fleet on it.
    const rss = await fleetWorkerRss(address, fleetFile, ['drift', '--no-audit']);

    console.log(`drift plan of a converged simulator (provisioned, hardened, deployed): ${checks}`);
    report('plan, workflow wall time, median', median(fast), 's', 0.75);
    report('plan, workflow wall time, max', Math.max(...fast), 's');
    report('plan with OpenClaw security audit run now, median', median(audited), 's');
    report("plan with the host's cached audit (the default), median", median(reused), 's');
    report('plan through the CLI (process start included)', median(viaCli), 's');
    report(`fleet plan, ${FLEET} host entries, CLI end to end`, median(fleet), 's', 15);
    if (simCpu !== undefined) {
      report(`  simulator CPU per ${FLEET}-entry plan (all hosts' work)`, simCpu, 's');
    }
    report(`  worker process CPU per ${FLEET}-entry plan`, ownCpu, 's');
    console.log(
      `  this machine has ${cpus().length} cores for all of it; ${FLEET} real hosts would each do 1/${FLEET} of ` +
        'the simulator figure on their own CPU',
    );
    report(`worker RSS, peak while planning ${FLEET} hosts at once`, rss.fleetPeakMb, 'MB', 400);
    report('worker RSS, peak over its life (start and warm-up included)', rss.lifetimePeakMb, 'MB');
    console.log(
      `ratio vs ansible-playbook --check at 7.6 s (the issue's figure): ${(7.6 / median(fast)).toFixed(1)}× faster; ` +
        'bench/ansible measures Ansible on this machine',
    );
    // The fleet's workflow input: the spec once and host names, against the whole spec in every host's input.
    const { spec } = await loadSpec(fleetFile);
    const hosts = spec.hosts.map((h) => h.name);
    const req = { operation: 'drift' as const, workflowType: 'driftHost', spec, hosts, mode: 'plan' as const };
    const input = fleetInput({ ...req, extra: { audit: false } }, new Date());
    const before = {
      ...input,
      spec: undefined,
      hosts: hosts.map((host) => ({ audit: false, spec, host, mode: 'plan' })),
    };
    const [now, then] = [JSON.stringify(input).length, JSON.stringify(before).length];
    report(`fleet workflow input, ${FLEET} hosts, spec once (host plans)`, now / 1024, 'KiB');
    report(`fleet workflow input, ${FLEET} hosts, a whole spec per host (before)`, then / 1024, 'KiB');
    console.log(`  ${(then / now).toFixed(1)}× smaller (target ≥ 10×)`);
  }),
);
