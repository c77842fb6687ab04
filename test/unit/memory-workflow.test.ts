/**
 * The memory check workflow against the shared dev server, with test doubles for its activities (the real ones run
 * on a simulator in test/integration/memory.test.ts): the step order, the restart only after a repair changed
 * something, and a failing control failing the run with the whole report attached.
 */
import { randomBytes } from 'node:crypto';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StepInput } from '../../activities/context';
import { encryptingDataConverter } from '../../codec/aes-gcm';
import type { Change, ControlResult, HostReport, Mode } from '../../spec/report';
import { specSchema } from '../../spec/schema';
import { testEnv, workflowBundle, type TestEnv } from '../support/temporal';

let env: TestEnv;
let worker: Worker;
let running: Promise<void>;
const taskQueue = `memory-workflow-${randomBytes(3).toString('hex')}`;
const spec = specSchema.parse({
  version: 1,
  hosts: [
    {
      name: 'vps1',
      address: '203.0.113.10',
      hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDuCjQ5yA2d2cxNEuJ7JxVfZ6cM8a2b0vQ0S1g0dJ2hQ',
    },
  ],
});

/** What the doubles answer in the next run. */
let script: { pathChanges?: Change[]; failCanary?: boolean } = {};
const calls: string[] = [];

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
    return result();
  };
  return {
    inspectHost: step('inspectHost', () => ({ changes: [], findings: [], hostKey: 'ssh-ed25519 AAAA' })),
    checkMemoryDatabases: step('checkMemoryDatabases', () => ({
      changes: [],
      findings: [],
      controls: [pass('memory.integrity.history.db')],
    })),
    checkMemoryPaths: step('checkMemoryPaths', () => ({
      changes: script.pathChanges ?? [],
      findings: [],
      controls: [pass('memory.path.data-dir')],
    })),
    restartMemoryConsumer: step('restartMemoryConsumer', () => ({
      changes: [{ resource: 'container:openclaw_gateway_1', action: 'restart' }],
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
    proveMemoryPersistence: step('proveMemoryPersistence', () => ({
      changes: [],
      findings: [],
      controls: [pass('memory.persistence')],
    })),
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

async function memoryCheck(mode: Mode): Promise<{ report: HostReport; error?: string }> {
  calls.length = 0;
  const handle = await env.client.workflow.start('memoryCheckHost', {
    taskQueue,
    workflowId: `memory/vps1/${randomBytes(3).toString('hex')}`,
    args: [{ spec, host: 'vps1', mode }],
  });
  try {
    return { report: (await handle.result()) as HostReport };
  } catch (err) {
    if (!(err instanceof WorkflowFailedError) || !(err.cause instanceof ApplicationFailure)) throw err;
    return { report: err.cause.details?.[0] as HostReport, error: err.cause.message };
  }
}

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
    expect(report.status).toBe('completed');
    expect(report.steps.find((s) => s.step === 'restartMemoryConsumer')?.status).toBe('skipped');
    expect(report.controls?.map((c) => c.control)).toEqual([
      'memory.integrity.history.db',
      'memory.path.data-dir',
      'memory.history-enabled',
      'memory.persistence',
    ]);
    expect(report.controls?.every((c) => c.durationMs === 3)).toBe(true);
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
  });

  it('does not restart when a repair found nothing to change', async () => {
    script = {};
    await memoryCheck('apply');
    expect(calls).not.toContain('restartMemoryConsumer:apply');
  });

  it('fails the run on a failing control, after every proof ran, with the report attached', async () => {
    script = { failCanary: true };
    const { report, error } = await memoryCheck('plan');
    expect(error).toMatch(/memory check failed: memory\.history-enabled: history disabled \(n\)/);
    expect(calls).toContain('proveMemoryPersistence:plan');
    expect(report.status).toBe('failed');
    expect(report.controls?.find((c) => c.status === 'fail')?.control).toBe('memory.history-enabled');
  });
});
