/**
 * Golden hosts: a simulator provisioned (and one provisioned and hardened) through steward's own CLI once per test
 * run, snapshotted as an image, for the files that only need such a host as a fixture. Each file then boots its own
 * simulator from the snapshot (new host keys, its own operator key for the login user, root and the ops user), so
 * it starts where its own `provision` (or `harden`) would have left it, minutes sooner. Files that test provisioning,
 * durability or the dev environment keep fresh hosts.
 *
 * The global setup builds the kinds the run's files ask for in a child process (this module run as a script) while
 * the unit tests run, which leave the machine half idle; a file that asks before it is done waits for it, and if it
 * failed, the first file that asks builds it itself. Either way one build at a time, under a lock, with a worker of
 * its own. The images are tagged with the run's id and removed when the run ends (global-setup.ts). This module
 * imports nothing from vitest, so it also runs as that child. Fresh provisions share a package cache
 * ({@link aptCacheFor}): the golden build fills it, and every fresh simulator starts from a hard-linked copy of it,
 * so apt downloads each package once per machine and no two simulators ever hold the same apt lock.
 */
import {
  closeSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import Docker from 'dockerode';
import { ownerLabels, snapshotSimulator, startSimulator } from '../../client/dev/simulator';
import { keyRingFromEnv } from '../../codec/keys';
import { createWorker } from '../../workers/worker';
import { steward } from './cli';
import { makeKeyPair, writeSpec } from './spec-files';

export type GoldenKind = 'provisioned' | 'hardened';
export const GOLDEN_KINDS: readonly GoldenKind[] = ['provisioned', 'hardened'];

/** What a build needs of the test run: its id (names the images) and its Temporal server and workflow bundle. */
export interface GoldenRun {
  readonly runId: string;
  readonly address: string;
  readonly namespace: string;
  readonly bundlePath: string;
}

/** Times a build (the fixtures record it as a setup phase of the file that waited for it). */
export type Timer = <T>(name: string, body: () => Promise<T>) => Promise<T>;

export const GOLDEN_REPO = 'steward-test/golden';
/**
 * Owner labels of a test run's simulators: its main process (the global setup sets STEWARD_TEST_OWNER_PID), so the
 * next run reaps what a killed one left (removeOrphanedSimulators).
 */
export function testRunOwner(): Record<string, string> {
  return ownerLabels(Number(process.env.STEWARD_TEST_OWNER_PID) || process.pid);
}

/** Label on every golden image, with the id of the run that made it. */
export const GOLDEN_RUN_LABEL = 'steward.test.golden-run';
/** The ops user a golden host was provisioned with (the spec's default), whose authorized_keys a file replaces. */
export const GOLDEN_OPS_USER = 'steward';

const LOCK_FILE = resolve('.steward/golden.lock');
const LOCK_STALE_MS = 30 * 60_000;
/** Shared across runs on a machine: downloaded .debs are verified by apt against its index before use. */
const APT_CACHE = process.env.STEWARD_TEST_APT_CACHE || join(homedir(), '.cache/steward/apt-archives');

const docker = new Docker({ socketPath: '/var/run/docker.sock' });

/** The run's golden image of `kind`, built by this call if nothing in the run built it yet (or is building it). */
export async function goldenImage(
  kind: GoldenKind,
  run: GoldenRun,
  timed: Timer = (_, body) => body(),
): Promise<string> {
  const ref = goldenRef(kind, run.runId);
  if (await imageExists(ref)) return ref;
  // The hardened host starts from the provisioned one: that is built first, outside this kind's turn at the lock.
  const base = kind === 'hardened' ? await goldenImage('provisioned', run, timed) : undefined;
  return timed(`golden ${kind} host (built once per run, or waited for)`, () =>
    withLock(async () => {
      if (!(await imageExists(ref))) await buildGolden(kind, ref, base, run);
      return ref;
    }),
  );
}

export function goldenRef(kind: GoldenKind, runId: string): string {
  return `${GOLDEN_REPO}:${kind}-${runId}`;
}

/**
 * A directory for one simulator's /var/cache/apt/archives, holding hard links to every package in the shared cache;
 * with `share`, the shared cache itself (only for one simulator at a time: apt locks the directory). Call
 * {@link harvestAptCache} when the simulator is done to keep what it downloaded.
 */
export function aptCacheFor(share = false): string {
  mkdirSync(APT_CACHE, { recursive: true });
  if (share) return APT_CACHE;
  const dir = mkdtempSync(join(APT_CACHE, '..', 'apt-archives.'));
  for (const f of readdirSync(APT_CACHE)) {
    if (f.endsWith('.deb')) link(join(APT_CACHE, f), join(dir, f));
  }
  return dir;
}

/** Moves packages a simulator downloaded into the shared cache, then removes its directory. */
export function harvestAptCache(dir: string): void {
  if (resolve(dir) === resolve(APT_CACHE)) return;
  try {
    for (const f of readdirSync(dir)) {
      if (f.endsWith('.deb')) link(join(dir, f), join(APT_CACHE, f));
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A hard link at `to` to `from`, replacing what was there (`ln -f` without a process per file). */
function link(from: string, to: string): void {
  rmSync(to, { force: true });
  linkSync(from, to);
}

async function buildGolden(kind: GoldenKind, ref: string, base: string | undefined, run: GoldenRun): Promise<void> {
  const keys = makeKeyPair();
  const codecKeys = await keyRingFromEnv();
  if (!codecKeys) throw new Error('golden host: no codec keys (global-setup.ts sets STEWARD_CODEC_KEY_FILE)');
  const taskQueue = `golden-${kind}-${run.runId}`;
  const { worker, pool, connection } = await createWorker({
    address: run.address,
    namespace: run.namespace,
    taskQueue,
    workflowBundle: { codePath: run.bundlePath },
    keys: codecKeys,
  });
  const running = worker.run();
  let container: string | undefined;
  let snapshotted = false;
  try {
    const sim = await startSimulator({
      authorizedKey: keys.publicKey,
      name: `golden-${kind}-${run.runId}`,
      aptCacheDir: aptCacheFor(true),
      labels: { ...testRunOwner(), 'steward.test': 'golden' },
      ...(base ? { image: base, keyUsers: [GOLDEN_OPS_USER] } : {}),
    });
    container = sim.container;
    const specFile = writeSpec(keys, [sim], {}, `golden-${kind}.yaml`);
    const op = kind === 'hardened' ? 'harden' : 'provision';
    const r = await steward([
      ...['--spec', specFile, '--address', run.address, '--namespace', run.namespace],
      ...['--task-queue', taskQueue, '--json', op],
    ]);
    if (r.code !== 0) throw new Error(`golden ${kind} host: ${op} failed (exit ${r.code}): ${r.stderr || r.stdout}`);
    await snapshotSimulator(sim.container, ref, { [GOLDEN_RUN_LABEL]: run.runId, 'steward.test': 'golden' });
    snapshotted = true;
  } finally {
    if (container && !snapshotted)
      await docker
        .getContainer(container)
        .remove({ force: true, v: true })
        .catch(() => {});
    worker.shutdown();
    await running;
    await pool.closeAll();
    await connection.close();
    rmSync(keys.dir, { recursive: true, force: true });
  }
}

/** Removes the golden images of run `runId` (the run's teardown), and any left by runs older than a day. */
export async function removeGoldenImages(runId: string): Promise<void> {
  const images = await docker.listImages({ filters: { label: [GOLDEN_RUN_LABEL] } });
  const dayAgo = Date.now() / 1000 - 86_400;
  for (const image of images) {
    if (image.Labels?.[GOLDEN_RUN_LABEL] !== runId && image.Created > dayAgo) continue;
    await docker
      .getImage(image.Id)
      .remove({ force: true })
      .catch(() => {});
  }
}

async function imageExists(ref: string): Promise<boolean> {
  try {
    await docker.getImage(ref).inspect();
    return true;
  } catch {
    return false;
  }
}

/** One builder at a time across the run's processes: an exclusive lock file holding the holder's pid. */
async function withLock<T>(body: () => Promise<T>): Promise<T> {
  mkdirSync(resolve('.steward'), { recursive: true });
  for (;;) {
    try {
      const fd = openSync(LOCK_FILE, 'wx');
      writeFileSync(fd, `${process.pid} ${Date.now()}\n`);
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (lockIsStale()) rmSync(LOCK_FILE, { force: true });
      else await sleep(500);
    }
  }
  try {
    return await body();
  } finally {
    rmSync(LOCK_FILE, { force: true });
  }
}

function lockIsStale(): boolean {
  try {
    const [pid, since] = readFileSync(LOCK_FILE, 'utf8').trim().split(' ').map(Number);
    if (Date.now() - (since ?? 0) > LOCK_STALE_MS) return true;
    process.kill(pid!, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'EPERM';
  }
}

/**
 * Run as a script by the global setup: `node --import tsx test/support/golden.ts KIND...`, the run in
 * `$STEWARD_TEST_GOLDEN_RUN` (JSON {@link GoldenRun}). Builds the kinds in order; exit 1 with the error when one fails.
 */
if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const run = JSON.parse(process.env.STEWARD_TEST_GOLDEN_RUN ?? '{}') as GoldenRun;
  try {
    for (const kind of process.argv.slice(2) as GoldenKind[]) {
      if (!GOLDEN_KINDS.includes(kind)) throw new Error(`unknown golden kind ${kind}`);
      const started = Date.now();
      await goldenImage(kind, run);
      console.log(`golden ${kind} host ready ${((Date.now() - started) / 1000).toFixed(1)} s after it was asked for`);
    }
    process.exit(0);
  } catch (err) {
    console.error(`golden host prebuild failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  }
}
