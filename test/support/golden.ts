/**
 * Golden hosts: a simulator provisioned (and one provisioned and hardened) through steward's own CLI once per test
 * run, snapshotted as an image, for the files that only need such a host as a fixture. Each file then boots its own
 * simulator from the snapshot (new host keys, its own operator key for the login user, root and the ops user), so
 * it starts where its own `provision` (or `harden`) would have left it, minutes sooner. Files that test provisioning,
 * durability or the dev environment keep fresh hosts.
 *
 * The first file that asks for a kind builds it, under a lock, with a worker of its own; the images are tagged with
 * the run's id and removed when the run ends (global-setup.ts). Fresh provisions share a package cache
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
import Docker from 'dockerode';
import { inject } from 'vitest';
import { snapshotSimulator, startSimulator } from '../../client/dev/simulator';
import { phase } from './phases';

export type GoldenKind = 'provisioned' | 'hardened';

export const GOLDEN_REPO = 'steward-test/golden';
/** Label on every golden image, with the id of the run that made it. */
export const GOLDEN_RUN_LABEL = 'steward.test.golden-run';
/** The ops user a golden host was provisioned with (the spec's default), whose authorized_keys a file replaces. */
export const GOLDEN_OPS_USER = 'steward';

const LOCK_FILE = resolve('.steward/golden.lock');
const LOCK_STALE_MS = 30 * 60_000;
/** Shared across runs on a machine: downloaded .debs are verified by apt against its index before use. */
const APT_CACHE = process.env.STEWARD_TEST_APT_CACHE || join(homedir(), '.cache/steward/apt-archives');

const docker = new Docker({ socketPath: '/var/run/docker.sock' });

/** The run's golden image of `kind`, built by this call if no file of the run built it yet. */
export async function goldenImage(kind: GoldenKind): Promise<string> {
  const ref = `${GOLDEN_REPO}:${kind}-${inject('testRunId')}`;
  if (await imageExists(ref)) return ref;
  // The hardened host starts from the provisioned one: that is built first, outside this kind's turn at the lock.
  const base = kind === 'hardened' ? await goldenImage('provisioned') : undefined;
  return withLock(async () => {
    if (await imageExists(ref)) return ref;
    await phase(`golden ${kind} host (once per run)`, () => buildGolden(kind, ref, base));
    return ref;
  });
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

async function buildGolden(kind: GoldenKind, ref: string, base: string | undefined): Promise<void> {
  // Imported here: fixtures imports this module.
  const { cliFor, makeKeyPair, startWorker, writeSpec } = await import('./fixtures');
  const { testEnv } = await import('./temporal');
  const env = await testEnv();
  const keys = makeKeyPair();
  const queue = `golden-${kind}-${inject('testRunId')}`;
  const worker = await startWorker(env, queue);
  const sim = await startSimulator({
    authorizedKey: keys.publicKey,
    name: `golden-${kind}-${inject('testRunId')}`,
    aptCacheDir: aptCacheFor(true),
    labels: { 'steward.test': 'golden' },
    ...(base ? { image: base, keyUsers: [GOLDEN_OPS_USER] } : {}),
  });
  let snapshotted = false;
  try {
    const op = kind === 'hardened' ? 'harden' : 'provision';
    const r = await cliFor(env, queue)(writeSpec(keys, [sim], {}, `golden-${kind}.yaml`), op);
    if (r.code !== 0) throw new Error(`golden ${kind} host: ${op} failed (exit ${r.code}): ${r.stderr || r.stdout}`);
    await snapshotSimulator(sim.container, ref, { [GOLDEN_RUN_LABEL]: inject('testRunId'), 'steward.test': 'golden' });
    snapshotted = true;
  } finally {
    if (!snapshotted)
      await docker
        .getContainer(sim.container)
        .remove({ force: true, v: true })
        .catch(() => {});
    await worker.stop();
    await env.teardown();
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
