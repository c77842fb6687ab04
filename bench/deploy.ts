/**
 * deploy end to end through the CLI on provisioned simulators: with cold images (the host has none: OpenClaw and
 * Caddy stream from this machine's engine), with warm images (the host already has them by ID: nothing is sent),
 * and the no-op re-run. Prints the times, the bytes sent and skipped, and what skipping saved.
 *   npx tsx bench/deploy.ts
 */
import { execFileSync } from 'node:child_process';
import type { Simulator } from '../client/dev/simulator';
import type { ResultDocument } from '../client/operation';
import { writeSpec } from '../test/support/fixtures';
import { cliRun, report, withSimulators, withTemporal } from './support';

function bytes(doc: ResultDocument, kind: 'sent' | 'skipped'): number {
  const host = doc.hosts[0]!;
  if (kind === 'sent') {
    return host.changes.reduce(
      (n, c) => n + Number((c.after as { bytesSent?: number } | undefined)?.bytesSent ?? 0),
      0,
    );
  }
  return host.findings
    .filter((f) => f.id === 'image.present')
    .reduce((n, f) => n + Number(/; (\d+) MB not sent/.exec(f.message)?.[1] ?? 0) * 1e6, 0);
}

/** Loads the stack images into a simulator outside steward (docker save | docker load), to make it warm. */
function preload(sim: Simulator, images: readonly string[]): void {
  execFileSync('sh', ['-c', `docker save ${images.join(' ')} | docker exec -i ${sim.container} docker load -q`], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}

const IMAGES = ['steward/openclaw:2026.9.6', 'steward/caddy:2.6'];

await withTemporal((address) =>
  withSimulators(2, async ([cold, warm], keys) => {
    const spec = (sim: Simulator) => ['--spec', writeSpec(keys, [sim], {}, `${sim.name}.yaml`), '--address', address];
    await Promise.all([cliRun([...spec(cold!), 'provision']), cliRun([...spec(warm!), 'provision'])]);
    preload(warm!, IMAGES);

    const c = await cliRun([...spec(cold!), 'deploy']);
    const w = await cliRun([...spec(warm!), 'deploy']);
    const noop = await cliRun([...spec(cold!), 'deploy']);

    const sent = bytes(c.doc, 'sent');
    const skipped = bytes(w.doc, 'skipped');
    console.log('deploy of the OpenClaw stack (OpenClaw 2026.9.6 + Caddy) on provisioned simulators, through the CLI');
    report('deploy, cold images (streamed)', c.seconds, 's');
    report('deploy, warm images (already on the host)', w.seconds, 's');
    report('deploy, no-op re-run', noop.seconds, 's');
    report('bytes sent, cold (gzip)', sent / 1e6, 'MB');
    report('bytes not sent, warm (image size on disk)', skipped / 1e6, 'MB');
    report('time saved by skipping present images', c.seconds - w.seconds, 's');
    console.log(
      `warm / cold: ${(w.seconds / c.seconds).toFixed(2)}×; cold / warm: ${(c.seconds / w.seconds).toFixed(2)}×`,
    );
  }),
);
