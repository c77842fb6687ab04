/**
 * Images onto a host without a registry, to a simulator provisioned through the CLI: the local cache built once per
 * image, cold transfer of a realistic image (steward/vps:bookworm, ~226 MB) gzip-compressed (the default) and raw,
 * the warm re-run that skips it, an image that differs from it only in its config (`FROM` it plus a `LABEL`) sent
 * after it, a transfer cut halfway and resumed, and two images sharing a base sent in one call against one call each.
 *   npx tsx bench/images.ts [runs]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { ImageCache } from '../activities/deploy/image-cache';
import { transferImages, type ImageTransferResult, type TransferImagesOptions } from '../activities/deploy/images';
import { openSession, type HostSession } from '../activities/host/session';
import { run } from '../activities/host/shell';
import { hostName, writeSpec } from '../test/support/fixtures';
import { median, report, timeCli, withSimulators, withTemporal } from './support';

const RUNS = Number(process.argv[2] ?? 3);
const IMAGE = 'steward/vps:bookworm';
/** IMAGE's base: all but ~10 kB of IMAGE's bytes are this image's one layer. */
const BASE = 'steward/debian-base:bookworm';
/** IMAGE plus a label: the same layers, another config. Built here, removed at the end. */
const LABELLED = `steward-bench/vps-labelled:${process.pid}`;
const MB = 1e6;

const local = new Docker({ socketPath: '/var/run/docker.sock' });
/** The bench's own image cache, so that the first figure shows a cold one and the operator's stays untouched. */
const cacheDir = mkdtempSync(join(tmpdir(), 'steward-bench-cache-'));

/** `docker build` of `FROM IMAGE` + a label, tagged LABELLED; its image ID. */
async function buildLabelled(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'steward-bench-build-'));
  try {
    writeFileSync(join(dir, 'Dockerfile'), `FROM ${IMAGE}\nLABEL steward.bench=config-only\n`);
    const context = spawn('tar', ['-C', dir, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const progress = await local.buildImage(context.stdout, { t: LABELLED, rm: true });
    await new Promise((resolve, reject) =>
      local.modem.followProgress(progress, (err, out) => (err ? reject(err) : resolve(out))),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return (await local.getImage(LABELLED).inspect()).Id;
}

/** Removes `refs` and their layers from the host, so the next transfer is cold. */
async function forget(session: HostSession, ...refs: string[]): Promise<void> {
  await session.check(`${run('docker', 'rmi', '-f', ...refs)} >/dev/null 2>&1; docker image prune -f >/dev/null`, {
    label: 'forget images',
  });
}

async function timed(body: () => Promise<ImageTransferResult>): Promise<{ s: number; bytes: number }> {
  const start = performance.now();
  const r = await body();
  return { s: (performance.now() - start) / 1000, bytes: r.transferred.reduce((sum, t) => sum + t.bytes, 0) };
}

/** transferImages with the bench's cache. */
function transfer(session: HostSession, images: string[], opts: TransferImagesOptions = {}) {
  return transferImages(session, local, images, { cacheDir, ...opts });
}

await withTemporal((address) =>
  withSimulators(1, async ([sim], keys) => {
    const provision = await timeCli(['--spec', writeSpec(keys, [sim!]), '--address', address, 'provision']);
    const target = { name: hostName(sim!), address: sim!.address, port: sim!.port, identityFile: keys.privateKeyPath };
    const open = () =>
      openSession(
        { ...target, loginUser: 'steward', opsUser: 'steward', hostKey: sim!.hostKey, trustOnFirstUse: false },
        'steward',
      );
    let session = await open();
    let labelledId: string | undefined;
    try {
      const { Id: imageId, Size: size } = await local.getImage(IMAGE).inspect();
      const cacheStart = performance.now();
      await new ImageCache(cacheDir).get(local, imageId);
      const cacheBuild = (performance.now() - cacheStart) / 1000;

      const cold = async (compress: boolean) => {
        const runs: { s: number; bytes: number }[] = [];
        for (let i = 0; i < RUNS; i++) {
          await forget(session, IMAGE);
          runs.push(await timed(() => transfer(session, [IMAGE], { compress })));
        }
        return { s: median(runs.map((r) => r.s)), bytes: runs[0]!.bytes };
      };
      const gzip = await cold(true);
      const raw = await cold(false);

      const warmRuns: number[] = [];
      let skipped = 0;
      for (let i = 0; i < RUNS; i++) {
        const start = performance.now();
        const r = await transfer(session, [IMAGE]);
        warmRuns.push((performance.now() - start) / 1000);
        if (r.transferred.length > 0) throw new Error('warm re-run transferred an image');
        skipped = r.skipped.reduce((sum, s) => sum + s.bytes, 0);
      }
      const warm = median(warmRuns);

      labelledId = await buildLabelled();
      await new ImageCache(cacheDir).get(local, labelledId);
      const base: { s: number; bytes: number }[] = [];
      const labelled: { s: number; bytes: number }[] = [];
      for (let i = 0; i < RUNS; i++) {
        await forget(session, IMAGE, LABELLED);
        base.push(await timed(() => transfer(session, [IMAGE])));
        labelled.push(await timed(() => transfer(session, [LABELLED])));
      }
      const baseFig = { s: median(base.map((r) => r.s)), bytes: base[0]!.bytes };
      const label = { s: median(labelled.map((r) => r.s)), bytes: labelled[0]!.bytes };

      // Cut when half the image went out, then the retry: what it sends is the rest. LABELLED holds IMAGE's layers.
      await forget(session, IMAGE, LABELLED);
      let cutAt = 0;
      await transfer(session, [IMAGE], {
        compress: false,
        onProgress: (bytes) => {
          if (bytes >= size / 2 && cutAt === 0) {
            cutAt = bytes;
            void session.close();
          }
        },
      }).catch(() => undefined);
      session = await open();
      const retryStart = performance.now();
      const retried = (await transfer(session, [IMAGE], { compress: false })).transferred[0]!;
      const retry = { s: (performance.now() - retryStart) / 1000, bytes: retried.bytes, resumed: retried.resumedBytes };

      const together: { s: number; bytes: number }[] = [];
      const apart: { s: number; bytes: number }[] = [];
      for (let i = 0; i < RUNS; i++) {
        await forget(session, IMAGE, BASE);
        together.push(await timed(() => transfer(session, [BASE, IMAGE], { compress: false })));
        await forget(session, IMAGE, BASE);
        const each = [await timed(() => transfer(session, [BASE], { compress: false }))];
        each.push(await timed(() => transfer(session, [IMAGE], { compress: false })));
        apart.push({ s: each[0]!.s + each[1]!.s, bytes: each[0]!.bytes + each[1]!.bytes });
      }
      const oneSave = { s: median(together.map((r) => r.s)), bytes: together[0]!.bytes };
      const saveEach = { s: median(apart.map((r) => r.s)), bytes: apart[0]!.bytes };

      console.log(`${IMAGE} (${(size / MB).toFixed(1)} MB) to one provisioned simulator over SSH; median of ${RUNS}`);
      report('provision through the CLI (for reference)', provision, 's');
      report('local cache: save + extract, once per image', cacheBuild, 's');
      report('cold transfer, gzip level 1 (default)', gzip.s, 's');
      report('  bytes sent', gzip.bytes / MB, 'MB');
      report('  image MB/s (wire MB/s)', size / MB / gzip.s, `MB/s (${(gzip.bytes / MB / gzip.s).toFixed(1)})`);
      report('cold transfer, raw', raw.s, 's');
      report('  bytes sent', raw.bytes / MB, 'MB');
      report('  image MB/s', size / MB / raw.s, 'MB/s');
      report('warm re-run (image already there: skipped)', warm, 's');
      report('  bytes not sent (image size)', skipped / MB, 'MB');
      report('  time saved against a cold gzip transfer', gzip.s - warm, 's');
      report('  time saved against a cold raw transfer', raw.s - warm, 's');
      report('config-only change: the base image (gzip)', baseFig.s, 's');
      report('  bytes sent', baseFig.bytes / MB, 'MB');
      report('  then FROM it + LABEL (gzip)', label.s, 's');
      report('  bytes sent', label.bytes / 1e3, 'kB');
      report('  bytes: base / label-only', baseFig.bytes / label.bytes, '×');
      report('cut at half the image, then the retry (raw)', retry.s, 's');
      report('  bytes sent before the cut', cutAt / MB, 'MB');
      report('  bytes already on the host at the retry', retry.resumed / MB, 'MB');
      report('  bytes sent by the retry', retry.bytes / MB, 'MB');
      report(`${BASE} + ${IMAGE}, one call (raw)`, oneSave.s, 's');
      report('  bytes sent', oneSave.bytes / MB, 'MB');
      report('the same, one call each (raw)', saveEach.s, 's');
      report('  bytes sent', saveEach.bytes / MB, 'MB');
    } finally {
      await session.close();
      if (labelledId)
        await local
          .getImage(labelledId)
          .remove({ force: true })
          .catch(() => undefined);
      rmSync(cacheDir, { recursive: true, force: true });
    }
  }),
);
