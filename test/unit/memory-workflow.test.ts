/**
 * The memory check workflow against the shared dev server, with test doubles for its activities (the real ones run
 * on a simulator in test/integration/memory.test.ts): the step order, the restart only after a repair changed
 * something, and a failing control failing the run with the whole report attached. Each run's report is checked as
 * the workflow promises it: host, operation, mode and status; every step in order with its status, its own changes,
 * findings and controls, a start time and a duration; the run's changes, findings and controls gathered from the
 * steps; the host key pinned on first trust; and on failure the error, in the report too.
 */
import { randomBytes } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, type Payload } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StepInput } from '../../activities/context';
import { encryptingDataConverter, isEncrypted } from '../../codec/aes-gcm';
import type { Change, ControlResult, Finding, HostReport, Mode, StepReport } from '../../model/report';
import { specSchema, type Spec } from '../../model/schema';
import { DOC_HOST, oneHostSpec } from '../support/specs';
import { MEMORY_STEPS } from '../../workflows/memory';
import { testEnv, workflowBundle, type TestEnv } from '../support/temporal';

let env: TestEnv;
let worker: Worker;
let running: Promise<void>;
const taskQueue = `memory-workflow-${randomBytes(3).toString('hex')}`;
const spec = oneHostSpec();
/** The same host without a pinned key, trusted on first use. */
const unpinned = specSchema.parse({ version: 1, hosts: [{ ...DOC_HOST, trustOnFirstUse: true }] });
/** Step statuses of a plan run in which every proof ran (no restart: the gateway was not asked to take anything). */
const EVERY_PROOF_RAN = [
  ['inspectHost', 'completed'],
  ['checkMemoryDatabases', 'completed'],
  ['checkMemoryPaths', 'completed'],
  ['restartMemoryConsumer', 'skipped'],
  ['proveMemoryCanary', 'completed'],
  ['proveMemoryPersistence', 'completed'],
];
/** The key the inspectHost double reports seeing. */
const SEEN_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHostKeySeenOnFirstTrustByTheDouble0000000000';

/** What the doubles answer in the next run. */
let script: { pathChanges?: Change[]; failCanary?: boolean; failPaths?: boolean } = {};
const calls: string[] = [];
/** The host key each step was given, in call order. */
const hostKeys: (string | undefined)[] = [];
/** What the persistence proof was asked for in each call: a restart proof or not. */
const restartProofs: unknown[] = [];
/** The workflow id of the last run `memoryCheck` started. */
let lastWorkflowId = '';

/** A finding the database check always reports: the run's report must carry it. */
const LOCKED: Finding = {
  id: 'memory.database-locked',
  severity: 'low',
  message: 'vector_store.db was locked by a writer for 5 s; checked read-only',
  resource: 'file:/opt/openclaw/memory/vector_store.db',
};
const RESTARTED: Change = { resource: 'container:openclaw_gateway_1', action: 'restart' };

const pass = (control: string): ControlResult => ({
  control,
  expected: 'x',
  observed: 'x',
  status: 'pass',
  durationMs: 3,
});

function doubles() {
  const step = (name: string, result: () => object) => async (input: StepInput) => {
    calls.push(`${name}:${input.mode}`);
    hostKeys.push(input.hostKey);
    return result();
  };
  return {
    inspectHost: step('inspectHost', () => ({ changes: [], findings: [], hostKey: SEEN_KEY })),
    checkMemoryDatabases: step('checkMemoryDatabases', () => ({
      changes: [],
      findings: [LOCKED],
      controls: [pass('memory.integrity.history.db')],
    })),
    checkMemoryPaths: step('checkMemoryPaths', () => {
      if (script.failPaths) {
        throw ApplicationFailure.nonRetryable(
          'cannot stat /opt/openclaw/memory: Permission denied',
          'HostCommandFailed',
        );
      }
      return { changes: script.pathChanges ?? [], findings: [], controls: [pass('memory.path.data-dir')] };
    }),
    restartMemoryConsumer: step('restartMemoryConsumer', () => ({
      changes: [RESTARTED],
      findings: [],
      controls: [],
    })),
    proveMemoryCanary: step('proveMemoryCanary', () => ({
      changes: [],
      findings: [],
      controls: [
        script.failCanary
          ? {
              control: 'memory.history-enabled',
              expected: 'enabled',
              observed: 'history disabled',
              status: 'fail',
              note: 'n',
            }
          : pass('memory.history-enabled'),
      ],
    })),
    proveMemoryPersistence: async (input: StepInput & { restartProof?: boolean }) => {
      restartProofs.push(input.restartProof);
      return step('proveMemoryPersistence', () => ({
        changes: [],
        findings: [],
        controls: [pass('memory.persistence')],
      }))(input);
    },
  };
}

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

async function memoryCheck(
  mode: Mode,
  withSpec: Spec = spec,
  extra: { restartProof?: boolean } = {},
): Promise<{ report: HostReport; error?: string }> {
  calls.length = 0;
  hostKeys.length = 0;
  restartProofs.length = 0;
  lastWorkflowId = `memory/vps1/${randomBytes(3).toString('hex')}`;
  const handle = await env.client.workflow.start('memoryCheckHost', {
    taskQueue,
    workflowId: lastWorkflowId,
    args: [{ ...extra, spec: withSpec, host: 'vps1', mode }],
  });
  try {
    return { report: (await handle.result()) as HostReport };
  } catch (err) {
    if (!(err instanceof WorkflowFailedError) || !(err.cause instanceof ApplicationFailure)) throw err;
    return { report: err.cause.details?.[0] as HostReport, error: err.cause.message };
  }
}

/** Step → status, in the report's order. */
function statuses(report: HostReport): [string, StepReport['status']][] {
  return report.steps.map((s) => [s.step, s.status]);
}

function stepOf(report: HostReport, name: string): StepReport {
  const s = report.steps.find((x) => x.step === name);
  if (!s) throw new Error(`no step ${name} in the report`);
  return s;
}

/** Every step that ran has a start time and a duration; skipped and pending ones have neither. */
function expectTimed(report: HostReport): void {
  for (const s of report.steps) {
    if (s.status === 'completed' || s.status === 'failed') {
      expect(Number.isNaN(Date.parse(s.startedAt ?? '')), `${s.step} startedAt`).toBe(false);
      expect(s.durationMs, `${s.step} durationMs`).toBeGreaterThanOrEqual(0);
    } else {
      expect(s.startedAt, `${s.step} startedAt`).toBeUndefined();
      expect(s.durationMs, `${s.step} durationMs`).toBeUndefined();
    }
  }
}

const CONTROLS = [
  'memory.integrity.history.db',
  'memory.path.data-dir',
  'memory.history-enabled',
  'memory.persistence',
];

describe('memoryCheckHost', () => {
  it('checks databases before paths and proves after them; a check never restarts for repair', async () => {
    script = {};
    const { report, error } = await memoryCheck('plan');
    expect(error).toBeUndefined();
    expect(calls).toEqual([
      'inspectHost:plan',
      'checkMemoryDatabases:plan',
      'checkMemoryPaths:plan',
      'proveMemoryCanary:plan',
      'proveMemoryPersistence:plan',
    ]);
    expect(report).toMatchObject({ host: 'vps1', operation: 'memory', mode: 'plan', status: 'completed' });
    expect(report.error).toBeUndefined();
    expect(statuses(report)).toEqual(EVERY_PROOF_RAN);
    expect(report.steps.map((s) => s.step)).toEqual(MEMORY_STEPS);
    expect(report.steps.find((s) => s.step === 'restartMemoryConsumer')?.status).toBe('skipped');
    expectTimed(report);
    expect(report.controls?.map((c) => c.control)).toEqual(CONTROLS);
    expect(report.controls?.every((c) => c.durationMs === 3)).toBe(true);
    // Each step keeps its own controls and findings; the run gathers them.
    expect(stepOf(report, 'checkMemoryDatabases').controls?.map((c) => c.control)).toEqual([
      'memory.integrity.history.db',
    ]);
    expect(stepOf(report, 'proveMemoryPersistence').controls?.map((c) => c.control)).toEqual(['memory.persistence']);
    expect(stepOf(report, 'checkMemoryDatabases').findings).toEqual([LOCKED]);
    expect(report.findings).toEqual([LOCKED]);
    expect(report.changes).toEqual([]);
    // The spec pins the host's key: nothing to pin, and no step is handed a key of the run's own.
    expect(report.hostKey).toBeUndefined();
    expect(hostKeys).toEqual(calls.map(() => undefined));
  });

  it('asks the persistence proof for a restart only when the run was started with restartProof', async () => {
    script = {};
    expect((await memoryCheck('plan')).error).toBeUndefined();
    expect(restartProofs).toEqual([undefined]);
    expect((await memoryCheck('plan', spec, { restartProof: true })).error).toBeUndefined();
    expect(restartProofs).toEqual([true]);
    expect(calls).not.toContain('restartMemoryConsumer:plan');
  });

  it('restarts the consumer after a repair changed something, then proves again', async () => {
    script = { pathChanges: [{ resource: 'dir:/opt/openclaw/memory', action: 'update', before: { owner: '0:0' } }] };
    const { report } = await memoryCheck('apply');
    expect(calls).toEqual([
      'inspectHost:apply',
      'checkMemoryDatabases:apply',
      'checkMemoryPaths:apply',
      'restartMemoryConsumer:apply',
      'proveMemoryCanary:apply',
      'proveMemoryPersistence:apply',
    ]);
    expect(report.changes.map((c) => c.resource)).toEqual(['dir:/opt/openclaw/memory', 'container:openclaw_gateway_1']);
    expect(report).toMatchObject({ host: 'vps1', operation: 'memory', mode: 'apply', status: 'completed' });
    expect(report.error).toBeUndefined();
    expect(statuses(report)).toEqual(MEMORY_STEPS.map((step) => [step, 'completed']));
    expectTimed(report);
    // Each change is reported whole, by the step that made it, and once in the run's changes.
    expect(stepOf(report, 'checkMemoryPaths').changes).toEqual(script.pathChanges);
    expect(stepOf(report, 'restartMemoryConsumer').changes).toEqual([RESTARTED]);
    expect(report.changes).toEqual([...script.pathChanges!, RESTARTED]);
    expect(report.findings).toEqual([LOCKED]);
    expect(report.controls?.map((c) => c.control)).toEqual(CONTROLS);
  });

  it('does not restart when a repair found nothing to change', async () => {
    script = {};
    const { report, error } = await memoryCheck('apply');
    expect(error).toBeUndefined();
    expect(calls).not.toContain('restartMemoryConsumer:apply');
    expect(calls).toEqual([
      'inspectHost:apply',
      'checkMemoryDatabases:apply',
      'checkMemoryPaths:apply',
      'proveMemoryCanary:apply',
      'proveMemoryPersistence:apply',
    ]);
    expect(report).toMatchObject({ host: 'vps1', operation: 'memory', mode: 'apply', status: 'completed' });
    expect(stepOf(report, 'restartMemoryConsumer')).toEqual({
      step: 'restartMemoryConsumer',
      status: 'skipped',
      changes: [],
      findings: [],
    });
    expect(report.changes).toEqual([]);
    expectTimed(report);
  });

  it('fails the run on a failing control, after every proof ran, with the report attached', async () => {
    script = { failCanary: true };
    const { report, error } = await memoryCheck('plan');
    expect(error).toMatch(/memory check failed: memory\.history-enabled: history disabled \(n\)/);
    expect(calls).toContain('proveMemoryPersistence:plan');
    expect(report.status).toBe('failed');
    expect(report.controls?.find((c) => c.status === 'fail')?.control).toBe('memory.history-enabled');
    expect(calls).toEqual([
      'inspectHost:plan',
      'checkMemoryDatabases:plan',
      'checkMemoryPaths:plan',
      'proveMemoryCanary:plan',
      'proveMemoryPersistence:plan',
    ]);
    expect(error).toBe('memory of vps1 failed: memory check failed: memory.history-enabled: history disabled (n)');
    expect(report).toMatchObject({ host: 'vps1', operation: 'memory', mode: 'plan' });
    expect(report.error).toBe('memory check failed: memory.history-enabled: history disabled (n)');
    // Every proof ran to completion: the failure is the run's verdict, not a step's.
    expect(statuses(report)).toEqual(EVERY_PROOF_RAN);
    expectTimed(report);
    expect(report.controls?.map((c) => [c.control, c.status])).toEqual([
      ['memory.integrity.history.db', 'pass'],
      ['memory.path.data-dir', 'pass'],
      ['memory.history-enabled', 'fail'],
      ['memory.persistence', 'pass'],
    ]);
    expect(stepOf(report, 'proveMemoryCanary').controls).toEqual([
      {
        control: 'memory.history-enabled',
        expected: 'enabled',
        observed: 'history disabled',
        status: 'fail',
        note: 'n',
      },
    ]);
    expect(report.findings).toEqual([LOCKED]);
    // What the client decoded above is, in the history, an encrypted payload: the failure itself says nothing.
    const history = await env.client.workflow.getHandle(lastWorkflowId).fetchHistory();
    const failed = history.events?.find((e) => e.workflowExecutionFailedEventAttributes);
    const failure = failed?.workflowExecutionFailedEventAttributes?.failure;
    expect(failure?.message).toBe('Encoded failure');
    expect(failure?.stackTrace ?? '').toBe('');
    expect(isEncrypted(failure!.encodedAttributes as Payload)).toBe(true);
    expect(JSON.stringify(history)).not.toContain('history disabled');
  });

  it('a step that fails ends the run there: the step failed with its error, later steps never ran', async () => {
    script = { failPaths: true };
    const { report, error } = await memoryCheck('apply');
    expect(error).toBe('memory of vps1 failed: cannot stat /opt/openclaw/memory: Permission denied');
    expect(calls).toEqual(['inspectHost:apply', 'checkMemoryDatabases:apply', 'checkMemoryPaths:apply']);
    expect(report).toMatchObject({ host: 'vps1', operation: 'memory', mode: 'apply', status: 'failed' });
    expect(report.error).toBe('cannot stat /opt/openclaw/memory: Permission denied');
    expect(statuses(report)).toEqual([
      ['inspectHost', 'completed'],
      ['checkMemoryDatabases', 'completed'],
      ['checkMemoryPaths', 'failed'],
      ['restartMemoryConsumer', 'pending'],
      ['proveMemoryCanary', 'pending'],
      ['proveMemoryPersistence', 'pending'],
    ]);
    expect(stepOf(report, 'checkMemoryPaths').error).toBe('cannot stat /opt/openclaw/memory: Permission denied');
    expectTimed(report);
    // What the steps before it found is kept.
    expect(report.findings).toEqual([LOCKED]);
    expect(report.controls?.map((c) => c.control)).toEqual(['memory.integrity.history.db']);
  });

  it('pins the host key seen on first trust: every later step gets it, and the report carries it', async () => {
    script = {};
    const { report, error } = await memoryCheck('plan', unpinned);
    expect(error).toBeUndefined();
    expect(report.status).toBe('completed');
    expect(report.hostKey).toBe(SEEN_KEY);
    expect(calls[0]).toBe('inspectHost:plan');
    expect(hostKeys).toEqual([undefined, SEEN_KEY, SEEN_KEY, SEEN_KEY, SEEN_KEY]);
  });
});
