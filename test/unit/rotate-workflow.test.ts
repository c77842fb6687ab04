/**
 * The rotation workflows against the shared dev server with test doubles for the activities (the real ones are
 * proven on a simulator in test/integration/rotate.test.ts): the phases in order, compensation on every failure,
 * resolution of a pending version an interrupted run left, plan and `--due`, and several rotations under one run.
 */
import { randomBytes } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RotateStepInput, SecretState } from '../../activities/rotate';
import { encryptingDataConverter } from '../../codec/aes-gcm';
import type { HostReport } from '../../model/report';
import { rotationWorkflowId } from '../../model/ids';
import { VERSION_ID } from '../../model/rotation';
import { specSchema, type Spec } from '../../model/schema';
import type { RotateSecretInput, RotateSecretsInput, RotateSecretsReport } from '../../workflows/rotate';
import { testEnv, workflowBundle, type TestEnv } from '../support/temporal';

let env: TestEnv;
const taskQueue = `rotate-workflow-${randomBytes(3).toString('hex')}`;

const spec: Spec = specSchema.parse({
  version: 1,
  hosts: [
    { name: 'a1', address: '203.0.113.1' },
    { name: 'b1', address: '203.0.113.2' },
  ],
  secrets: {
    'gateway-token': { generate: { length: 48 } },
    'openrouter-api-key': { external: { env: 'OPENROUTER_KEY' } },
  },
  stack: { providers: { openrouter: {} } },
});

/** What the test double of each host and secret does, and every call it got. */
interface Script {
  state?: Partial<SecretState>;
  failSet?: string;
  failTest?: boolean;
  failRollback?: string;
}
const scripts = new Map<string, Script>();
const calls: { step: string; host: string; secret: string; versionId?: string; reason?: string }[] = [];

function doubles() {
  const script = (i: RotateStepInput) => scripts.get(`${i.host}/${i.secret}`) ?? {};
  const log = (step: string, i: RotateStepInput) =>
    calls.push({
      step,
      host: i.host,
      secret: i.secret,
      ...(i.versionId ? { versionId: i.versionId } : {}),
      ...(i.reason ? { reason: i.reason } : {}),
    });
  return {
    /** The host operations' run guard (another run of the operation on the host first?): never, here. */
    async findEarlierRun() {
      return undefined;
    },
    async inspectSecret(i: RotateStepInput) {
      log('inspectSecret', i);
      return { changes: [], findings: [], state: { current: 'vcurrent', due: true, ...script(i).state } };
    },
    async createSecret(i: RotateStepInput) {
      log('createSecret', i);
      return { changes: [{ resource: `secret:${i.secret}`, action: 'create' }], findings: [], versionId: i.versionId };
    },
    async setSecret(i: RotateStepInput) {
      log('setSecret', i);
      const fail = script(i).failSet;
      if (fail) throw ApplicationFailure.nonRetryable(fail, 'StackUnhealthy');
      return { changes: [{ resource: `secret:${i.secret}`, action: 'update' }], findings: [] };
    },
    async testSecret(i: RotateStepInput) {
      log('testSecret', i);
      const pass = !script(i).failTest;
      return {
        changes: [],
        findings: [],
        controls: [
          {
            control: `secret.${i.secret}.old-refused`,
            expected: 'refused (AUTH_TOKEN_MISMATCH)',
            observed: pass ? 'refused (AUTH_TOKEN_MISMATCH)' : 'accepted',
            status: pass ? 'pass' : 'fail',
          },
        ],
      };
    },
    async finishSecret(i: RotateStepInput) {
      log('finishSecret', i);
      return {
        changes: [{ resource: `secret:${i.secret}`, action: 'update', after: { current: i.versionId } }],
        findings: [],
      };
    },
    async rollbackSecret(i: RotateStepInput) {
      log('rollbackSecret', i);
      const fail = script(i).failRollback;
      if (fail) throw ApplicationFailure.nonRetryable(fail, 'StackUnhealthy');
      return {
        changes: [],
        findings: [],
        controls: [],
        restored: i.reason !== undefined && !/never live/.test(i.reason),
        current: 'vcurrent',
      };
    },
  };
}

let worker: Worker;
let running: Promise<void>;

beforeAll(async () => {
  env = await testEnv();
  worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: doubles(),
    dataConverter: encryptingDataConverter(env.keys),
  });
  running = worker.run();
});

afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

async function rotateOne(input: Omit<RotateSecretInput, 'spec'>): Promise<{ report?: HostReport; error?: string }> {
  calls.length = 0;
  const handle = await env.client.workflow.start('rotateSecret', {
    taskQueue,
    workflowId: `${rotationWorkflowId(input.host, input.secret)}/${randomBytes(3).toString('hex')}`,
    args: [{ spec, ...input }],
  });
  try {
    return { report: (await handle.result()) as HostReport };
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    return { error: err.cause?.message ?? err.message };
  }
}

const steps = () => calls.map((c) => c.step);

describe('rotateSecret', () => {
  it('runs inspect → create → set → test → finish with one new version id, and reports every phase', async () => {
    scripts.clear();
    const { report } = await rotateOne({ host: 'a1', secret: 'gateway-token', mode: 'apply' });
    expect(steps()).toEqual(['inspectSecret', 'createSecret', 'setSecret', 'testSecret', 'finishSecret']);
    const ids = new Set(calls.filter((c) => c.versionId).map((c) => c.versionId));
    expect(ids.size).toBe(1);
    expect([...ids][0]).toMatch(VERSION_ID);
    expect(report?.status).toBe('completed');
    expect(report?.steps.map((s) => `${s.step}:${s.status}`)).toEqual([
      'inspectSecret:completed',
      'discardPending:skipped',
      'createSecret:completed',
      'setSecret:completed',
      'testSecret:completed',
      'finishSecret:completed',
      'rollbackSecret:skipped',
    ]);
    expect(report?.controls?.map((c) => c.control)).toEqual(['secret.gateway-token.old-refused']);
  });

  it('a failing test control rolls back and the run fails saying why', async () => {
    scripts.set('a1/gateway-token', { failTest: true });
    const { error } = await rotateOne({ host: 'a1', secret: 'gateway-token', mode: 'apply' });
    expect(steps()).toEqual(['inspectSecret', 'createSecret', 'setSecret', 'testSecret', 'rollbackSecret']);
    expect(calls.at(-1)?.reason).toMatch(/secret\.gateway-token\.old-refused \(expected refused.*observed accepted\)/);
    expect(error).toMatch(
      /test of gateway-token version v\S+ failed: .*; rolled back: the host serves version vcurrent/,
    );
  });

  it('a consumer that fails health after set rolls back', async () => {
    scripts.set('a1/gateway-token', { failSet: 'gateway: running/unhealthy' });
    const { error } = await rotateOne({ host: 'a1', secret: 'gateway-token', mode: 'apply' });
    expect(steps()).toEqual(['inspectSecret', 'createSecret', 'setSecret', 'rollbackSecret']);
    expect(error).toMatch(
      /gateway: running\/unhealthy; rolled back: the host serves version vcurrent of gateway-token/,
    );
  });

  it('a rollback that fails too is reported with the first failure', async () => {
    scripts.set('a1/gateway-token', { failSet: 'gateway unhealthy', failRollback: 'still unhealthy' });
    const { error } = await rotateOne({ host: 'a1', secret: 'gateway-token', mode: 'apply' });
    expect(error).toMatch(/gateway unhealthy; rolling back failed too: still unhealthy/);
  });

  it('a live pending version left by an interrupted run is tested and finished, not recreated', async () => {
    const pending = 'v20261127T100000Z-0badc0de';
    scripts.set('a1/gateway-token', { state: { pending: { id: pending, live: true } } });
    const { report } = await rotateOne({ host: 'a1', secret: 'gateway-token', mode: 'apply' });
    expect(steps()).toEqual(['inspectSecret', 'setSecret', 'testSecret', 'finishSecret']);
    expect(calls.slice(1).every((c) => c.versionId === pending)).toBe(true);
    expect(report?.status).toBe('completed');
  });

  it('a pending version that never went live is discarded before a new one is created', async () => {
    const pending = 'v20261127T100000Z-0badc0de';
    scripts.set('a1/gateway-token', { state: { pending: { id: pending, live: false } } });
    await rotateOne({ host: 'a1', secret: 'gateway-token', mode: 'apply' });
    expect(steps()).toEqual([
      'inspectSecret',
      'rollbackSecret',
      'createSecret',
      'setSecret',
      'testSecret',
      'finishSecret',
    ]);
    expect(calls[1]?.versionId).toBe(pending);
    expect(calls[2]?.versionId).not.toBe(pending);
  });

  it('plan, and --due before the interval, only inspect', async () => {
    scripts.clear();
    await rotateOne({ host: 'a1', secret: 'gateway-token', mode: 'plan' });
    expect(steps()).toEqual(['inspectSecret']);
    scripts.set('a1/gateway-token', { state: { due: false } });
    const { report } = await rotateOne({ host: 'a1', secret: 'gateway-token', mode: 'apply', due: true });
    expect(steps()).toEqual(['inspectSecret']);
    expect(report?.steps.filter((s) => s.status === 'skipped')).toHaveLength(6);
  });
});

describe('rotateSecrets', () => {
  it("rotates each host's secrets in order, keeps going past a failure, and reports each rotation", async () => {
    scripts.clear();
    scripts.set('b1/gateway-token', { failSet: 'gateway unhealthy' });
    calls.length = 0;
    const input: RotateSecretsInput = {
      spec,
      mode: 'apply',
      rotations: [
        { host: 'a1', secrets: ['gateway-token', 'openrouter-api-key'] },
        { host: 'b1', secrets: ['gateway-token', 'openrouter-api-key'] },
      ],
    };
    const handle = await env.client.workflow.start('rotateSecrets', {
      taskQueue,
      workflowId: `rotate/fleet/test-${randomBytes(3).toString('hex')}`,
      args: [input],
    });
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
    expect(cause.message).toBe('rotate failed for gateway-token on b1 (1/4)');
    const summary = cause.details?.[0] as RotateSecretsReport;
    expect(summary.rotations.map((r) => `${r.host}/${r.secret}:${r.report.status}`)).toEqual([
      'a1/gateway-token:completed',
      'a1/openrouter-api-key:completed',
      'b1/gateway-token:failed',
      'b1/openrouter-api-key:completed',
    ]);
    // Per host, one rotation ends before the next begins.
    for (const host of ['a1', 'b1']) {
      const mine = calls.filter((c) => c.host === host).map((c) => `${c.secret}:${c.step}`);
      const lastOfFirst = mine.lastIndexOf(
        mine.filter((s) => s.startsWith('gateway-token')).at(-1) ?? 'gateway-token:inspectSecret',
      );
      expect(mine.findIndex((s) => s.startsWith('openrouter-api-key'))).toBeGreaterThan(lastOfFirst);
    }
  });
});
