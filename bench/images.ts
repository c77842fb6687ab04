/**
 * Images onto a host without a registry, to a simulator provisioned through the CLI: cold transfer of a realistic
 * image (steward/vps:bookworm, ~226 MB) gzip-compressed (the default) and raw, the warm re-run that skips it, and
 * two images sharing a base sent in one save against one save each.
 *   npx tsx bench/images.ts [runs]
 */
import Docker from 'dockerode';
import { transferImages, type ImageTransferResult } from '../activities/deploy/images';
import { openSession, type HostSession } from '../activities/host/session';
import { run } from '../activities/host/shell';
import { hostName, writeSpec } from '../test/support/fixtures';
import { median, report, timeCli, withSimulators, withTemporal } from './support';

const RUNS = Number(process.argv[2] ?? 3);
const IMAGE = 'steward/vps:bookworm';
/** IMAGE's base: all but ~10 kB of IMAGE's bytes are this image's one layer. */
const BASE = 'steward/debian-base:bookworm';
const MB = 1e6;

const local = new Docker({ socketPath: '/var/run/docker.sock' });

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

await withTemporal((address) =>
  withSimulators(1, async ([sim], keys) => {
    const provision = await timeCli(['--spec', writeSpec(keys, [sim!]), '--address', address, 'provision']);
    const target = { name: hostName(sim!), address: sim!.address, port: sim!.port, identityFile: keys.privateKeyPath };
    const session = await openSession(
      { ...target, loginUser: 'steward', opsUser: 'steward', hostKey: sim!.hostKey, trustOnFirstUse: false },
      'steward',
    );
    try {
      const size = (await local.getImage(IMAGE).inspect()).Size;
      const cold = async (compress: boolean) => {
        const runs: { s: number; bytes: number }[] = [];
        for (let i = 0; i < RUNS; i++) {
          await forget(session, IMAGE);
          runs.push(await timed(() => transferImages(session, local, [IMAGE], { compress })));
        }
        return { s: median(runs.map((r) => r.s)), bytes: runs[0]!.bytes };
      };
      const gzip = await cold(true);
      const raw = await cold(false);

      const warmRuns: number[] = [];
      let skipped = 0;
      for (let i = 0; i < RUNS; i++) {
        const start = performance.now();
        const r = await transferImages(session, local, [IMAGE]);
        warmRuns.push((performance.now() - start) / 1000);
        if (r.transferred.length > 0) throw new Error('warm re-run transferred an image');
        skipped = r.skipped.reduce((sum, s) => sum + s.bytes, 0);
      }
      const warm = median(warmRuns);

      const together: { s: number; bytes: number }[] = [];
      const apart: { s: number; bytes: number }[] = [];
      for (let i = 0; i < RUNS; i++) {
        await forget(session, IMAGE, BASE);
        together.push(await timed(() => transferImages(session, local, [BASE, IMAGE], { compress: false })));
        await forget(session, IMAGE, BASE);
        const each = [await timed(() => transferImages(session, local, [BASE], { compress: false }))];
        each.push(await timed(() => transferImages(session, local, [IMAGE], { compress: false })));
        apart.push({ s: each[0]!.s + each[1]!.s, bytes: each[0]!.bytes + each[1]!.bytes });
      }
      const oneSave = { s: median(together.map((r) => r.s)), bytes: together[0]!.bytes };
      const saveEach = { s: median(apart.map((r) => r.s)), bytes: apart[0]!.bytes };

      console.log(`${IMAGE} (${(size / MB).toFixed(1)} MB) to one provisioned simulator over SSH; median of ${RUNS}`);
      report('provision through the CLI (for reference)', provision, 's');
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
      report(`${BASE} + ${IMAGE}, one save (raw)`, oneSave.s, 's');
      report('  bytes sent', oneSave.bytes / MB, 'MB');
      report('the same, one save each (raw)', saveEach.s, 's');
      report('  bytes sent', saveEach.bytes / MB, 'MB');
    } finally {
      await session.close();
    }
  }),
);
