/**
 * Backups and upgrades end to end through the CLI, with real OpenClaw releases from npm, their real mem0 plugin and
 * real restic, on a simulator deployed with the earlier release: a backup of a host with a canary memory, a second
 * one that adds almost nothing, a repository in which neither the canary nor any secret is readable, a restore after
 * the memory volume was wiped that finds the memory again, a snapshot with a flipped byte refused with nothing live
 * touched, and a drill on the serving host that leaves production as it was (file hashes, container ids, no failed
 * request) and reports RPO and RTO in its result and in `steward audit`. Then the VPS is lost: a second simulator
 * at a new address (booted from the image of a hardened host) is converged and restored. On that host, `steward upgrade` to the current release: one whose
 * own check fails after the new version started ends on the earlier release with the earlier data (image, state
 * files' hashes, canary), and the same upgrade without that check succeeds with the canary recalled by the new
 * version and the spec file naming the new image. One file, so the upgrade reuses the backup tests' hosts and
 * repository instead of deploying its own.
 *
 * Test doubles: the embedding provider is the stand-in embedder (test/support/embedder-double.ts). The repository is
 * a directory on this machine (the worker's); nothing leaves it.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { removeSimulator, simulatorExec, type Simulator } from '../../client/dev/simulator';
import type { ControlResult } from '../../model/report';
import type { SpecInput } from '../../model/schema';
import { doubleProviders, startEmbedderDouble } from '../support/embedder-double';
import { goldenSimulators, hostName, stage, writeSpec, type Stage } from '../support/fixtures';
import type { SimulatorFleet } from '../support/simulators';

/** The earlier release the hosts run until the upgrade (scripts/build-stack-images.sh, STEWARD_OPENCLAW_ALSO). */
const FROM = '2026.9.5';
/** The current release: the upgrade's target. */
const TO = '2026.9.6';
const IMAGE = `steward/openclaw:${FROM}`;
const KEY_ENV = 'STEWARD_TEST_BACKUP_EMBEDDER_KEY';
const PASSWORD_ENV = 'STEWARD_TEST_BACKUP_PASSWORD';
const MEMORY_DIR = '/opt/openclaw/memory';
const GATEWAY_CONTAINER = 'openclaw_gateway_1';

let world: Stage;
let sim: Simulator;
let repository: string;
/** The new machine of the lost-VPS test. */
let newMachine: SimulatorFleet | undefined;
const outputs: string[] = [];

function spec(repo: string): Partial<SpecInput> {
  return {
    stack: {
      image: IMAGE,
      compressImages: false,
      memory: { ...doubleProviders('embedder-api-key'), check: { minFreeMegabytes: 100 } },
    },
    proxy: { domain: 'agent.steward.test' },
    secrets: {
      'gateway-token': { generate: { length: 48 } },
      'embedder-api-key': { external: { env: KEY_ENV } },
      'backup-password': { external: { env: PASSWORD_ENV } },
    },
    backup: { repository: repo, passwordSecret: 'backup-password' },
  };
}

function specFile(repo = repository): string {
  return writeSpec(world.keys, [sim], spec(repo), `backup-${randomBytes(3).toString('hex')}.yaml`);
}

async function cli(...args: string[]) {
  const r = await world.cli(specFile(), ...args);
  outputs.push(r.stdout, r.stderr);
  return r;
}

async function onHost(script: string): Promise<string> {
  const r = await simulatorExec(sim.container, ['sh', '-c', script]);
  if (r.exitCode !== 0) throw new Error(`${script}: ${r.stderr}`);
  return r.stdout.trim();
}

function byId(controls: readonly ControlResult[] | undefined): Record<string, ControlResult> {
  return Object.fromEntries((controls ?? []).map((c) => [c.control, c]));
}

/** The canary written before the snapshot was read back by id and found by search. */
function expectCanaryFound(c: Record<string, ControlResult>): void {
  expect(c['backup.restore.canary-read']?.status).toBe('pass');
  expect(c['backup.restore.canary-search']?.status).toBe('pass');
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile());
}

function repositoryBytes(dir: string): number {
  return filesUnder(dir).reduce((n, f) => n + statSync(f).size, 0);
}

/**
 * SHA-256 of every file in the volumes, but those the serving gateway itself writes as it runs: its logs and its
 * SQLite write-ahead logs (the databases themselves are in).
 */
const VOLUME_HASHES = `find /opt/openclaw/state /opt/openclaw/memory /opt/openclaw/workspace -type f ! -path '*/logs/*' ! -name '*-wal' ! -name '*-shm' -print0 | sort -z | xargs -0 -r sha256sum`;

/** The lines of two `sha256sum` listings that differ (a file changed, appeared or went). */
function changedFiles(before: string, after: string): string[] {
  const a = new Set(before.split('\n'));
  const b = new Set(after.split('\n'));
  return [...[...a].filter((l) => !b.has(l)), ...[...b].filter((l) => !a.has(l))].map((l) => l.slice(66));
}

/** The files of the first listing that the second does not hold as they were (changed or gone). */
function goneOrChanged(before: string, after: string): string[] {
  const b = new Set(after.split('\n'));
  return before
    .split('\n')
    .filter((l) => !b.has(l))
    .map((l) => l.slice(66));
}

/** The snapshot a backup reports. */
function snapshotOf(r: Awaited<ReturnType<typeof cli>>): { id: string; bytes: number; added: number } {
  const change = r.doc!.hosts[0]!.changes.find((c) => c.resource.startsWith('snapshot:') && c.action === 'create')!;
  const after = change.after as { bytes: number; added: number };
  return { id: change.resource.slice('snapshot:'.length), bytes: after.bytes, added: after.added };
}

beforeAll(async () => {
  process.env[KEY_ENV] = `sk-test-${randomBytes(24).toString('hex')}`;
  process.env[PASSWORD_ENV] = `restic-${randomBytes(24).toString('hex')}`;
  repository = join(mkdtempSync(join(tmpdir(), 'steward-backup-')), 'repo');
  execFileSync('bash', ['scripts/build-stack-images.sh'], {
    env: { ...process.env, STEWARD_OPENCLAW_ALSO: FROM },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  world = await stage({ taskQueue: 'backup-test', simulators: 1, golden: 'provisioned' });
  sim = world.sims[0]!;
  const deployed = await cli('deploy');
  if (deployed.code !== 0) throw new Error(`deploy failed: ${deployed.stderr || deployed.stdout}`);
  await startEmbedderDouble(sim, IMAGE);
}, 1_200_000);

afterAll(async () => {
  await newMachine?.cleanup();
  await world?.close();
  if (repository) rmSync(join(repository, '..'), { recursive: true, force: true });
  delete process.env[KEY_ENV];
  delete process.env[PASSWORD_ENV];
});

describe('steward backup and restore', () => {
  let first: { id: string; bytes: number; added: number };

  it('backs up a deployed host with a canary memory; a second backup with nothing changed adds almost nothing', async () => {
    const r1 = await cli('backup');
    expect(r1.stderr).toBe('');
    expect(r1.code).toBe(0);
    const host = r1.doc!.hosts[0]!;
    expect(host.changes.map((c) => c.resource)).toContain('backup:repository');
    expect(host.changes.some((c) => c.resource.startsWith('memory:canary/'))).toBe(true);
    first = snapshotOf(r1);
    const size1 = repositoryBytes(repository);

    const r2 = await cli('backup');
    expect(r2.code).toBe(0);
    const second = snapshotOf(r2);
    const size2 = repositoryBytes(repository);
    console.log(
      `backup 1: archive ${first.bytes} B, added ${first.added} B, repository ${size1} B; ` +
        `backup 2: archive ${second.bytes} B, added ${second.added} B, repository ${size2} B (+${size2 - size1} B)`,
    );
    expect(second.id).not.toBe(first.id);
    expect(first.added).toBeGreaterThan(100_000);
    // The canary changed (each backup replaces it) and the database copies carry new change counters: a few chunks.
    expect(second.added).toBeLessThan(first.added * 0.1);
    expect(size2 - size1).toBeLessThan(size1 * 0.1);
  }, 600_000);

  it('keeps no canary text and no secret value readable in the repository', async () => {
    const token = await onHost('cat /opt/openclaw/secrets/gateway-token');
    expect(token.length).toBeGreaterThanOrEqual(48);
    const needles = {
      canary: 'steward backup canary',
      'gateway token': token,
      'embedder key': process.env[KEY_ENV]!,
      'repository password': process.env[PASSWORD_ENV]!,
      // What every archive holds in plain form: shows the search would find plaintext if there were any.
      'SQLite header': 'SQLite format 3',
      'openclaw.json key': '"openclaw-mem0"',
    };
    const files = filesUnder(repository);
    expect(files.length).toBeGreaterThan(5);
    const found: string[] = [];
    for (const f of files) {
      const bytes = readFileSync(f);
      for (const [what, needle] of Object.entries(needles)) {
        for (const form of [needle, Buffer.from(needle).toString('base64')]) {
          if (bytes.includes(Buffer.from(form))) found.push(`${what} in ${f}`);
        }
      }
    }
    expect(found).toEqual([]);
    // The volumes do hold the canary as plain text: the search above looks for something that is there.
    expect(await onHost(`grep -rl 'steward backup canary' ${MEMORY_DIR} | head -n 1`)).not.toBe('');
  });

  it('restores onto the host after its memory volume was wiped: the canary memory is read back and found', async () => {
    await onHost(`find ${MEMORY_DIR} -mindepth 1 -delete`);
    expect(await onHost(`ls -A ${MEMORY_DIR} | wc -l`)).toBe('0');
    const r = await cli('restore', hostName(sim));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const host = r.doc!.hosts[0]!;
    const c = byId(host.controls);
    expectCanaryFound(c);
    expect(c['backup.restore.ownership']?.status).toBe('pass');
    expect(Object.keys(c).filter((k) => k.startsWith('backup.restore.integrity.')).length).toBeGreaterThanOrEqual(2);
    expect(host.changes.map((x) => x.resource)).toContain(`volume:${MEMORY_DIR}`);
    expect(await onHost(`ls ${MEMORY_DIR}`)).toContain('vector_store.db');
    expect(await onHost(`stat -c '%u:%g %a' ${MEMORY_DIR}`)).toBe('1000:1000 700');
    // The wiped volume is kept beside it, as it was.
    expect(await onHost(`ls -d ${MEMORY_DIR}.pre-restore-* | wc -l`)).toBe('1');
    expect(await onHost(`docker inspect -f '{{.State.Health.Status}}' ${GATEWAY_CONTAINER}`)).toBe('healthy');
  }, 600_000);

  it('refuses a snapshot with a flipped byte, naming it, and touches nothing live', async () => {
    const corrupt = join(repository, '..', 'corrupt');
    cpSync(repository, corrupt, { recursive: true });
    const packs = filesUnder(join(corrupt, 'data')).sort((a, b) => statSync(b).size - statSync(a).size);
    const pack = packs[0]!;
    const bytes = readFileSync(pack);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at]! ^ 0x01;
    writeFileSync(pack, bytes);

    const hashesBefore = await onHost(VOLUME_HASHES);
    const idBefore = await onHost(`docker inspect -f '{{.Id}} {{.State.StartedAt}}' ${GATEWAY_CONTAINER}`);
    const r = await world.cli(specFile(corrupt), 'restore', hostName(sim));
    outputs.push(r.stdout, r.stderr);
    expect(r.code).toBe(1);
    const error = r.doc!.hosts[0]!.error ?? '';
    expect(error).toMatch(/snapshot [0-9a-f]{8} of .* refused/);
    expect(error).toContain('nothing live was touched');
    expect(changedFiles(hashesBefore, await onHost(VOLUME_HASHES))).toEqual([]);
    expect(await onHost(`docker inspect -f '{{.Id}} {{.State.StartedAt}}' ${GATEWAY_CONTAINER}`)).toBe(idBefore);
    expect(await onHost('ls -A /opt/openclaw/.steward-restore | wc -l')).toBe('0');
  }, 600_000);

  it('drills a restore beside the serving gateway: production untouched, RPO and RTO in the result and the audit', async () => {
    const hashesBefore = await onHost(VOLUME_HASHES);
    const idsBefore = await onHost(`docker ps -q --no-trunc --filter label=com.docker.compose.project=openclaw | sort`);
    // Requests to the gateway through the whole drill, 5 a second: every one must be answered.
    await onHost(
      `nohup sh -c 'while [ ! -e /tmp/probe-stop ]; do if curl -sf --max-time 2 -o /dev/null http://127.0.0.1:18789/readyz; then echo ok; else echo fail; fi; sleep 0.2; done' > /tmp/probe.log 2>&1 &`,
    );
    const r = await cli('restore', '--drill', hostName(sim));
    await onHost('touch /tmp/probe-stop; sleep 2.5');
    const probes = (await onHost('cat /tmp/probe.log')).split('\n');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const host = r.doc!.hosts[0]!;
    const c = byId(host.controls);
    expectCanaryFound(c);
    expect(c['backup.rpo']?.durationMs).toBeGreaterThan(0);
    expect(c['backup.rto']?.status).toBe('pass');
    expect(host.changes).toEqual([]);
    console.log(`drill: RPO ${c['backup.rpo']?.observed}, RTO ${c['backup.rto']?.observed}, ${probes.length} requests`);

    expect(probes.length).toBeGreaterThan(10);
    expect(probes.filter((p) => p !== 'ok')).toEqual([]);
    expect(changedFiles(hashesBefore, await onHost(VOLUME_HASHES))).toEqual([]);
    expect(await onHost(`docker ps -q --no-trunc --filter label=com.docker.compose.project=openclaw | sort`)).toBe(
      idsBefore,
    );
    expect(await onHost('ls -A /opt/openclaw/.steward-restore | wc -l')).toBe('0');

    const audit = await world.cli(specFile(), 'audit', r.doc!.workflowId);
    const timeline = JSON.parse(audit.stdout) as { operation: string; controls: ControlResult[] };
    expect(timeline.operation).toBe('drill');
    expect(timeline.controls.map((x) => x.control)).toEqual(expect.arrayContaining(['backup.rpo', 'backup.rto']));
  }, 600_000);

  it('recovers a lost VPS: a new machine at a new address, converged and restored, finds the memories', async () => {
    const lost = sim;
    // The new machine: booted from the image of a hardened host (the run's golden host), as a provider's image
    // would be; converge (below) makes it this spec's host, the restore gives it the lost host's data.
    newMachine = await goldenSimulators(world.keys, 'hardened');
    const fresh = newMachine.simulators[0]!;
    const t0 = Date.now();
    await removeSimulator(lost.container);
    // The same host in the spec, at the new machine's address, with its key.
    sim = { ...fresh, name: lost.name };
    const timings: string[] = [];
    // converge's operations one by one: the embedder test double can join the stack's network only once deploy
    // made it, and converge's last stage, the memory check, needs it.
    for (const operation of ['provision', 'harden', 'deploy']) {
      const t = Date.now();
      const r = await cli(operation);
      expect(r.code, `${operation}: ${r.stderr}`).toBe(0);
      timings.push(`${operation} ${((Date.now() - t) / 1000).toFixed(1)} s`);
    }
    await startEmbedderDouble(sim, IMAGE);
    const t = Date.now();
    const r = await cli('restore', hostName(lost));
    timings.push(`restore ${((Date.now() - t) / 1000).toFixed(1)} s`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const c = byId(r.doc!.hosts[0]!.controls);
    expectCanaryFound(c);
    console.log(`lost VPS recovered in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${timings.join(', ')}`);
  }, 900_000);

  describe('then steward upgrade, on the recovered host', () => {
    let upgradeSpec: string;
    const gatewayVersion = () => onHost(`docker exec ${GATEWAY_CONTAINER} openclaw --version`);
    /**
     * The state and memory as data: the files' SHA-256 (but the gateway's logs, locks and temporary files, and the
     * SQLite files), and each SQLite database's schema and user_version (a restore puts back online-backup copies:
     * the same data, not the same bytes; a migration changes the schema).
     */
    const STATE_HASHES = [
      `find /opt/openclaw/state /opt/openclaw/memory -type f ! -path '*/logs/*' ! -path '*/tmp/*' ! -name '*.lock' ! -name '*-wal' ! -name '*-shm' ! -name '*.sqlite' ! -name '*.db' -print0 | sort -z | xargs -0 -r sha256sum`,
      `find /opt/openclaw/state /opt/openclaw/memory -type f \\( -name '*.sqlite' -o -name '*.db' \\) | sort | while read -r f; do printf '%s  %s\\n' "$(sqlite3 -readonly "$f" 'PRAGMA user_version; SELECT type, name, sql FROM sqlite_master ORDER BY name;' | sha256sum | cut -c1-64)" "$f#schema"; done`,
    ].join('; ');
    const upgrade = async (...args: string[]) => {
      const r = await world.cli(upgradeSpec, 'upgrade', hostName(sim), '--to', TO, ...args);
      outputs.push(r.stdout, r.stderr);
      return r;
    };

    it('plans the version change, the new version validating the config, and changes nothing', async () => {
      upgradeSpec = specFile();
      expect(await gatewayVersion()).toContain(`OpenClaw ${FROM}`);
      const r = await upgrade('--plan');
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.stringify(r.doc!.hosts[0]!.changes)).toContain(`steward/openclaw:${TO}`);
      expect(await gatewayVersion()).toContain(`OpenClaw ${FROM}`);
    }, 600_000);

    it('rolls back to the earlier release and its data when the upgraded gateway fails its check', async () => {
      const before = await onHost(STATE_HASHES);
      const r = await upgrade('--check', 'node -e process.exit(3)');
      expect(r.code).toBe(1);
      const host = r.doc!.hosts[0]!;
      expect(host.error).toContain('upgrade.check');
      expect(host.error).toContain('rolled back to the previous release');
      const c = byId(host.controls);
      expect(c['upgrade.check']?.status).toBe('fail');
      // The new version had started and recalled the canary before the check failed.
      expect(c['backup.restore.canary-read']?.status).toBe('pass');
      // The run's history: the new release applied and checked, then the previous release and the data back.
      const audit = await world.cli(upgradeSpec, 'audit', r.doc!.workflowId);
      const ran = (JSON.parse(audit.stdout) as { steps: { name: string; state: string }[] }).steps
        .filter((st) => st.state === 'completed')
        .map((st) => st.name);
      expect(ran).toEqual(
        expect.arrayContaining(['applyStack', 'runUpgradeCheck', 'rollbackStack', 'swapVolumes', 'proveRestore']),
      );
      expect(ran).not.toContain('commitStack');

      expect(await gatewayVersion()).toContain(`OpenClaw ${FROM}`);
      // The data is the snapshot's, which the earlier release starts on (it refuses a state the new one migrated):
      // every file and database schema there before the upgrade is there unchanged. The gateway may have made new
      // ones since, as it does on its own (its agent database is created on first use): those are listed, not
      // refused; a state the new release migrated would show as a changed schema above.
      const after = await onHost(STATE_HASHES);
      expect(goneOrChanged(before, after)).toEqual([]);
      const made = goneOrChanged(after, before);
      if (made.length > 0) console.log(`made by the gateway since the snapshot: ${made.join(', ')}`);
      expect(await onHost(`docker inspect -f '{{.State.Health.Status}}' ${GATEWAY_CONTAINER}`)).toBe('healthy');
      expect(readFileSync(upgradeSpec, 'utf8')).not.toContain(`steward/openclaw:${TO}`);
    }, 900_000);

    it('upgrades to the current release with the canary recalled, and the spec names the new image', async () => {
      const r = await upgrade();
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const c = byId(r.doc!.hosts[0]!.controls);
      expectCanaryFound(c);
      expect(await gatewayVersion()).toContain(`OpenClaw ${TO}`);
      expect(readFileSync(upgradeSpec, 'utf8')).toContain(`image: steward/openclaw:${TO}`);
      // The agent answers with its memories on the new version: a memory check passes.
      const checked = await world.cli(upgradeSpec, 'memory', 'check');
      expect(checked.code, checked.stdout).toBe(0);
    }, 900_000);
  });

  it('prints no secret value in any output', () => {
    const text = outputs.join('\n');
    expect(text.length).toBeGreaterThan(1000);
    expect(text).not.toContain(process.env[PASSWORD_ENV]!);
    expect(text).not.toContain(process.env[KEY_ENV]!);
  });
});
