/**
 * No-op provision re-run, end to end: the `steward` CLI (process start, spec load, workflow start, live follow)
 * against a converged simulator, with a local dev server and worker. Target: ≤ 3 s.
 *   npx tsx bench/provision-noop.ts [runs]
 */
import { execFileSync } from 'node:child_process';
import { createWorker } from '../workers/worker';
import { findFreePort, resolveTemporalBinary, startDevServer, stopProcess } from '../client/dev/temporal';
import { STEWARD_BIN } from '../test/support/cli';
import { writeSpec } from '../test/support/fixtures';
import { median, report, withSimulators } from './support';

const RUNS = Number(process.argv[2] ?? 5);
if (!resolveTemporalBinary()) throw new Error('no temporal CLI: run scripts/setup.sh first');

const server = await startDevServer({ port: await findFreePort() });
const { worker, pool, connection } = await createWorker({ address: server.address, namespace: 'default' });
const running = worker.run();
try {
  await withSimulators(1, async (sims, keys) => {
    const spec = writeSpec(keys, sims);
    const provision = (): number => {
      const s = performance.now();
      execFileSync(
        process.execPath,
        [STEWARD_BIN, '--spec', spec, '--address', server.address, '--json', 'provision'],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      );
      return (performance.now() - s) / 1000;
    };
    const cold = provision();
    const noop = Array.from({ length: RUNS }, provision);
    console.log(`provision of one simulator; ${RUNS} no-op re-runs through the CLI`);
    report('first provision (fresh host)', cold, 's');
    report('no-op re-run median (end to end)', median(noop), 's', 3);
    report('no-op re-run max', Math.max(...noop), 's');
  });
} finally {
  worker.shutdown();
  await running;
  await pool.closeAll();
  await connection.close();
  await stopProcess(server.pid);
}
