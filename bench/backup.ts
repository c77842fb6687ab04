/**
 * Backup and restore times for a memory store of a realistic size: one simulator provisioned and deployed through the
 * CLI, the stand-in embedder beside it (test double for the embedding API), then MEMORIES memories added through the
 * mem0 plugin inside the gateway (infer off, one embedding each, in batches). Measured end to end through the CLI:
 * the first backup, a second with nothing changed (incremental), one after 1% more memories, a restore of the newest
 * snapshot (the gateway stopped, volumes swapped, canary proven), and a drill. Prints each time, the archive's size,
 * what each backup added to the repository, and the repository's size.
 *   npx tsx bench/backup.ts [memories]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { simulatorExec, type Simulator } from '../client/dev/simulator';
import type { ResultDocument } from '../client/operation';
import { MEM0_PLUGIN_PATH } from '../model/render/stack';
import type { SpecInput } from '../model/schema';
import { doubleProviders, startEmbedderDouble } from '../test/support/embedder-double';
import { writeSpec } from '../test/support/fixtures';
import { cliRun, report, withSimulators, withTemporal } from './support';

const MEMORIES = Number(process.argv[2] ?? 10_000);
const IMAGE = 'steward/openclaw:2026.9.6';
const PASSWORD_ENV = 'STEWARD_BENCH_BACKUP_PASSWORD';
const KEY_ENV = 'STEWARD_BENCH_EMBEDDER_KEY';

/**
 * Adds `count` memories for user `bench` through the plugin's own provider, 50 at a time, as the gateway's uid. The
 * plugin imports openclaw/plugin-sdk, which resolves from the global install.
 */
const FILL_JS = String.raw`
import { registerHooks } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
const [pluginPath, count, offset] = process.argv.slice(2);
const globalModules = join(dirname(process.execPath), '..', 'lib', 'node_modules') + '/';
registerHooks({ resolve: (s, c, next) => (s === 'openclaw' || s.startsWith('openclaw/')) ? next(s, { ...c, parentURL: pathToFileURL(globalModules).href }) : next(s, c) });
console.log = () => {}; console.info = () => {}; console.warn = () => {};
const live = JSON.parse(readFileSync(join(process.env.HOME, '.openclaw', 'openclaw.json'), 'utf8'));
const expand = (v) => typeof v === 'string' ? v.replace(/\$\{([A-Z_][A-Z0-9_]*)\}/g, (_, k) => process.env[k] ?? '')
  : Array.isArray(v) ? v.map(expand) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, expand(x)])) : v;
const plugin = await import(pathToFileURL(join(pluginPath, 'dist', 'index.js')).href);
const cfg = plugin.mem0ConfigSchema.parse(expand(live.plugins.entries['openclaw-mem0'].config));
const provider = plugin.createProvider(cfg, { resolvePath: (p) => p });
await provider.ensureMemory();
const topics = ['the garden', 'a trip to Lisbon', 'the quarterly report', 'a birthday', 'the new laptop', 'a recipe'];
for (let i = Number(offset); i < Number(offset) + Number(count); i += 50) {
  await Promise.all(Array.from({ length: Math.min(50, Number(offset) + Number(count) - i) }, (_, j) => {
    const n = i + j;
    const text = 'memory ' + n + ': the user mentioned ' + topics[n % topics.length] + ' on day ' + (n % 365) + ' and asked to be reminded about it later';
    return provider.add([{ role: 'user', content: text }], { user_id: 'bench', infer: false });
  }));
}
process.stdout.write('filled ' + count + '\n');
`;

async function fill(sim: Simulator, count: number, offset: number): Promise<number> {
  const s = performance.now();
  const r = await simulatorExec(
    sim.container,
    [
      'docker',
      'exec',
      '-i',
      '-u',
      '1000:1000',
      '-e',
      'MEM0_TELEMETRY=false',
      'openclaw_gateway_1',
      'node',
      '--input-type=module',
      '-',
      MEM0_PLUGIN_PATH,
      String(count),
      String(offset),
    ],
    FILL_JS,
  );
  if (!r.stdout.includes(`filled ${count}`)) throw new Error(`filling memories failed: ${r.stderr.slice(-600)}`);
  return (performance.now() - s) / 1000;
}

function bytesUnder(dir: string): number {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => statSync(join(dir, f)))
    .filter((st) => st.isFile())
    .reduce((n, st) => n + st.size, 0);
}

function snapshotOf(doc: ResultDocument): { bytes: number; added: number } {
  const c = doc.hosts[0]!.changes.find((x) => x.resource.startsWith('snapshot:') && x.action === 'create');
  if (!c) throw new Error('the backup reported no snapshot');
  return c.after as { bytes: number; added: number };
}

const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

const scratch = mkdtempSync(join(tmpdir(), 'steward-bench-backup-'));
process.env[PASSWORD_ENV] = randomBytes(24).toString('hex');
process.env[KEY_ENV] = `sk-bench-${randomBytes(24).toString('hex')}`;
try {
  await withTemporal((address) =>
    withSimulators(1, async ([sim], keys) => {
      const repository = join(scratch, 'repo');
      const spec: Partial<SpecInput> = {
        stack: {
          image: IMAGE,
          compressImages: false,
          memory: { ...doubleProviders('embedder-key', 256), check: { minFreeMegabytes: 100 } },
        },
        proxy: { domain: 'bench.steward.test' },
        secrets: {
          'gateway-token': { generate: { length: 48 } },
          'embedder-key': { external: { env: KEY_ENV } },
          'backup-password': { external: { env: PASSWORD_ENV } },
        },
        backup: { repository, passwordSecret: 'backup-password' },
      };
      const file = writeSpec(keys, [sim!], spec);
      const base = ['--spec', file, '--address', address];
      for (const op of ['provision', 'deploy']) await cliRun([...base, op]);
      await startEmbedderDouble(sim!, IMAGE);
      const filled = await fill(sim!, MEMORIES, 0);
      const store = (
        await simulatorExec(sim!.container, ['sh', '-c', 'du -sb /opt/openclaw/memory | cut -f1'])
      ).stdout.trim();

      const first = await cliRun([...base, 'backup']);
      const afterFirst = bytesUnder(repository);
      const second = await cliRun([...base, 'backup']);
      const afterSecond = bytesUnder(repository);
      await fill(sim!, Math.ceil(MEMORIES / 100), MEMORIES);
      const third = await cliRun([...base, 'backup']);
      const afterThird = bytesUnder(repository);
      const restore = await cliRun([...base, 'restore', sim!.name.replace(/^steward-vps-/, '')]);
      const drill = await cliRun([...base, 'restore', '--drill', sim!.name.replace(/^steward-vps-/, '')]);
      const proven = (d: ResultDocument) =>
        d.hosts[0]!.controls?.find((c) => c.control === 'backup.restore.canary-search')?.status;
      if (proven(restore.doc) !== 'pass' || proven(drill.doc) !== 'pass') throw new Error('a restore was not proven');
      const rto = drill.doc.hosts[0]!.controls?.find((c) => c.control === 'backup.rto')?.observed;

      console.log(
        `${MEMORIES} memories added through mem0 in ${filled.toFixed(1)} s; memory volume ${mb(Number(store))}`,
      );
      const s1 = snapshotOf(first.doc);
      const s2 = snapshotOf(second.doc);
      const s3 = snapshotOf(third.doc);
      report('backup, first (repository created)', first.seconds, 's');
      console.log(`  archive ${mb(s1.bytes)}, added ${mb(s1.added)}, repository ${mb(afterFirst)}`);
      report('backup, nothing changed', second.seconds, 's');
      console.log(`  added ${mb(s2.added)}, repository +${mb(afterSecond - afterFirst)}`);
      report(`backup after ${Math.ceil(MEMORIES / 100)} more memories`, third.seconds, 's');
      console.log(`  added ${mb(s3.added)}, repository +${mb(afterThird - afterSecond)}`);
      report('restore (stage, swap, restart, canary proven)', restore.seconds, 's');
      report('drill (stage, canary proven beside production)', drill.seconds, 's');
      console.log(`  the drill's own RTO control: ${rto}`);
      console.log(
        `ratios: incremental/first ${(second.seconds / first.seconds).toFixed(2)}, repository/archive ` +
          `${(afterFirst / s1.bytes).toFixed(2)}`,
      );
    }),
  );
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
