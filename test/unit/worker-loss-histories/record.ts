/**
 * Records the histories test/unit/worker-loss.test.ts replays, with workflow code from before steps were retried by
 * the workflow (git commit LEGACY, where the server retried them):
 *
 * - legacy-inspect-exhausted.binpb: a provision whose inspectHost fails on all four server-side attempts, entirely
 *   on the old code (what an open run's history looks like when the upgraded worker first replays it);
 * - upgraded-mid-deploy.binpb: a deploy started on the old code whose applyStack fails once there; the old worker
 *   stops, the new one (this tree's workflows) runs the server's remaining attempts, sees the step fail, and rolls
 *   back with a step it retries itself.
 *
 * Payloads are plain JSON (no codec), so the histories replay on any machine. They are stored as binary protobuf
 * (temporal.api.history.v1.History): the SDK's reader of JSON histories (historyFromJSON) fails on this install,
 * whose @temporalio/common and @temporalio/proto carry two copies of protobufjs. Run again only to re-record:
 *   npx tsx test/unit/worker-loss-histories/record.ts
 */
import { fileURLToPath } from 'node:url';
import { ApplicationFailure } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { recordHistories } from '../../support/history-recording';
import { oneHostSpec } from '../../support/specs';

/** The last commit whose workflows let the server retry steps. */
const LEGACY = '0a22236';
const HERE = fileURLToPath(new URL('.', import.meta.url));

const spec = oneHostSpec();

const ok = async () => ({ changes: [], findings: [] });

await recordHistories(LEGACY, HERE, async ({ legacy, current, connection, client, save }) => {
  // A provision whose host never answers: four server-side attempts, then the run fails.
  {
    const taskQueue = 'legacy-inspect';
    const worker = await Worker.create({
      connection,
      taskQueue,
      workflowBundle: legacy,
      activities: {
        inspectHost: async () => {
          throw ApplicationFailure.retryable('vps1: cannot connect: connect ECONNREFUSED', 'ConnectionFailed');
        },
      },
    });
    await worker.runUntil(async () => {
      const handle = await client.workflow.start('provisionHost', {
        taskQueue,
        workflowId: 'provision/vps1/legacy-inspect',
        args: [{ spec, host: 'vps1', mode: 'apply' }],
      });
      await handle.result().catch(() => undefined);
    });
    await save('legacy-inspect-exhausted.binpb', 'provision/vps1/legacy-inspect');
  }

  // A deploy upgraded while its applyStack is between server-side attempts.
  {
    const taskQueue = 'upgraded-deploy';
    let firstFailure: () => void = () => {};
    const failedOnce = new Promise<void>((resolve) => (firstFailure = resolve));
    const deployDoubles = {
      inspectHost: async () => ({ changes: [], findings: [], hostKey: 'ssh-ed25519 AAAA' }),
      transferStackImages: ok,
      ensureStackSecrets: ok,
      prepareStack: ok,
      applyStack: async () => {
        firstFailure();
        throw ApplicationFailure.retryable('docker-compose up -d exited 1', 'CommandFailed');
      },
      rollbackStack: ok,
    };
    const old = await Worker.create({ connection, taskQueue, workflowBundle: legacy, activities: deployDoubles });
    const handle = await old.runUntil(async () => {
      const h = await client.workflow.start('deployHost', {
        taskQueue,
        workflowId: 'deploy/vps1/upgraded',
        args: [{ spec, host: 'vps1', mode: 'apply' }],
      });
      await failedOnce;
      return h;
    });
    // The server retries applyStack 2 s later; by then only the new worker polls.
    const upgraded = await Worker.create({
      connection,
      taskQueue,
      workflowBundle: current,
      activities: deployDoubles,
    });
    await upgraded.runUntil(handle.result().catch(() => undefined));
    await save('upgraded-mid-deploy.binpb', 'deploy/vps1/upgraded');
  }
});
