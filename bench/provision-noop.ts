/**
 * No-op provision re-run, end to end: the `steward` CLI (process start, spec load, workflow start, live follow)
 * against a converged simulator, with a local dev server and worker. Target: ≤ 3 s.
 *   npx tsx bench/provision-noop.ts [runs]
 */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { findFreePort, resolveTemporalBinary, startDevServer, stopProcess } from '../client/dev/temporal';
import { steward } from '../test/support/cli';
import { writeSpec } from '../test/support/fixtures';
import { createWorker } from '../workers/worker';
import { median, report, withSimulators } from './support';

const RUNS = Number(process.argv[2] ?? 5);
if (!resolveTemporalBinary()) throw new Error('no temporal CLI: run scripts/setup.sh first');

Runtime.install({ logger: new DefaultLogger('WARN') });
const server = await startDevServer({ port: await findFreePort() });
const { worker, pool, connection } = await createWorker({ address: server.address, namespace: 'default' });
const running = worker.run();
try {
  await withSimulators(1, async (sims, keys) => {
    const spec = writeSpec(keys, sims);
    // The worker runs in this process, so the CLI runs as a child without blocking the event loop.
    const provision = async (): Promise<number> => {
      const s = performance.now();
      const r = await steward(['--spec', spec, '--address', server.address, '--json', 'provision']);
      if (r.code !== 0) throw new Error(`provision failed: ${r.stderr}`);
      return (performance.now() - s) / 1000;
    };
    const cold = await provision();
    const noop: number[] = [];
    for (let i = 0; i < RUNS; i++) noop.push(await provision());
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
