/**
 * The watchdog workflow against the shared dev server, with steward's real activities: schedules made as `steward
 * schedule apply` makes them (paused, so none of them runs), observed through Temporal; a clock moved forward stands
 * for the time a stopped check takes to become overdue. A loopback receiver (the stand-in for an operator's webhook)
 * hears of the overdue one, signed; a schedule still within its interval and the schedules of another task queue are
 * not told of; a receiver that is down is in the run's result, and the run completes.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
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

async function watchdogRun(webhooks: Webhook[]): Promise<WatchdogResult> {
  return env.client.workflow.execute('checkWatchdog', {
    taskQueue,
    workflowId: `watchdog-test-${randomBytes(4).toString('hex')}`,
    args: [{ webhooks, everyMs: 15 * MIN }],
  });
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
  // The checks are judged as if 2 minutes had passed: a 30 s drift schedule made now is then overdue, an hourly not.
  worker = await doublesWorker(env, taskQueue, {
    ...createWatchdogActivities({ now: () => new Date(Date.now() + 2 * MIN) }),
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
  it('tells the webhook, signed, of the schedule of its task queue that has not run for twice its interval', async () => {
    const [overdue] = await schedulesFor(often, '30s', taskQueue);
    const [onTime] = await schedulesFor(seldom, '1h', taskQueue);
    await schedulesFor(elsewhere, '30s', `${taskQueue}-other`);
    const hook: Webhook = { name: 'ops', url, format: 'json', signingKeyEnv: KEY_ENV, events: ['check.overdue'] };

    // Schedules are listed through visibility: a run may come before the new ones are seen.
    let result: WatchdogResult | undefined;
    for (let i = 0; i < 20 && !(result?.schedules === 2 && result.overdue.includes(overdue!)); i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, 500));
      got.length = 0;
      result = await watchdogRun([hook]);
    }
    expect(result).toMatchObject({ overdue: [overdue], told: [overdue], missed: [] });
    expect(result!.schedules).toBe(2);
    expect(result!.overdue).not.toContain(onTime);

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
    // Made before the window the moved clock looks at (twice 30 s): no run of it ended since then.
    expect(body).not.toHaveProperty('overdueSince');
    expect(Date.parse(body.noRunSince as string)).toBeLessThanOrEqual(Date.now() + MIN);
    expect(Date.parse(body.noRunSince as string)).toBeGreaterThan(Date.now() + MIN - 10_000);
  }, 60_000);

  it('a receiver that is down does not fail the run: the missed delivery is in its result', async () => {
    // A port nothing listens on: one a server held a moment ago.
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const down: Webhook = {
      name: 'down',
      url: `http://127.0.0.1:${port}/hook`,
      format: 'text',
      signingKeyEnv: KEY_ENV,
      events: ['check.overdue'],
    };
    // The clock is moved, the previous run's start is not: the check became overdue after it, so it is told again.
    const result = await watchdogRun([down]);
    expect(result.told).toContain(made[0]);
    expect(result.missed).toEqual(
      result.told.map((schedule) => ({
        schedule,
        webhook: 'down',
        error: expect.stringMatching(/ECONNREFUSED|fetch failed/) as unknown,
      })),
    );
  }, 60_000);
});
