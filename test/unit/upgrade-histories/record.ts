/**
 * Records the histories test/unit/upgrade-replay.test.ts replays: runs started on the workflow code from before
 * host plans (git commit LEGACY, where every host's input carried the whole spec and the fleet, rotation and drift
 * loops were written out by hand), each upgraded part way: the old worker stops at a set point and this tree's
 * workflows, on a new worker, finish the run.
 *
 * - fleet-provision.binpb: a fleet provision of vps1 and vps2, one at a time, whose input carries each host's whole
 *   input (the old shape); the old worker runs vps1's child to its end, the new one starts and finishes vps2's.
 * - drift-repair.binpb: a drift repair of vps1 given the whole two-host spec (what the old CLI and schedules sent);
 *   the old worker observes the drift, the new one runs the provision repair as a child and verifies.
 * - rotate-fleet.binpb: a rotation plan over vps1 and vps2, one host at a time; the old worker runs vps1's child,
 *   the new one runs vps2's and sums up.
 *
 * Activities are doubles (no host): the histories hold the workflows' decisions, which is what replay checks.
 * Payloads are plain JSON (no codec), so they replay on any machine; stored as binary protobuf for the reason
 * test/unit/worker-loss-histories/record.ts gives. Run again only to re-record:
 *   npx tsx test/unit/upgrade-histories/record.ts
 */
import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import type { Spec } from '../../../model/schema';
import { startAttributes } from '../../../model/search-attributes';
import { recordHistories } from '../../support/history-recording';
import { oneHostSpec } from '../../support/specs';

/** The last commit before host plans: whole-spec inputs, hand-written lanes in fleet and rotateSecrets. */
const LEGACY = 'cd5caa9';
const HERE = fileURLToPath(new URL('.', import.meta.url));

const one = oneHostSpec();
const spec: Spec = { ...one, hosts: [one.hosts[0]!, { ...one.hosts[0]!, name: 'vps2', address: '127.0.0.2' }] };

/** A one-shot latch: `reached` resolves the first time `hit` is called. */
function latch() {
  let hit: () => void = () => {};
  const reached = new Promise<void>((resolve) => (hit = resolve));
  return { hit, reached };
}

const nothing = async () => ({ changes: [], findings: [] });

/** Host-step doubles; `onStep` sees each call's activity name and host. */
function doubles(onStep: (name: string, host: string) => void, drifted: () => boolean) {
  const step =
    (name: string) =>
    async (input: { host: string }): Promise<{ changes: never[]; findings: never[] }> => {
      onStep(name, input.host);
      return nothing();
    };
  return {
    findEarlierRun: async () => undefined,
    recordApplied: nothing,
    inspectHost: async (input: { host: string }) => {
      onStep('inspectHost', input.host);
      return { changes: [], findings: [], hostKey: one.hosts[0]!.hostKey ?? 'ssh-ed25519 AAAA' };
    },
    ensureBasePackages: step('ensureBasePackages'),
    ensureDockerEngine: step('ensureDockerEngine'),
    ensureOpsUser: step('ensureOpsUser'),
    ensureStackLayout: step('ensureStackLayout'),
    observeDrift: async (input: { host: string }) => {
      onStep('observeDrift', input.host);
      const changes = drifted()
        ? [
            {
              resource: 'directory:/opt/steward',
              drift: 'corrective',
              before: { mode: '0777' },
              after: { mode: '0750' },
            },
          ]
        : [];
      return { changes, findings: [], repair: changes.length ? ['provision'] : [] };
    },
    inspectSecret: async (input: { host: string }) => {
      onStep('inspectSecret', input.host);
      return { changes: [], findings: [], state: { due: false } };
    },
  };
}

await recordHistories(LEGACY, HERE, async ({ legacy, current, connection, client, save }) => {
  /** Starts a run on the old code, stops the old worker at `until`, finishes on this tree's workflows. */
  const upgraded = async (
    taskQueue: string,
    start: (taskQueue: string) => Promise<{ workflowId: string; result(): Promise<unknown> }>,
    until: (name: string, host: string) => boolean,
    drifted: () => boolean = () => false,
  ) => {
    const switchPoint = latch();
    const activities = doubles((name, host) => until(name, host) && switchPoint.hit(), drifted);
    const old = await Worker.create({ connection, taskQueue, workflowBundle: legacy, activities });
    const handle = await old.runUntil(async () => {
      const h = await start(taskQueue);
      await switchPoint.reached;
      return h;
    });
    const fresh = await Worker.create({ connection, taskQueue, workflowBundle: current, activities });
    await fresh.runUntil(handle.result());
    return handle.workflowId;
  };

  const hostInput = (host: string) => ({ spec, host, mode: 'apply' as const });

  await save(
    'fleet-provision.binpb',
    await upgraded(
      'upgrade-fleet',
      (taskQueue) =>
        client.workflow.start('fleet', {
          taskQueue,
          workflowId: 'fleet/provision/upgraded',
          args: [
            {
              operation: 'provision',
              workflowType: 'provisionHost',
              hosts: [hostInput('vps1'), hostInput('vps2')],
              concurrency: 1,
            },
          ],
        }),
      // During vps1's last step: the old code started vps1's child; vps2's is started by the new code.
      (name, host) => name === 'ensureStackLayout' && host === 'vps1',
    ),
  );

  let observed = 0;
  await save(
    'drift-repair.binpb',
    await upgraded(
      'upgrade-drift',
      (taskQueue) =>
        client.workflow.start('driftHost', {
          taskQueue,
          workflowId: 'drift/vps1/upgraded',
          args: [{ ...hostInput('vps1'), audit: false }],
          typedSearchAttributes: startAttributes({ host: 'vps1', operation: 'drift' }),
        }),
      (name) => name === 'observeDrift',
      // Drifted at the first observation; the repair leaves nothing.
      () => observed++ === 0,
    ),
  );

  await save(
    'rotate-fleet.binpb',
    await upgraded(
      'upgrade-rotate',
      (taskQueue) =>
        client.workflow.start('rotateSecrets', {
          taskQueue,
          workflowId: 'rotate/upgraded',
          args: [
            {
              spec,
              mode: 'plan',
              rotations: [
                { host: 'vps1', secrets: ['gateway-token'] },
                { host: 'vps2', secrets: ['gateway-token'] },
              ],
              concurrency: 1,
            },
          ],
        }),
      (name, host) => name === 'inspectSecret' && host === 'vps1',
    ),
  );
});
