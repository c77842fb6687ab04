/**
 * steward drift against Ansible, side by side on the same converged simulator (provisioned, hardened, deployed).
 * The playbook is generated from steward's own drift checks, one task per check: files (content, owner, mode) with
 * `copy`, directories with `file`, packages with `apt`, services with `systemd`, users with `user`; the checks that
 * are defined only by what they read on the host (effective sshd, the live nft table, containers, kernel lines,
 * secret file modes) run their same probe through `shell`. Ansible runs it with `--check` (Debian's ansible-core,
 * installed here if missing), no fact gathering, pipelining on: its best case; 10 hosts at a time for both tools. steward runs
 * `drift --no-audit`. For 1 host and for 50 host entries; the 50 all point at the one simulator (this machine cannot
 * run 50 OpenClaw stacks), for both tools alike. Also prints the peak RSS of a `steward worker` process of its own
 * with all 50 host workflows at once (target ≤ 400 MB), as bench/drift does.
 *   npx tsx bench/ansible.ts [host entries, default 50]
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { driftChecks } from '../activities/drift';
import type { Simulator } from '../client/dev/simulator';
import type { Spec, SpecInput } from '../model/schema';
import { writeSpec, type KeyPair } from '../test/support/fixtures';
import {
  aliasHosts,
  cliRun,
  driftPlanner,
  fleetWorkerRss,
  median,
  report,
  withSimulators,
  withTemporal,
} from './support';

const FLEET = Number(process.argv[2] ?? 50);
const RUNS = 3;
/** Hosts worked on at once by both tools: the one sshd all entries share drops handshakes beyond MaxStartups (10). */
const CONCURRENCY = 10;
const BENCH: Partial<SpecInput> = {
  harden: { confirmSeconds: 30 },
  firewall: { sshRateLimit: 1000 },
  proxy: { domain: 'bench.steward.test' },
};

function ensureAnsible(): void {
  if (spawnSync('sh', ['-c', 'command -v ansible-playbook']).status === 0) return;
  const sudo = process.getuid?.() === 0 ? '' : 'sudo -n ';
  execFileSync(
    'sh',
    ['-c', `${sudo}apt-get update -q && ${sudo}apt-get install -y -q --no-install-recommends ansible-core`],
    {
      stdio: 'inherit',
      env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    },
  );
}

/** One Ansible task per steward drift check. */
async function playbook(
  spec: Spec,
  host: string,
  identityFile: string,
  dir: string,
): Promise<{ tasks: unknown[]; checks: number }> {
  const checks = await driftChecks(spec, host, identityFile);
  mkdirSync(join(dir, 'files'), { recursive: true });
  const tasks = checks.map(({ resource: r }, i) => {
    const d = r.desired;
    const name = r.id;
    // Ansible templates every string with Jinja; probes carry `{{` (docker -f formats) verbatim.
    const raw = (text: string) => `{% raw %}${text}{% endraw %}`;
    if (d?.kind === 'file') {
      // From a file, byte for byte: inline `content` is templated, and Ansible turns JSON-looking text into data.
      const src = join(dir, 'files', String(i));
      writeFileSync(src, d.content);
      return {
        name,
        'ansible.builtin.copy': {
          dest: d.path,
          src,
          owner: String(d.owner),
          group: String(d.group),
          mode: d.mode,
        },
      };
    }
    if (d?.kind === 'directory') {
      return {
        name,
        'ansible.builtin.file': {
          path: d.path,
          state: 'directory',
          owner: String(d.owner),
          group: String(d.group),
          mode: d.mode,
        },
      };
    }
    if (d?.kind === 'packages') return { name, 'ansible.builtin.apt': { name: d.names, state: 'present' } };
    if (d?.kind === 'service')
      return { name, 'ansible.builtin.systemd': { name: d.unit, enabled: true, state: 'started' } };
    if (d?.kind === 'user') {
      return { name, 'ansible.builtin.user': { name: d.name, groups: d.groups, append: true, shell: d.shell } };
    }
    return { name, 'ansible.builtin.shell': raw(r.probe), check_mode: false, changed_when: false, failed_when: false };
  });
  return { tasks, checks: checks.length };
}

function inventory(keys: KeyPair, sim: Simulator, count: number, dir: string): string {
  const knownHosts = join(dir, 'known_hosts');
  writeFileSync(knownHosts, `[${sim.address}]:${sim.port} ${sim.hostKey}\n`);
  const hosts = Object.fromEntries(
    Array.from({ length: count }, (_, i) => [
      `bench-${String(i).padStart(2, '0')}`,
      { ansible_host: sim.address, ansible_port: sim.port },
    ]),
  );
  const file = join(dir, `inventory-${count}.yml`);
  writeFileSync(
    file,
    stringify({
      all: {
        hosts,
        vars: {
          ansible_user: 'steward',
          ansible_ssh_private_key_file: keys.privateKeyPath,
          ansible_become: true,
          ansible_python_interpreter: '/usr/bin/python3',
          ansible_ssh_common_args: `-o UserKnownHostsFile=${knownHosts} -o StrictHostKeyChecking=yes`,
        },
      },
    }),
  );
  return file;
}

function runAnsible(dir: string, inv: string, book: string, forks: number): number {
  const s = performance.now();
  const r = spawnSync('ansible-playbook', ['-i', inv, '--check', '--forks', String(forks), book], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, ANSIBLE_CONFIG: join(dir, 'ansible.cfg') },
    maxBuffer: 64 << 20,
  });
  const seconds = (performance.now() - s) / 1000;
  if (r.status !== 0) throw new Error(`ansible-playbook exited ${r.status}: ${(r.stdout + r.stderr).slice(-2000)}`);
  const changed = [...r.stdout.matchAll(/changed=(\d+)/g)].reduce((n, m) => n + Number(m[1]), 0);
  if (changed > 0) {
    const tasks = r.stdout
      .split('TASK [')
      .filter((block) => block.includes('changed: ['))
      .map((block) => block.slice(0, block.indexOf(']')));
    throw new Error(`ansible --check reports ${changed} changes on the converged host: ${tasks.join(', ')}`);
  }
  return seconds;
}

ensureAnsible();
await withTemporal((address) =>
  withSimulators(1, async ([sim], keys) => {
    const dir = mkdtempSync(join(tmpdir(), 'steward-ansible-'));
    const file = writeSpec(keys, [sim!], BENCH);
    const base = ['--spec', file, '--address', address];
    for (const op of ['provision', 'harden', 'deploy']) await cliRun([...base, op]);

    const { loadSpec } = await import('../client/spec-file');
    const { spec } = await loadSpec(file);
    const host = spec.hosts[0]!.name;
    const { tasks, checks } = await playbook(spec, host, keys.privateKeyPath, dir);
    const book = join(dir, 'drift.yml');
    writeFileSync(book, stringify([{ hosts: 'all', gather_facts: false, tasks }], { lineWidth: 0 }));
    writeFileSync(
      join(dir, 'ansible.cfg'),
      '[defaults]\nhost_key_checking = True\nstdout_callback = default\nretry_files_enabled = False\n' +
        '[ssh_connection]\npipelining = True\nssh_args = -o ControlMaster=auto -o ControlPersist=60s\n',
    );

    // One host.
    const inv1 = inventory(keys, sim!, 1, dir);
    runAnsible(dir, inv1, book, 1); // warm: SSH control socket, Python caches
    const ansible1 = Array.from({ length: RUNS }, () => runAnsible(dir, inv1, book, 1));
    await cliRun([...base, 'drift', '--no-audit']);
    const steward1: number[] = [];
    for (let i = 0; i < RUNS; i++) steward1.push((await cliRun([...base, 'drift', '--no-audit'])).seconds);
    // The plan itself, as bench/drift measures it: the workflow's wall time, without the CLI process starting.
    const planner = await driftPlanner(address, file);
    await planner.plan(false);
    const workflow1: number[] = [];
    for (let i = 0; i < RUNS; i++) workflow1.push((await planner.plan(false)).seconds);
    await planner.close();
    // Printed now: the fleet half takes many minutes and may fail on its own.
    console.log(
      `drift plan vs ansible-playbook --check on one converged simulator: ${checks} checks, ${tasks.length} tasks`,
    );
    report('ansible-playbook --check, 1 host, median', median(ansible1), 's');
    report('steward drift (CLI end to end), 1 host, median', median(steward1), 's');
    report('steward drift plan (workflow wall time), 1 host, median', median(workflow1), 's');
    const endToEnd = median(ansible1) / median(steward1);
    console.log(
      `  ratio, 1 host, end to end (both tools' whole processes): steward ${endToEnd.toFixed(1)}× faster ` +
        `(target ≥ 10×: ${endToEnd >= 10 ? 'MET' : 'MISSED'}); steward's workflow alone ` +
        `${(median(ansible1) / median(workflow1)).toFixed(1)}×`,
    );

    // Fifty host entries.
    const invN = inventory(keys, sim!, FLEET, dir);
    const ansibleN = runAnsible(dir, invN, book, CONCURRENCY);
    const fleetHosts = aliasHosts(sim!, keys, FLEET);
    const fleetFile = writeSpec(keys, [], { ...BENCH, hosts: fleetHosts } as Partial<SpecInput>, 'fleet.yaml');
    const stewardN = (
      await cliRun([
        '--spec',
        fleetFile,
        '--address',
        address,
        'drift',
        '--no-audit',
        '--concurrency',
        String(CONCURRENCY),
      ])
    ).seconds;
    const rss = await fleetWorkerRss(address, fleetFile, ['drift', '--no-audit']);

    report(`ansible-playbook --check, ${FLEET} host entries`, ansibleN, 's');
    report(`steward drift (CLI end to end), ${FLEET} host entries`, stewardN, 's', 15);
    console.log(`  ratio, ${FLEET} hosts: steward ${(ansibleN / stewardN).toFixed(1)}× faster`);
    report(`worker RSS, peak while planning ${FLEET} hosts at once`, rss.fleetPeakMb, 'MB', 400);
    console.log(`playbook and inventories: ${dir}`);
  }),
);
