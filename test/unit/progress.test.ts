/**
 * Progress of long steps: an activity's reported progress rides its heartbeats (encrypted like every payload), and
 * the CLI reads it back from the running activity with the client's codec and prints it as one line.
 */
import { fileURLToPath } from 'node:url';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { activityStep, reportProgress } from '../../activities/context';
import { followRuns, stepProgress } from '../../client/operation';
import { encryptingDataConverter, ENCODING_ENCRYPTED } from '../../codec/aes-gcm';
import { describeProgress } from '../../model/report';
import { testEnv, workflowBundle, type TestEnv } from '../support/temporal';

const WORKFLOWS = fileURLToPath(new URL('./progress.workflows.ts', import.meta.url));
const QUEUE = 'progress-test';

let env: TestEnv;
let worker: Worker;
let running: Promise<void>;
let release: () => void = () => {};

beforeAll(async () => {
  env = await testEnv();
  worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace,
    dataConverter: encryptingDataConverter(env.keys),
    taskQueue: QUEUE,
    workflowBundle: await workflowBundle(WORKFLOWS),
    activities: {
      reportingStep: () =>
        activityStep(async () => {
          reportProgress({ doing: 'sending image layers', done: 412e6, total: 861e6, rate: 38.2e6, secondsLeft: 11.8 });
          await new Promise<void>((resolve) => (release = resolve));
        }),
    },
  });
  running = worker.run();
});

afterAll(async () => {
  release();
  worker?.shutdown();
  await running;
});

describe('step progress', () => {
  it('reads as one line, with only the figures the step could count', () => {
    expect(
      describeProgress({ doing: 'sending image layers', done: 412e6, total: 861e6, rate: 38.2e6, secondsLeft: 11.8 }),
    ).toBe('sending image layers: 412 of 861 MB (47%), 38.2 MB/s, about 12 s left');
    expect(describeProgress({ doing: 'sending image layers', done: 2.5e6 })).toBe('sending image layers: 2.5 MB');
    expect(describeProgress({ doing: 'waiting for gateway (starting) to be healthy', waited: 14.7, limit: 120 })).toBe(
      'waiting for gateway (starting) to be healthy: 14 s of at most 120 s',
    );
    expect(describeProgress({ doing: 'loading images on the host' })).toBe('loading images on the host');
  });

  it('rides the running activity heartbeats, encrypted, and the CLI prints it from them', async () => {
    const handle = await env.client.workflow.start('progressRun', {
      taskQueue: QUEUE,
      workflowId: `progress-${Date.now()}`,
    });
    let line: string | undefined;
    for (let i = 0; i < 100 && !line; i++) {
      line = await stepProgress(env.client, handle, 'reportingStep');
      if (!line) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(line).toBe('sending image layers: 412 of 861 MB (47%), 38.2 MB/s, about 12 s left');
    // As the server holds it: encrypted, so the UI shows it only through the codec server.
    const pending = (await handle.describe()).raw.pendingActivities?.[0];
    const payload = pending?.heartbeatDetails?.payloads?.[0];
    expect(Buffer.from(payload!.metadata!.encoding!).toString()).toBe(ENCODING_ENCRYPTED);
    expect(Buffer.from(payload!.data!).toString('latin1')).not.toContain('sending image layers');
    release();
    await handle.result();
  });

  it('on a terminal shows the running step and its figures; in a log, one line per step when it ends', async () => {
    const printed = async (quiet: boolean): Promise<string[]> => {
      const lines: string[] = [];
      const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void lines.push(a.join(' ')));
      try {
        const workflowId = `progress-follow-${quiet}-${Date.now()}`;
        const handle = await env.client.workflow.start('progressRun', { taskQueue: QUEUE, workflowId });
        const follow = followRuns(env.client, [{ label: 'web1', workflowId }], 'apply', undefined, quiet);
        // Long enough for the follower to see the step running and to ask for its figures once.
        for (let i = 0; i < 100 && (quiet ? i < 40 : !lines.some((l) => l.includes('412 of 861 MB'))); i++) {
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
        release();
        await handle.result();
        await new Promise((resolve) => setTimeout(resolve, 1500));
        await follow.stop();
      } finally {
        log.mockRestore();
      }
      return lines;
    };
    const terminal = await printed(false);
    expect(terminal.some((l) => /… web1 +reportingStep +running/.test(l))).toBe(true);
    expect(terminal.some((l) => l.includes('sending image layers: 412 of 861 MB'))).toBe(true);
    const quiet = await printed(true);
    expect(quiet).toEqual([expect.stringMatching(/^ {2}✓ web1 +reportingStep +no change/)]);
  }, 30_000);
});
