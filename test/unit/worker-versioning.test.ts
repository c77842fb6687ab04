/**
 * `steward worker --deployment`: workers poll as versions of a Temporal Worker Deployment on the shared dev server.
 * New runs go to the deployment's current version; a host operation is pinned to the version it started on, a fleet
 * or rotation plan moves to the promoted one (the annotations in workflows/fleet.ts and workflows/rotate.ts). The
 * runs here need no host: an audit export (pinned) and an empty rotation plan (auto-upgrade).
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD_ID, DEPLOYMENT_NAME } from '../../workers/flags';
import { createWorker, workflowCodeBuildId } from '../../workers/worker';
import { testEnv, workflowBundle, type TestEnv } from '../support/temporal';

const { VersioningBehavior } = proto.temporal.api.enums.v1;

let env: TestEnv;
let exportDir: string;
beforeAll(async () => {
  env = await testEnv();
  exportDir = mkdtempSync(join(tmpdir(), 'steward-versioning-'));
});
afterAll(async () => {
  await env?.teardown();
  rmSync(exportDir, { recursive: true, force: true });
});

/** Makes `buildId` the deployment's current version, once its worker has been seen polling. */
async function promote(deploymentName: string, buildId: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await env.connection.workflowService.setWorkerDeploymentCurrentVersion({
        namespace: env.namespace,
        deploymentName,
        buildId,
        identity: 'worker-versioning.test',
      });
      return;
    } catch (err) {
      // The version exists once the server has seen a poll of it.
      if (attempt > 100) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** The distinct deployment versions and behaviours the run's completed workflow tasks reported. */
async function taskVersions(workflowId: string): Promise<{ buildId: string; behavior: string }[]> {
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  const seen = history.events!.flatMap((e) => {
    const done = e.workflowTaskCompletedEventAttributes;
    if (!done) return [];
    return [`${done.deploymentVersion?.buildId ?? ''} ${VersioningBehavior[done.versioningBehavior ?? 0] ?? ''}`];
  });
  expect(seen.length).toBeGreaterThan(0);
  return [...new Set(seen)].map((s) => {
    const [buildId = '', behavior = ''] = s.split(' ');
    return { buildId, behavior };
  });
}

describe('Worker Deployments', () => {
  it('a new run goes to the current version: host operations pinned, plans auto-upgrade', async () => {
    const deploymentName = `steward-test-${randomUUID().slice(0, 8)}`;
    const taskQueue = `versioning-${deploymentName}`;
    const bundle = await workflowBundle();
    const start = async (buildId: string) => {
      const w = await createWorker({
        address: env.address,
        namespace: env.namespace,
        keys: env.keys,
        taskQueue,
        workflowBundle: bundle,
        deployment: { name: deploymentName, buildId },
      });
      expect(w.version).toEqual({ deploymentName, buildId });
      return { ...w, running: w.worker.run() };
    };
    const stop = async (w: Awaited<ReturnType<typeof start>>) => {
      w.worker.shutdown();
      await w.running;
      await w.pool.closeAll();
      await w.connection.close();
    };
    /** Runs an audit export (a pinned, hostless run) to its end; its workflow id. */
    const exportRun = async (n: number) => {
      const workflowId = `versioning/export-${n}/${deploymentName}`;
      await env.client.workflow.execute('auditExport', {
        taskQueue,
        workflowId,
        args: [{ directory: exportDir, settleSeconds: 0 }],
      });
      return workflowId;
    };

    const one = await start('b1');
    try {
      await promote(deploymentName, 'b1');
      const exportId = await exportRun(1);
      const planId = `versioning/rotate-plan/${deploymentName}`;
      const plan = await env.client.workflow.execute('rotateSecrets', {
        taskQueue,
        workflowId: planId,
        args: [{ mode: 'apply', rotations: [] }],
      });
      expect(plan).toMatchObject({ status: 'completed', rotations: [] });
      expect(await taskVersions(exportId)).toEqual([{ buildId: 'b1', behavior: 'VERSIONING_BEHAVIOR_PINNED' }]);
      expect(await taskVersions(planId)).toEqual([{ buildId: 'b1', behavior: 'VERSIONING_BEHAVIOR_AUTO_UPGRADE' }]);

      // A second build, promoted: the next run is its, though the first build's worker still polls.
      const two = await start('b2');
      try {
        await promote(deploymentName, 'b2');
        const nextId = await exportRun(2);
        expect(await taskVersions(nextId)).toEqual([{ buildId: 'b2', behavior: 'VERSIONING_BEHAVIOR_PINNED' }]);
      } finally {
        await stop(two);
      }
    } finally {
      await stop(one);
    }
  });

  it('the default build id is the workflow code’s digest, wherever it was built; names are checked as Temporal takes them', async () => {
    /** A bundle as webpack writes it, built under `root`: absolute paths in its code and its inline source map. */
    const bundle = (root: string, index: string) => {
      const sources = [`${root}/workflows/index.ts`, `${root}/workflows/interceptors.ts`, 'webpack/runtime/define'];
      const map = { version: 3, sources, sourcesContent: [index, 'export const interceptors = 1;', 'runtime'] };
      const code = `/* __TEMPORAL__ */ require(${JSON.stringify(sources[0])});\n`;
      return {
        code: `${code}//# sourceMappingURL=data:application/json;charset=utf-8;base64,${Buffer.from(JSON.stringify(map)).toString('base64')}`,
      };
    };
    const a = await workflowCodeBuildId(bundle('/opt/steward', 'export const a = 1;'));
    expect(a).toMatch(/^wf-[0-9a-f]{16}$/);
    expect(await workflowCodeBuildId(bundle('/srv/other/steward', 'export const a = 1;'))).toBe(a);
    expect(await workflowCodeBuildId(bundle('/opt/steward', 'export const a = 2;'))).not.toBe(a);
    // The run's real bundle has a build id of its own, the same each time it is read.
    const real = await workflowCodeBuildId(await workflowBundle());
    expect(real).toMatch(/^wf-[0-9a-f]{16}$/);
    expect(await workflowCodeBuildId(await workflowBundle())).toBe(real);
    expect(BUILD_ID.test(a)).toBe(true);
    expect(DEPLOYMENT_NAME.test('steward')).toBe(true);
    expect(DEPLOYMENT_NAME.test('steward.prod')).toBe(false); // '.' separates name and build id
    expect(BUILD_ID.test('v1.4.2+abc')).toBe(true);
    expect(BUILD_ID.test('-x')).toBe(false);
    expect(BUILD_ID.test('a b')).toBe(false);
  });
});
