/**
 * harden on a freshly provisioned simulator, and its no-op re-run, end to end through the CLI. Target for the
 * re-run: ≤ 3 s.
 *   npx tsx bench/harden.ts [runs]
 */
import { writeSpec } from '../test/support/fixtures';
import { median, report, timeCli, withSimulators, withTemporal } from './support';

const RUNS = Number(process.argv[2] ?? 5);

await withTemporal((address) =>
  withSimulators(1, async (sims, keys) => {
    const base = ['--spec', writeSpec(keys, sims), '--address', address];
    const provision = await timeCli([...base, 'provision']);
    const harden = await timeCli([...base, 'harden']);
    const noop: number[] = [];
    for (let i = 0; i < RUNS; i++) noop.push(await timeCli([...base, 'harden']));
    console.log(`harden of one provisioned simulator; ${RUNS} no-op re-runs through the CLI`);
    report('provision (fresh host, for reference)', provision, 's');
    report('harden (freshly provisioned host)', harden, 's');
    report('harden no-op re-run median (end to end)', median(noop), 's', 3);
    report('harden no-op re-run max', Math.max(...noop), 's');
  }),
);
