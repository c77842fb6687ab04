/**
 * The watchdog workflow against the shared dev server, with steward's real activities: schedules made as `steward
 * schedule apply` makes them (paused, so none of them runs), observed through Temporal; a clock moved forward stands
 * for the time a stopped check takes to become overdue. A loopback receiver (the stand-in for an operator's webhook)
 * hears of the overdue one, signed, once; a schedule still within its interval and the schedules of another task
 * queue are not told of; a receiver that is down fails the run, and the next run tells what it could not.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import { WorkflowFailedError } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNotifyActivities } from '../../activities/notify';
import { createWatchdogActivities } from '../../activities/watchdog';
import { scheduleDigest, scheduleOptions } from '../../client/commands/schedule';
import { desiredSchedules, scheduleMemo } from '../../model/schedules';
import { specSchema, type Webhook } from '../../model/schema';
import { validate } from '../../model/validate';
import type { WatchdogResult } from '../../workflows/watchdog';
import { doublesWorker, testEnv, type TestEnv } from '../support/temporal';

const KEY_ENV = 'STEWARD_TEST_WATCHDOG_KEY';
const key = randomBytes(16).toString('hex');
process.env[KEY_ENV] = key;
const suffix = randomBytes(3).toString('hex');
const taskQueue = `watchdog-workflow-${suffix}`;
/** Host names of this file only: schedule ids are the namespace's. */
const [often, seldom, elsewhere] = [`wd-often-${suffix}`, `wd-seldom-${suffix}`, `wd-other-${suffix}`];
const MIN = 60_000;

let env: TestEnv;
let worker: { stop(): Promise<void> };
let receiver: Server;
let url: string;
const got: { headers: IncomingHttpHeaders; body: string }[] = [];
const made: string[] = [];

/** Makes, paused, the schedules a spec for `host` asks for on `queue`: drift every `every`, nothing else. */
async function schedulesFor(host: string, every: string, queue: string): Promise<string[]> {
  const spec = validate(
    specSchema,
    {
      version: 1,
      hosts: [{ name: host, address: '203.0.113.10' }],
      schedules: { drift: { every }, memory: { enabled: false } },
    },
    'steward.yaml',
  );
  const workflowTypes = new Set(['driftHost']);
  const { schedules } = desiredSchedules(spec, { specPath: '/ops/steward.yaml', taskQueue: queue, workflowTypes });
  for (const d of schedules) {
    const options = scheduleOptions(d, scheduleMemo(d, scheduleDigest(d), '/ops/steward.yaml', queue), queue);
    await env.client.schedule.create({ ...options, state: { paused: true, note: 'maintenance window' } });
    made.push(d.id);
  }
  return schedules.map((d) => d.id);
}

/** One watchdog run: its result, or the result in its failure's details when a delivery was missed. */
async function watchdogRun(webhooks: Webhook[]): Promise<WatchdogResult & { failed?: string }> {
  try {
    return await env.client.workflow.execute('checkWatchdog', {
      taskQueue,
      workflowId: `watchdog-test-${randomBytes(4).toString('hex')}`,
      args: [{ webhooks, everyMs: 15 * MIN }],
    });
  } catch (err) {
    if (!(err instanceof WorkflowFailedError) || !(err.cause instanceof ApplicationFailure)) throw err;
    return { ...(err.cause.details?.[0] as WatchdogResult), failed: `${err.cause.type}: ${err.cause.message}` };
  }
}

/** Waits until the schedule listing (visibility, which the watchdog reads) shows every one of `ids`. */
async function listed(ids: readonly string[]): Promise<void> {
  for (let i = 0; i < 40; i++) {
    const seen = new Set<string>();
    for await (const s of env.client.schedule.list()) seen.add(s.scheduleId);
    if (ids.every((id) => seen.has(id))) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`schedules not listed: ${ids.join(', ')}`);
}

beforeAll(async () => {
  env = await testEnv();
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      got.push({ headers: req.headers, body });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  // Every run judges as if 2 minutes had passed since it started: a 30 s drift schedule made now is then overdue, an
  // hourly one not.
  worker = await doublesWorker(env, taskQueue, {
    ...createWatchdogActivities({ shiftMs: 2 * MIN }),
    ...createNotifyActivities(),
  });
}, 120_000);

afterAll(async () => {
  await Promise.all(
    made.map((id) =>
      env?.client.schedule
        .getHandle(id)
        .delete()
        .catch(() => undefined),
    ),
  );
  await worker?.stop();
  await new Promise((r) => receiver?.close(r));
  await env?.teardown();
  delete process.env[KEY_ENV];
});

describe('the watchdog workflow', () => {
  it('tells the webhook, signed, of the schedule of its task queue that has not run for twice its interval; once', async () => {
    const [overdue] = await schedulesFor(often, '30s', taskQueue);
    const [onTime] = await schedulesFor(seldom, '1h', taskQueue);
    const [other] = await schedulesFor(elsewhere, '30s', `${taskQueue}-other`);
    await listed([overdue!, onTime!, other!]);
    const hook: Webhook = { name: 'ops', url, format: 'json', signingKeyEnv: KEY_ENV, events: ['check.overdue'] };

    // 1. The receiver is down: every delivery is tried, then the run fails saying who could not be told of what.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const down: Webhook = { ...hook, name: 'down', url: `http://127.0.0.1:${port}/hook`, format: 'text' };
    const missed = await watchdogRun([down]);
    expect(missed).toMatchObject({ schedules: 2, overdue: [overdue], told: [overdue] });
    expect(missed.missed).toEqual([
      { schedule: overdue, webhook: 'down', error: expect.stringContaining('ECONNREFUSED') as unknown },
    ]);
    expect(missed.failed).toMatch(/^NotificationMissed: could not tell down of steward\/wd-often-/);

    // 2. The next run, to a receiver that answers: the failed run told nobody, so this one tells, signed.
    const told = await watchdogRun([hook]);
    expect(told).toEqual({
      checkedAt: expect.any(String),
      schedules: 2,
      overdue: [overdue],
      told: [overdue],
      missed: [],
    });
    expect(got).toHaveLength(1);
    const [message] = got;
    const timestamp = message!.headers['x-steward-timestamp'] as string;
    const signature = createHmac('sha256', key).update(`${timestamp}.${message!.body}`).digest('hex');
    expect(message!.headers['x-steward-signature']).toBe(`sha256=${signature}`);
    expect(message!.headers['x-steward-event']).toBe('check.overdue');
    const body = JSON.parse(message!.body) as Record<string, unknown>;
    expect(body).toMatchObject({
      event: 'check.overdue',
      host: often,
      operation: 'drift',
      status: 'overdue',
      schedule: overdue,
      every: '30s',
      paused: true,
      note: 'maintenance window',
      trigger: `schedule:${overdue}`,
    });
    // Made before the window this run looked at (twice 30 s before its moved clock): no run of it ended since the
    // window's start, and since when it is overdue is not known.
    expect(body).not.toHaveProperty('overdueSince');
    expect(Date.parse(body.noRunSince as string)).toBeGreaterThan(Date.parse(told.checkedAt) - 2 * MIN);

    // 3. The run after: the spell was told; nothing again.
    expect(await watchdogRun([hook])).toMatchObject({ overdue: [overdue], told: [], missed: [] });
    expect(got).toHaveLength(1);
  }, 60_000);
});
