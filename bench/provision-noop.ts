/**
 * No-op provision re-run, end to end: the `steward` CLI (process start, spec load, workflow start, live follow)
 * against a converged simulator, with a local dev server and worker. Target: ≤ 3 s.
 *   npx tsx bench/provision-noop.ts [runs]
 */
import { writeSpec } from '../test/support/fixtures';
import { median, report, timeCli, withSimulators, withTemporal } from './support';

const RUNS = Number(process.argv[2] ?? 5);

await withTemporal((address) =>
  withSimulators(1, async (sims, keys) => {
    const args = ['--spec', writeSpec(keys, sims), '--address', address, 'provision'];
    const cold = await timeCli(args);
    const noop: number[] = [];
    for (let i = 0; i < RUNS; i++) noop.push(await timeCli(args));
    console.log(`provision of one simulator; ${RUNS} no-op re-runs through the CLI`);
    report('first provision (fresh host)', cold, 's');
    report('no-op re-run median (end to end)', median(noop), 's', 3);
    report('no-op re-run max', Math.max(...noop), 's');
  }),
);
