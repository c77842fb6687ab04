/**
 * Steps retried by the workflow (workflows/retry.ts) against the shared dev server, with test doubles for the
 * activities: attempts lost with their worker — an activity that stops heartbeating, a worker process killed with
 * SIGKILL — do not spend the budget of real failures, and the step completes; real retryable failures still end the
 * step after the profile's attempts, with their backoff and the real error; non-retryable failures are not retried;
 * worker losses are bounded. Counts come from the doubles and from the run's history. The production profiles are
 * checked the same way through provisionHost, and histories recorded before this change (worker-loss-histories/)
 * replay without a determinism error on the current workflow code.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { WorkflowFailedError } from '@temporalio/client';
import { ActivityFailure, ApplicationFailure } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time';
import proto from '@temporalio/proto';
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StepInput } from '../../activities/context';
import { encryptingDataConverter } from '../../codec/aes-gcm';
import type { HostReport } from '../../model/report';
import { oneHostSpec } from '../support/specs';
import { CONTROLS_FAIL_PATCH } from '../../workflows/host-operation';
import { HOST_STEP, type StepProfile } from '../../workflows/options';
import { STEP_RETRY_PATCH, WORKER_LOST } from '../../workflows/retry';
import { testEnv, workflowBundle, type TestEnv } from '../support/temporal';

const TEST_WORKFLOWS = fileURLToPath(new URL('./worker-loss.workflows.ts', import.meta.url));
const KILLABLE_WORKER = fileURLToPath(new URL('./worker-loss.worker.ts', import.meta.url));
const HISTORIES = new URL('./worker-loss-histories/', import.meta.url);
const suffix = randomBytes(3).toString('hex');
const queues = {
  scripted: `worker-loss-${suffix}`,
  kill: `worker-loss-kill-${suffix}`,
  real: `worker-loss-real-${suffix}`,
};

/** A fast profile: 1 s without a heartbeat loses the attempt, 3 real failures end the step. */
const FAST: StepProfile = {
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: '1 second',
  retry: {
    initialInterval: '200 milliseconds',
    backoffCoefficient: 2,
    maximumInterval: '1 second',
    maximumAttempts: 3,
    nonRetryableErrorTypes: ['HostKeyMismatch'],
  },
  maximumWorkerLosses: 10,
};

/**
 * What the double does on each call for a key: return, stop heartbeating past the heartbeat timeout (its worker is
 * as good as gone), fail retryably, fail non-retryably, or fail retryably with a type the profile lists as
 * non-retryable. The last entry repeats.
 */
type Behaviour = 'ok' | 'hang' | 'fail' | 'fatal' | 'fatal-type';
const scripts = new Map<string, { behaviours: Behaviour[]; hangMs: number }>();
const calls = new Map<string, number>();

async function act(key: string): Promise<string> {
  const n = (calls.get(key) ?? 0) + 1;
  calls.set(key, n);
  const script = scripts.get(key);
  const behaviour = script?.behaviours[n - 1] ?? script?.behaviours.at(-1) ?? 'ok';
  switch (behaviour) {
    case 'ok':
      return `ok on call ${n}`;
    case 'hang':
      await sleep(script?.hangMs ?? 3_000);
      return `too late on call ${n}`;
    case 'fail':
      throw ApplicationFailure.retryable(`apt mirror unreachable (call ${n})`, 'CommandFailed');
    case 'fatal':
      throw ApplicationFailure.nonRetryable(`host key changed (call ${n})`, 'HostKeyMismatch');
    case 'fatal-type':
      throw ApplicationFailure.retryable(`host key changed (call ${n})`, 'HostKeyMismatch');
  }
}

let env: TestEnv;
const workers: { worker: Worker; running: Promise<void> }[] = [];

async function startWorker(
  options: Omit<WorkerOptions, 'connection' | 'namespace' | 'dataConverter'>,
): Promise<Worker> {
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace,
    dataConverter: encryptingDataConverter(env.keys),
    ...options,
  });
  workers.push({ worker, running: worker.run() });
  return worker;
}

beforeAll(async () => {
  env = await testEnv();
  await startWorker({
    taskQueue: queues.scripted,
    workflowBundle: await workflowBundle(TEST_WORKFLOWS),
    activities: { scripted: act },
  });
});

afterAll(async () => {
  for (const w of workers) if (w.worker.getState() === 'RUNNING') w.worker.shutdown();
  await Promise.all(workers.map((w) => w.running));
  await env?.teardown();
});

/** Runs `scriptedStep` for a fresh key under `profile`; returns its result or failure, the calls and the history. */
async function step(behaviours: Behaviour[], profile: StepProfile = FAST, taskQueue = queues.scripted) {
  const key = `${behaviours.join('-')}-${randomBytes(3).toString('hex')}`.slice(-60);
  scripts.set(key, { behaviours, hangMs: profileMs(profile.heartbeatTimeout) + 2_000 });
  const handle = await env.client.workflow.start('scriptedStep', {
    taskQueue,
    workflowId: `worker-loss/${key}`,
    args: [{ profile, key }],
  });
  let result: string | undefined;
  let failure: WorkflowFailedError | undefined;
  try {
    result = await handle.result();
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    failure = err;
  }
  return { result, failure, calls: calls.get(key) ?? 0, history: await attempts(handle.workflowId) };
}

function profileMs(d: StepProfile['heartbeatTimeout']): number {
  return typeof d === 'number' ? d : Number(/^(\d+) seconds?$/.exec(d)?.[1] ?? 1) * 1000;
}

const { TimeoutType } = proto.temporal.api.enums.v1;

/** What a run's history says about its activities: every one is an attempt the server ran once. */
async function attempts(workflowId: string, runId?: string) {
  const history = await env.client.workflow.getHandle(workflowId, runId).fetchHistory();
  const events = history.events ?? [];
  return {
    history,
    scheduled: events.filter((e) => e.activityTaskScheduledEventAttributes).length,
    completed: events.filter((e) => e.activityTaskCompletedEventAttributes).length,
    failed: events.filter((e) => e.activityTaskFailedEventAttributes).length,
    timedOut: events.flatMap((e) => {
      const t = e.activityTaskTimedOutEventAttributes?.failure?.timeoutFailureInfo?.timeoutType;
      return t == null ? [] : [TimeoutType[t]];
    }),
    /** Server-side attempts per activity: always 1 now that the workflow retries. */
    serverAttempts: [...new Set(events.flatMap((e) => e.activityTaskStartedEventAttributes?.attempt ?? []))],
    /** Backoff waits, ms. */
    timers: events.flatMap((e) => {
      const t = e.timerStartedEventAttributes?.startToFireTimeout;
      return t ? [tsToMs(t)] : [];
    }),
    /** Patch ids recorded (workflows/retry.ts). */
    patches: events.flatMap((e) => {
      const data = e.markerRecordedEventAttributes?.details?.['patch-data']?.payloads?.[0]?.data;
      return data ? [(JSON.parse(Buffer.from(data).toString()) as { id: string }).id] : [];
    }),
  };
}

/** The failure behind a failed run: the ActivityFailure's cause, or the run's own. */
function cause(err: WorkflowFailedError | undefined) {
  const c = err?.cause;
  return c instanceof ActivityFailure ? c.cause : c;
}

describe('a step retried by the workflow', () => {
  it('completes after more heartbeat timeouts than the real-failure budget (or the 6 attempts steps had)', async () => {
    const r = await step(['hang', 'hang', 'hang', 'hang', 'hang', 'hang', 'hang', 'ok']);
    expect(r.failure).toBeUndefined();
    expect(r.result).toBe('ok on call 8');
    expect(r.calls).toBe(8);
    expect(r.history).toMatchObject({ scheduled: 8, completed: 1, failed: 0, serverAttempts: [1], timers: [] });
    expect(r.history.timedOut).toEqual(Array(7).fill('TIMEOUT_TYPE_HEARTBEAT'));
    expect(r.history.patches).toEqual([STEP_RETRY_PATCH]);
  });

  it('real failures between lost workers count only themselves and wait out the backoff', async () => {
    const r = await step(['fail', 'hang', 'fail', 'hang', 'ok']);
    expect(r.result).toBe('ok on call 5');
    expect(r.calls).toBe(5);
    expect(r.history).toMatchObject({ scheduled: 5, completed: 1, failed: 2, serverAttempts: [1] });
    expect(r.history.timedOut).toEqual(['TIMEOUT_TYPE_HEARTBEAT', 'TIMEOUT_TYPE_HEARTBEAT']);
    // initialInterval, then × backoffCoefficient: counted in real failures, not attempts.
    expect(r.history.timers).toEqual([200, 400]);
  });

  it('retryable failures end the step after maximumAttempts real failures, with the real error', async () => {
    const r = await step(['fail', 'hang', 'fail', 'hang', 'fail', 'ok']);
    expect(r.result).toBeUndefined();
    expect(r.calls).toBe(5);
    expect(r.history).toMatchObject({ scheduled: 5, completed: 0, failed: 3, timers: [200, 400] });
    expect(r.history.timedOut).toHaveLength(2);
    const c = cause(r.failure);
    expect(c).toBeInstanceOf(ApplicationFailure);
    expect(c).toMatchObject({ message: 'apt mirror unreachable (call 5)', type: 'CommandFailed' });
  });

  it('non-retryable failures, by flag or by type, end the step at once', async () => {
    for (const behaviour of ['fatal', 'fatal-type'] as const) {
      const r = await step([behaviour, 'ok']);
      expect(r.calls, behaviour).toBe(1);
      expect(r.history, behaviour).toMatchObject({ scheduled: 1, failed: 1, timers: [] });
      expect(cause(r.failure), behaviour).toMatchObject({
        message: 'host key changed (call 1)',
        type: 'HostKeyMismatch',
      });
    }
  });

  it('worker losses are bounded: the step fails on its maximumWorkerLosses-th lost attempt', async () => {
    const r = await step(['hang'], { ...FAST, maximumWorkerLosses: 3 });
    expect(r.calls).toBe(3);
    expect(r.history).toMatchObject({ scheduled: 3, completed: 0, failed: 0 });
    expect(r.history.timedOut).toHaveLength(3);
    const c = cause(r.failure);
    expect(c).toMatchObject({ type: WORKER_LOST, nonRetryable: true });
    expect(c?.message).toMatch(/^scripted lost its worker on 3 attempts \(no heartbeat for 1 second each time; 0 real/);
  });

  it('a worker process killed with SIGKILL mid-step: the attempt is rescheduled and another worker completes it', async () => {
    // Workflow tasks here, activities only in the process to kill until it is dead.
    await startWorker({ taskQueue: queues.kill, workflowBundle: await workflowBundle(TEST_WORKFLOWS) });
    const child: ChildProcess = spawn(
      process.execPath,
      ['--import', 'tsx', KILLABLE_WORKER, env.address, env.namespace, queues.kill],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const started = new Promise<string>((resolve) =>
      child.stdout!.on('data', (d: Buffer) => {
        const m = /started (\S+)/.exec(d.toString());
        if (m) resolve(m[1]!);
      }),
    );
    const run = step(['ok'], { ...FAST, heartbeatTimeout: '3 seconds' }, queues.kill);
    const key = await started;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    await startWorker({ taskQueue: queues.kill, activities: { scripted: act } });
    const r = await run;
    expect(r.result).toBe('ok on call 1'); // the survivor's first call
    expect(calls.get(key)).toBe(1);
    expect(r.history).toMatchObject({ scheduled: 2, completed: 1, failed: 0, serverAttempts: [1], timers: [] });
    expect(r.history.timedOut).toEqual(['TIMEOUT_TYPE_HEARTBEAT']);
  });

  it('finished runs replay on the current workflow code', async () => {
    const r = await step(['fail', 'hang', 'ok']);
    await Worker.runReplayHistory(
      { workflowBundle: await workflowBundle(TEST_WORKFLOWS), dataConverter: encryptingDataConverter(env.keys) },
      r.history.history,
    );
  });
});

describe('the production profiles', () => {
  const spec = oneHostSpec();
  const provisionCalls: string[] = [];
  let inspect: Behaviour = 'ok';
  const double =
    (name: string, script: Behaviour[] = []) =>
    async (_: StepInput) => {
      const n = provisionCalls.filter((c) => c === name).length;
      provisionCalls.push(name);
      const b = name === 'inspectHost' ? inspect : (script[n] ?? 'ok');
      if (b === 'hang') await sleep(profileMs(HOST_STEP.heartbeatTimeout) + 2_000);
      if (b === 'fail') throw ApplicationFailure.retryable('dpkg lock held', 'CommandFailed');
      if (b === 'fatal-type') throw ApplicationFailure.retryable('host key changed', 'HostKeyMismatch');
      return { changes: [], findings: [], hostKey: 'ssh-ed25519 AAAA' };
    };

  beforeAll(async () => {
    await startWorker({
      taskQueue: queues.real,
      workflowBundle: await workflowBundle(),
      activities: {
        inspectHost: double('inspectHost'),
        ensureBasePackages: double('ensureBasePackages', ['hang', 'ok']),
        ensureDockerEngine: double('ensureDockerEngine', ['fail', 'ok']),
        ensureOpsUser: double('ensureOpsUser'),
        ensureStackLayout: double('ensureStackLayout'),
        recordApplied: async () => ({ changes: [], findings: [] }),
      },
    });
  });

  const provision = async (id: string) => {
    provisionCalls.length = 0;
    const handle = await env.client.workflow.start('provisionHost', {
      taskQueue: queues.real,
      workflowId: `provision/vps1/${id}-${randomBytes(3).toString('hex')}`,
      args: [{ spec, host: 'vps1', mode: 'apply' }],
    });
    const outcome = await handle.result().then(
      (report) => report as HostReport,
      (err: unknown) => err as WorkflowFailedError,
    );
    return { outcome, history: await attempts(handle.workflowId) };
  };

  it('provision survives a lost worker in HOST_STEP (15 s heartbeat timeout) and retries a real failure after 2 s', async () => {
    inspect = 'ok';
    const { outcome, history } = await provision('lost');
    expect((outcome as HostReport).status).toBe('completed');
    expect(provisionCalls).toEqual([
      'inspectHost',
      'ensureBasePackages',
      'ensureBasePackages',
      'ensureDockerEngine',
      'ensureDockerEngine',
      'ensureOpsUser',
      'ensureStackLayout',
    ]);
    expect(history.timedOut).toEqual(['TIMEOUT_TYPE_HEARTBEAT']);
    expect(history.timers).toEqual([2_000]);
    expect(history.patches).toEqual([STEP_RETRY_PATCH, CONTROLS_FAIL_PATCH]);
    const scheduled = history.history.events!.flatMap((e) => e.activityTaskScheduledEventAttributes ?? []);
    expect(new Set(scheduled.map((s) => tsToMs(s.heartbeatTimeout)))).toEqual(new Set([15_000]));
    expect(new Set(scheduled.map((s) => s.retryPolicy?.maximumAttempts))).toEqual(new Set([1]));
  }, 60_000);

  it('a host key mismatch on inspectHost (HOST_INSPECT) fails the run on the first attempt', async () => {
    inspect = 'fatal-type';
    const { outcome, history } = await provision('key');
    expect(outcome).toBeInstanceOf(WorkflowFailedError);
    expect((outcome as WorkflowFailedError).cause?.message).toMatch(/provision of vps1 failed: host key changed/);
    expect(provisionCalls).toEqual(['inspectHost']);
    expect(history).toMatchObject({ scheduled: 1, failed: 1, timers: [] });
  });
});

describe('histories recorded before steps were retried by the workflow', () => {
  // Recorded by worker-loss-histories/record.ts: the server retried each step; an upgraded worker must replay them.
  for (const file of ['legacy-inspect-exhausted.binpb', 'upgraded-mid-deploy.binpb']) {
    it(`${file} replays without a determinism error`, async () => {
      const history = proto.temporal.api.history.v1.History.decode(readFileSync(new URL(file, HISTORIES)));
      await Worker.runReplayHistory({ workflowBundle: await workflowBundle() }, history);
    });
  }
});
