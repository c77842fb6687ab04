/**
 * The memory check's pure parts: the spec section, where mem0's paths live (mounts, tmpfs, the container), what the
 * path controls and repairs are, how sqlite3's output is read, and the controls of a canary, history, dimension and
 * persistence proof.
 */
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  evaluatePaths,
  modeWithin,
  narrowMode,
  volumeRepairArgv,
  volumeRepairs,
  type ObservedPaths,
} from '../../activities/memory/paths';
import type { ProofReport } from '../../activities/memory/proof-report';
import { proofArgv } from '../../activities/memory/plugin-proof';
import { canaryText, CANARY_PREFIX, parseProofReport } from '../../activities/memory/proof-report';
import { canaryControls, dimensionControl, historyControl, persistenceControl } from '../../activities/memory/proof';
import { integrityControls, parseIntegrity } from '../../activities/memory/sqlite';
import {
  locate,
  parseConsumer,
  resolvePath,
  resolveTargets,
  type Consumer,
  type MemoryTargets,
} from '../../activities/memory/targets';
import { openclawConfig } from '../../model/render/stack';
import { specSchema, type Spec } from '../../model/schema';
import { describeFailedControls } from '../../workflows/memory';
import { steward } from '../support/cli';

function makeSpec(memory: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Spec {
  return specSchema.parse({
    version: 1,
    hosts: [{ name: 'vps1', address: '203.0.113.10' }],
    stack: { memory },
    ...extra,
  });
}

const gateway: Consumer = parseConsumer({
  Id: 'abc',
  Name: '/openclaw_gateway_1',
  Config: { StopTimeout: 60 },
  State: { Status: 'running', Health: { Status: 'healthy' } },
  Mounts: [
    { Type: 'bind', Source: '/opt/openclaw/state', Destination: '/home/node/.openclaw', RW: true },
    { Type: 'bind', Source: '/opt/openclaw/memory', Destination: '/home/node/memory', RW: true },
    { Type: 'bind', Source: '/opt/openclaw/workspace', Destination: '/home/node/workspace', RW: true },
  ],
  HostConfig: { Tmpfs: { '/tmp': 'size=256m', '/home/node/.cache': 'size=256m' } },
});

function withOss(spec: Spec, oss: Record<string, unknown>): Record<string, unknown> {
  const live = openclawConfig(spec) as { plugins: { entries: Record<string, { config: { oss: unknown } }> } };
  live.plugins.entries['openclaw-mem0']!.config.oss = oss;
  return live;
}

describe('memory check spec', () => {
  it('defaults to the plugin adapter with a persistence proof', () => {
    const c = makeSpec().stack.memory.check;
    expect(c).toEqual({ adapter: 'openclaw-plugin', minFreeMegabytes: 1024, fileMode: '0644', persistence: true });
  });

  it('requires the REST server when the adapter is rest, and takes its key as a secret name', () => {
    expect(() => makeSpec({ check: { adapter: 'rest' } })).toThrow(/rest is required when adapter is rest/);
    const check = {
      adapter: 'rest',
      rest: { url: 'http://127.0.0.1:8888', apiKeySecret: 'mem0-key', databases: ['/srv/mem0/history.db'] },
    };
    const rest = makeSpec(
      { check },
      { secrets: { 'gateway-token': { generate: {} }, 'mem0-key': { external: { env: 'MEM0_KEY' } } } },
    ).stack.memory.check.rest;
    expect(rest).toEqual({
      url: 'http://127.0.0.1:8888',
      apiKeySecret: 'mem0-key',
      databases: ['/srv/mem0/history.db'],
    });
    expect(() => makeSpec({ check: { fileMode: '0644', frequency: 1 } })).toThrow(/frequency/);
  });

  it('refuses a REST key that names an undeclared secret when the spec is read, naming the field', () => {
    const check = { adapter: 'rest', rest: { url: 'http://127.0.0.1:8888', apiKeySecret: 'mem0-key' } };
    const parsed = specSchema.safeParse({
      version: 1,
      hosts: [{ name: 'vps1', address: '203.0.113.10' }],
      stack: { memory: { check } },
    });
    expect(parsed.error?.issues.map((i) => ({ path: i.path.join('.'), message: i.message }))).toEqual([
      {
        path: 'stack.memory.check.rest.apiKeySecret',
        message: 'names secret "mem0-key", which is not declared under secrets',
      },
    ]);
  });
});

describe('where mem0 data lives', () => {
  it('resolves relative paths against the working directory, as mem0 does', () => {
    expect(resolvePath('memory.db')).toBe('/home/node/memory.db');
    expect(resolvePath('/home/node/memory/../memory//history.db')).toBe('/home/node/memory/history.db');
  });

  it('maps a container path to its host path through the longest mount, and sees tmpfs and the container layer', () => {
    expect(locate('/home/node/memory/history.db', gateway)).toMatchObject({
      kind: 'mount',
      hostPath: '/opt/openclaw/memory/history.db',
    });
    expect(locate('/tmp/mem0/vector_store.db', gateway)).toEqual({ kind: 'tmpfs', destination: '/tmp' });
    expect(locate('/home/node/.mem0/vector_store.db', gateway)).toMatchObject({ kind: 'container' });
    const nested = {
      ...gateway,
      mounts: [
        ...gateway.mounts,
        { type: 'volume', source: '/var/lib/docker/volumes/x/_data', destination: '/home/node/memory/deep', rw: true },
      ],
    };
    expect(locate('/home/node/memory/deep/a.db', nested)).toMatchObject({
      hostPath: '/var/lib/docker/volumes/x/_data/a.db',
    });
  });

  it('takes the paths from the live config and names every path that is relative, unset or off the volume', () => {
    const spec = makeSpec();
    const healthy = resolveTargets(spec, openclawConfig(spec), gateway);
    expect(healthy.configIssues).toEqual([]);
    expect(healthy.databases.map((d) => [d.role, d.hostPath])).toEqual([
      ['history-db', '/opt/openclaw/memory/history.db'],
      ['vector-db', '/opt/openclaw/memory/vector_store.db'],
    ]);

    const relative = resolveTargets(spec, withOss(spec, { historyDbPath: 'history.db' }), gateway);
    expect(relative.configIssues).toEqual([
      expect.objectContaining({
        control: 'memory.config.history-db',
        observed: expect.stringMatching(/relative "history.db".*\/home\/node\/history.db/),
      }),
      expect.objectContaining({
        control: 'memory.config.vector-db',
        observed: expect.stringMatching(/unset: mem0 defaults to \/home\/node\/.mem0\/vector_store.db/),
      }),
    ]);
    expect(relative.databases[0]).toMatchObject({ location: { kind: 'container' } });

    const tmp = resolveTargets(
      spec,
      withOss(spec, {
        historyDbPath: '/opt/openclaw/history.db',
        vectorStore: { provider: 'memory', config: { dbPath: '/tmp/v.db' } },
      }),
      gateway,
    );
    expect(tmp.configIssues.map((i) => [i.control, i.observed])).toEqual([
      ['memory.config.history-db', '/opt/openclaw/history.db'],
      ['memory.config.vector-db', '/tmp/v.db'],
    ]);
    expect(resolveTargets(spec, undefined, gateway).configIssues[0]).toMatchObject({ control: 'memory.config.plugin' });
  });
});

describe('path controls and repairs', () => {
  const spec = makeSpec();
  const targets: MemoryTargets = resolveTargets(spec, openclawConfig(spec), gateway);
  const dir = (uid: number, mode = '0700') => ({ uid, gid: uid, mode, size: 4096, type: 'directory' });
  const file = (uid: number, mode = '0644') => ({ uid, gid: uid, mode, size: 8192, type: 'regular file' });
  const healthy: ObservedPaths = {
    stats: {
      '/opt/openclaw/state': dir(1000),
      '/opt/openclaw/memory': dir(1000),
      '/opt/openclaw/memory/history.db': file(1000),
      '/opt/openclaw/memory/history.db-wal': 'absent',
      '/opt/openclaw/memory/vector_store.db': 'absent',
    },
    databases: ['/opt/openclaw/memory/history.db', '/opt/openclaw/memory/vector_store.db'],
    freeMb: { '/opt/openclaw/state': 50_000, '/opt/openclaw/memory': 50_000 },
    foreign: { '/opt/openclaw/state': [], '/opt/openclaw/memory': [] },
  };

  it('passes a healthy layout and calls a database not created yet not applicable', () => {
    const { controls, changes } = evaluatePaths(spec, targets, healthy);
    expect(changes).toEqual([]);
    expect(controls.filter((c) => c.status === 'fail')).toEqual([]);
    const byId = Object.fromEntries(controls.map((c) => [c.control, c]));
    expect(byId['memory.path.vector_store.db']).toMatchObject({ status: 'not-applicable', observed: 'absent' });
    expect(byId['memory.volume.history-db']).toMatchObject({
      status: 'pass',
      observed: expect.stringMatching(/bind \/opt\/openclaw\/memory → \/home\/node\/memory/),
    });
  });

  it('names the path and owner of a root-owned data dir and plans the chown', () => {
    const observed: ObservedPaths = {
      ...healthy,
      stats: { ...healthy.stats, '/opt/openclaw/memory': dir(0), '/opt/openclaw/memory/history.db': file(0, '0666') },
      foreign: { ...healthy.foreign, '/opt/openclaw/memory': ['0:0 666 /opt/openclaw/memory/history.db'] },
    };
    const { controls, changes } = evaluatePaths(spec, targets, observed);
    const failed = controls.filter((c) => c.status === 'fail');
    expect(describeFailedControls(failed)).toMatch(
      /memory\.path\.data-dir: directory 0:0 0700 \(\/opt\/openclaw\/memory\)/,
    );
    expect(changes).toEqual([
      {
        resource: 'dir:/opt/openclaw/memory',
        action: 'update',
        before: { owner: '0:0', mode: '0700' },
        after: { owner: '1000:1000', mode: '0700' },
      },
      {
        resource: 'tree:/opt/openclaw/memory',
        action: 'update',
        before: { entries: '1', sample: ['0:0 666 /opt/openclaw/memory/history.db'] },
        after: { owner: '1000:1000' },
      },
      {
        resource: 'file:/opt/openclaw/memory/history.db',
        action: 'update',
        before: { owner: '0:0', mode: '0666' },
        after: { owner: '1000:1000', mode: '0644' },
      },
    ]);
  });

  it('creates a missing volume and fails on too little free space', () => {
    const observed: ObservedPaths = {
      ...healthy,
      stats: { ...healthy.stats, '/opt/openclaw/state': 'absent' },
      freeMb: { ...healthy.freeMb, '/opt/openclaw/memory': 10 },
    };
    const { controls, changes } = evaluatePaths(spec, targets, observed);
    expect(changes[0]).toEqual({
      resource: 'dir:/opt/openclaw/state',
      action: 'create',
      after: { owner: '1000:1000', mode: '0700' },
    });
    expect(controls.find((c) => c.control === 'memory.free-space.data-dir')).toMatchObject({
      status: 'fail',
      observed: '10 MB free',
    });
  });

  it('fails a symbolic link where a database file belongs, and plans no change through it', () => {
    const observed: ObservedPaths = {
      ...healthy,
      stats: {
        ...healthy.stats,
        '/opt/openclaw/memory/history.db-wal': { uid: 1000, gid: 1000, mode: '0777', size: 11, type: 'symbolic link' },
      },
    };
    const { controls, changes } = evaluatePaths(spec, targets, observed);
    expect(changes).toEqual([]);
    expect(controls.find((c) => c.control === 'memory.path.history.db-wal')).toMatchObject({
      status: 'fail',
      observed: 'symbolic link where a file belongs (never repaired)',
    });
  });

  it('plans repairs inside volumes as scripts of a container that mounts only that volume', () => {
    const planned = (path: string, mode: string) => ({
      resource: `file:${path}`,
      action: 'update' as const,
      after: { owner: '1000:1000', mode },
    });
    const repairs = volumeRepairs(
      targets,
      [{ resource: 'tree:/opt/openclaw/memory', action: 'update' }, planned('/opt/openclaw/memory/history.db', '0644')],
      'vps1',
    );
    expect(repairs).toHaveLength(1);
    expect(repairs[0]!.source).toBe('/opt/openclaw/memory');
    expect(repairs[0]!.script).toContain('find /v -xdev -mindepth 1');
    expect(repairs[0]!.script).toContain(
      'if [ -f /v/history.db ] && [ ! -L /v/history.db ]; then chown -h 1000\\:1000 /v/history.db; chmod 0644 /v/history.db; fi',
    );
    expect(repairs[0]!.script).not.toContain('/opt/openclaw');
    const argv = volumeRepairArgv(`sha256:${'a'.repeat(64)}`, repairs[0]!);
    expect(argv).toEqual(expect.arrayContaining(['--network', 'none', '--read-only', '--cap-drop', 'ALL']));
    expect(argv).toContain('type=bind,source=/opt/openclaw/memory,target=/v');
    // A file outside every volume, or a plan that is not an owner and a mode, is refused, not run.
    expect(() => volumeRepairs(targets, [planned('/etc/passwd', '0644')], 'vps1')).toThrow(/not inside a volume/);
    expect(() => volumeRepairs(targets, [planned('/opt/openclaw/memory/history.db', '0644; reboot')], 'vps1')).toThrow(
      /is not uid:gid and a mode/,
    );
  });

  it('repairs a file as planned, but a file swapped for a link after the plan leaves the link target untouched', () => {
    // The repair container for real (local Docker, the base image scripts/setup.sh builds), on a temp dir standing
    // in for the memory volume, with a host file outside it that a link in the volume points at.
    const root = mkdtempSync(join(tmpdir(), 'steward-memory-repair-'));
    const dir = join(root, 'memory');
    const target = join(root, 'host-file');
    execFileSync('install', ['-d', '-o', '1000', '-g', '1000', '-m', '0700', dir]);
    const real = join(dir, 'history.db');
    const link = join(dir, 'vector_store.db');
    writeFileSync(real, 'db', { mode: 0o666 });
    writeFileSync(target, 'host data', { mode: 0o640 });
    symlinkSync(target, link);
    const before = statSync(target);
    const memoryTargets = {
      ...targets,
      directories: targets.directories.map((d) =>
        d.volume.path === '/opt/openclaw/memory' ? { ...d, volume: { ...d.volume, path: dir } } : d,
      ),
    };
    const planned = (path: string, mode: string) => ({
      resource: `file:${path}`,
      action: 'update' as const,
      after: { owner: '1000:1000', mode },
    });
    const repairs = volumeRepairs(memoryTargets, [planned(real, '0644'), planned(link, '0600')], 'local');
    for (const r of repairs) {
      const [command, ...args] = volumeRepairArgv('steward/debian-base:bookworm', r);
      execFileSync(command!, args);
    }
    expect(statSync(real)).toMatchObject({ uid: 1000, gid: 1000, mode: 0o100644 });
    const after = statSync(target);
    expect([after.uid, after.gid, after.mode]).toEqual([before.uid, before.gid, before.mode]);
    expect(readFileSync(target, 'utf8')).toBe('host data');
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(lstatSync(link).uid).toBe(0);
    rmSync(root, { recursive: true, force: true });
  });

  it('keeps modes within a ceiling by removing bits, never adding them', () => {
    expect(modeWithin('0600', '0644')).toBe(true);
    expect(modeWithin('0664', '0644')).toBe(false);
    expect(narrowMode('0666', '0644')).toBe('0644');
    expect(narrowMode('0660', '0600')).toBe('0600');
  });
});

describe('sqlite3 output', () => {
  it('reads integrity, journal mode, damage, locks and missing tools', () => {
    expect(parseIntegrity('/m/h.db', 'rc=0 ms=12\nok\ndelete\n')).toMatchObject({
      state: 'ok',
      journalMode: 'delete',
      ms: 12,
    });
    expect(parseIntegrity('/m/h.db', 'rc=26 ms=3\nError: in prepare, file is not a database (26)\n')).toMatchObject({
      state: 'damaged',
      evidence: 'Error: in prepare, file is not a database (26)',
    });
    expect(parseIntegrity('/m/h.db', 'rc=0 ms=3\n*** in database main ***\nPage 3 is never used\nwal\n')).toMatchObject(
      { state: 'damaged', evidence: '*** in database main *** | Page 3 is never used' },
    );
    expect(parseIntegrity('/m/h.db', 'rc=5 ms=5001\nError: database is locked\n').state).toBe('locked');
    expect(parseIntegrity('/m/h.db', 'rc=14\nError: unable to open database file\n')).toMatchObject({
      state: 'inaccessible',
    });
    expect(parseIntegrity('/m/h.db', 'rc=absent\n').state).toBe('absent');
    expect(parseIntegrity('/m/h.db', 'rc=no-sqlite3\n').state).toBe('no-sqlite3');
    expect(parseIntegrity('/m/h.db', 'rc=symlink\n')).toMatchObject({
      state: 'symlink',
      evidence: expect.stringMatching(/^a symbolic link where the database belongs/),
    });
  });

  it('reports integrity and journal mode as controls', () => {
    const controls = integrityControls([
      parseIntegrity('/m/history.db', 'rc=0 ms=4\nok\nwal\n'),
      parseIntegrity('/m/vector_store.db', 'rc=0 ms=4\nok\noff\n'),
      parseIntegrity('/m/new.db', 'rc=absent\n'),
    ]);
    expect(controls.map((c) => [c.control, c.status])).toEqual([
      ['memory.integrity.history.db', 'pass'],
      ['memory.journal-mode.history.db', 'pass'],
      ['memory.integrity.vector_store.db', 'pass'],
      ['memory.journal-mode.vector_store.db', 'fail'],
      ['memory.integrity.new.db', 'not-applicable'],
    ]);
    expect(controls[0]?.durationMs).toBe(4);
  });
});

describe('proof controls', () => {
  const user = 'steward-probe';
  const text = canaryText('c0ffee', 'canary');
  const ok = (step: ProofReport['steps'][number]['step'], detail: Record<string, unknown> = {}, ms = 5) => ({
    step,
    ok: true,
    ms,
    detail,
  });
  const healthy: ProofReport = parseProofReport(
    {
      warnings: [],
      steps: [
        ok('init'),
        ok('cleanup', { removed: 0 }),
        ok('write', { id: 'm1' }),
        ok('read', { id: 'm1' }),
        ok('search', { id: 'm1', score: 0.52, results: 1 }),
        ok('history', { id: 'm1', entries: 1 }),
        ok('delete', { id: 'm1' }),
        ok('gone', { id: 'm1' }),
        ok('embed', { length: 1536 }),
      ],
      history: { enabled: true },
      config: { searchThreshold: 0.1, storeDimension: 1536, effectiveHistoryDbPath: '/home/node/memory/history.db' },
    },
    'vps1',
  );

  it('canaries are recognisable by their prefix', () => {
    expect(text.startsWith(CANARY_PREFIX)).toBe(true);
    expect(text).toContain('c0ffee');
  });

  it('passes every step of a healthy canary, with each step timed', () => {
    const controls = [...canaryControls(healthy, user), historyControl(healthy)];
    expect(controls.every((c) => c.status === 'pass')).toBe(true);
    expect(controls.find((c) => c.control === 'memory.canary.search')).toMatchObject({
      expected: 'found by search at the threshold 0.1',
      observed: 'found, score 0.520 (1 results)',
      durationMs: 5,
    });
  });

  it('says "history disabled" when mem0 silently runs without history', () => {
    const report: ProofReport = {
      ...healthy,
      warnings: ['[mem0] Memory initialization failed, retrying with history disabled: unable to open database file'],
      history: { enabled: false },
      steps: healthy.steps.map((s) =>
        s.step === 'history'
          ? { step: 'history', ok: false, ms: 0, error: 'history disabled: mem0 runs without its history database' }
          : s,
      ),
    };
    expect(historyControl(report)).toMatchObject({
      status: 'fail',
      observed:
        'history disabled: [mem0] Memory initialization failed, retrying with history disabled: unable to open database file',
    });
    expect(canaryControls(report, user).find((c) => c.control === 'memory.canary.history')?.status).toBe('fail');
  });

  it('fails every canary control with the reason when mem0 does not start', () => {
    const report: ProofReport = {
      ...healthy,
      steps: [{ step: 'init', ok: false, ms: 0, error: 'the gateway container is exited' }],
    };
    const controls = canaryControls(report, user);
    expect(
      controls.every(
        (c) => c.status === 'fail' && /mem0 did not start \(the gateway container is exited\)/.test(c.observed),
      ),
    ).toBe(true);
  });

  it('compares the embedder, the store and the stored vectors with the spec dimension', () => {
    const spec = makeSpec();
    expect(dimensionControl(spec, healthy, { 1536: 3 })).toMatchObject({
      status: 'pass',
      observed: 'embedder returns 1536; store configured for 1536; stored vectors 3×1536',
    });
    expect(dimensionControl(spec, healthy, { 1536: 3, 768: 2 }).status).toBe('fail');
    const smaller: ProofReport = { ...healthy, steps: [ok('embed', { length: 768 })] };
    expect(dimensionControl(spec, smaller, {})).toMatchObject({
      status: 'fail',
      observed: 'embedder returns 768; store configured for 1536; no stored vectors',
    });
    expect(dimensionControl(spec, undefined, undefined).status).toBe('not-applicable');
  });

  it('proves persistence only when the canary reads back after the restart and is deleted', () => {
    const write: ProofReport = { ...healthy, steps: [ok('write', { id: 'p1' })] };
    const back: ProofReport = {
      ...healthy,
      steps: [ok('init'), ok('read', { id: 'p1' }), ok('delete', { id: 'p1' }), ok('gone', { id: 'p1' })],
    };
    const restart = (ms?: number, error?: string) => ({ kind: 'restart' as const, ms, ...(error ? { error } : {}) });
    expect(persistenceControl('openclaw_gateway_1', write, back, restart(31_400), 33_000)).toMatchObject({
      status: 'pass',
      observed: 'read back after the restart (restart and health 31.4 s), then deleted',
      durationMs: 33_000,
    });
    const lost: ProofReport = {
      ...healthy,
      steps: [ok('init'), { step: 'read', ok: false, ms: 1, error: 'memory p1 not found' }],
    };
    expect(persistenceControl('openclaw_gateway_1', write, lost, restart(30_000), 31_000).observed).toBe(
      'lost across the restart: memory p1 not found',
    );
    expect(
      persistenceControl('g', write, undefined, restart(undefined, 'gateway: not healthy after 240 s'), 1).observed,
    ).toMatch(/^restart failed/);
  });

  it('proves persistence without a restart when a fresh container with only the volumes reads the canary back', () => {
    const write: ProofReport = { ...healthy, steps: [ok('write', { id: 'p1' })] };
    const back: ProofReport = {
      ...healthy,
      steps: [ok('init'), ok('read', { id: 'p1' }), ok('delete', { id: 'p1' }), ok('gone', { id: 'p1' })],
    };
    const fresh = persistenceControl('openclaw_gateway_1', write, back, { kind: 'fresh', ms: 2_300 }, 4_000);
    expect(fresh).toMatchObject({
      status: 'pass',
      expected: 'a canary written through openclaw_gateway_1 reads back in a fresh container that has only its volumes',
      observed: 'read back in a fresh container (2.3 s), then deleted; openclaw_gateway_1 kept serving',
    });
    const lost: ProofReport = {
      ...healthy,
      steps: [ok('init'), { step: 'read', ok: false, ms: 1, error: 'memory p1 not found' }],
    };
    expect(persistenceControl('g', write, lost, { kind: 'fresh', ms: 2_000 }, 3_000)).toMatchObject({
      status: 'fail',
      observed: 'lost outside the container: memory p1 not found',
    });
    const unwritten: ProofReport = { ...healthy, steps: [{ step: 'write', ok: false, ms: 1, error: 'disk full' }] };
    expect(persistenceControl('g', unwritten, undefined, { kind: 'fresh' }, 1).observed).toBe('not written: disk full');
  });

  it('runs the fresh proof container with only what a restart keeps, and never hands it secret values', () => {
    const spec = makeSpec();
    const id = 'c'.repeat(64);
    const image = `sha256:${'a'.repeat(64)}`;
    const argv = proofArgv(
      spec,
      id,
      {
        kind: 'fresh',
        image,
        tmpfs: ['/tmp', '/home/node/.cache', '/x:y', '/a/../etc'],
        envFile: '/opt/openclaw/secrets/gateway.env',
      },
      '/opt/plugin',
      { op: 'readback', id: 'p1', userId: 'u', prefix: 'p', text: 't' },
    );
    expect(argv.slice(0, 4)).toEqual(['docker', 'run', '--rm', '-i']);
    const flag = (name: string) => argv.flatMap((a, i) => (a === name ? [argv[i + 1]] : []));
    expect(flag('--volumes-from')).toEqual([id]);
    expect(flag('--network')).toEqual([`container:${id}`]);
    expect(flag('--tmpfs').map((t) => t!.split(':')[0])).toEqual(['/tmp', '/home/node/.cache']);
    expect(flag('--env-file')).toEqual(['/opt/openclaw/secrets/gateway.env']);
    expect(flag('-u')).toEqual(['1000:1000']);
    expect(flag('-e')).toEqual(['MEM0_TELEMETRY=false']);
    expect(argv).toContain('--read-only');
    expect(argv[argv.indexOf(image) - 1]).toBe('node');
    // Exec in the gateway is the other place: no new container.
    expect(
      proofArgv(spec, id, { kind: 'exec' }, '/opt/plugin', { op: 'write', userId: 'u', prefix: 'p', text: 't' })[1],
    ).toBe('exec');
  });
});

describe('steward memory check (CLI, no server)', () => {
  const NOWHERE = '127.0.0.1:9';
  const specWith = (memory: string): string => {
    const dir = mkdtempSync(join(tmpdir(), 'steward-memory-'));
    const path = join(dir, 'steward.yaml');
    writeFileSync(
      path,
      `version: 1\nhosts:\n  - { name: vps1, address: 203.0.113.10 }\nstack:\n  memory:\n${memory}\n`,
    );
    return path;
  };

  it('refuses a rest adapter without its server, and an unknown host, with exit 64 before contacting anything', async () => {
    const bad = await steward([
      '--spec',
      specWith('    check: { adapter: rest }'),
      '--address',
      NOWHERE,
      'memory',
      'check',
    ]);
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/stack\.memory\.check\.rest: rest is required when adapter is rest/);
    const ok = specWith('    probeUser: steward-probe');
    const unknown = await steward(['--spec', ok, '--address', NOWHERE, 'memory', 'check', '--repair', 'vps9']);
    expect(unknown.code).toBe(64);
    expect(unknown.stderr).toMatch(/unknown host vps9/);
  });

  it('documents --repair', async () => {
    const help = await steward(['memory', 'check', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--repair\s+back up damaged databases, fix owner\/mode drift/);
  });
});
