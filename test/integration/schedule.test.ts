/**
 * Schedules end to end on one provisioned simulator, through the CLI: `schedule apply` twice gives the same set;
 * `trigger` starts a drift-repair run that visibility, `steward status` and the run's history show with steward's
 * search attributes, its trigger and readable step summaries; a schedule left running repairs an owner changed by
 * hand without anyone calling steward; `pause` stops runs and `resume` restarts them; a schedule removed from the
 * spec is deleted by the next apply, and nothing steward did not make is touched. Also the host lock inside the
 * workflow: a run started while another steward run (of any operation) holds the host does nothing and completes as
 * `skipped`, unless a schedule started it: then it waits its turn.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload } from '@temporalio/common';
import { defaultPayloadConverter, TypedSearchAttributes } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import type { ApplyResult, ScheduleView } from '../../client/commands/schedule';
import type { RunSummary } from '../../client/commands/status';
import { simulatorExec, type Simulator } from '../../client/dev/simulator';
import { loadSpec } from '../../client/spec-file';
import { AesGcmPayloadCodec, ENCODING_ENCRYPTED, isEncrypted } from '../../codec/aes-gcm';
import type { HostReport } from '../../model/report';
import { triggerQuery } from '../../model/runs';
import type { SpecInput } from '../../model/schema';
import {
  StewardChanges,
  StewardHost,
  StewardOperation,
  StewardOutcome,
  StewardTrigger,
} from '../../model/search-attributes';
import { hostName, makeKeyPair, stage, writeSpec, type Stage } from '../support/fixtures';

const TASK_QUEUE = 'schedule-test';

let world: Stage;
let sim: Simulator;
let host: string;
let driftId: string;
/** The watchdog's schedule, made with a webhook that hears of overdue checks. */
const WATCHDOG = 'steward/watchdog';

/** The spec with the drift schedule every `every` (memory checks off: this host is provisioned, not deployed). */
function specWith(schedules: SpecInput['schedules']): string {
  return writeSpec(world.keys, [sim], { schedules }, 'schedules.yaml');
}
const driftEvery = (every: string) => specWith({ drift: { every, audit: false }, memory: { enabled: false } });

async function cli<T>(spec: string, ...args: string[]): Promise<T> {
  const r = await world.cli(spec, ...args);
  if (r.code !== 0) throw new Error(`steward ${args.join(' ')} exited ${r.code}: ${r.stderr || r.stdout}`);
  return JSON.parse(r.stdout) as T;
}

async function onHost(script: string): Promise<string> {
  const r = await simulatorExec(sim.container, ['sh', '-c', script]);
  if (r.exitCode !== 0) throw new Error(`on host: ${script}: ${r.stderr}`);
  return r.stdout.trim();
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 180_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value !== undefined) return value;
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(`timed out waiting for ${what}`);
}

interface Run {
  workflowId: string;
  runId: string;
  status: string;
  host?: string;
  operation?: string;
  outcome?: string;
  changes?: number;
  trigger?: string;
  startTime: Date;
}

/** Runs visibility lists for a query, newest first. */
async function runs(query: string): Promise<Run[]> {
  const found: Run[] = [];
  for await (const w of world.env.client.workflow.list({ query })) {
    const a = w.typedSearchAttributes;
    found.push({
      workflowId: w.workflowId,
      runId: w.runId,
      status: w.status.name,
      host: a.get(StewardHost),
      operation: a.get(StewardOperation),
      outcome: a.get(StewardOutcome),
      changes: a.get(StewardChanges),
      trigger: a.get(StewardTrigger),
      startTime: w.startTime,
    });
  }
  return found.sort((a, b) => b.startTime.getTime() - a.startTime.getTime());
}

const scheduled = () => runs(`${triggerQuery(`schedule:${driftId}`)} AND ${StewardOperation.name} = 'drift'`);

async function decode(payload: Payload | null | undefined): Promise<unknown> {
  if (!payload) return undefined;
  const [plain] = await new AesGcmPayloadCodec(world.env.keys).decode([payload]);
  return defaultPayloadConverter.fromPayload(plain!);
}

beforeAll(async () => {
  world = await stage({ taskQueue: TASK_QUEUE, simulators: 1, golden: 'provisioned' });
  sim = world.sims[0]!;
  host = hostName(sim);
  driftId = `steward/${host}/drift`;
}, 600_000);

afterAll(async () => {
  if (world) await world.cli(driftEvery('1h'), 'schedule', 'delete', '--all').catch(() => undefined);
  await world?.close();
});

describe('steward schedule', () => {
  it('apply creates the schedules the spec asks for; applying twice changes nothing', async () => {
    const spec = driftEvery('1h');
    const first = await cli<ApplyResult & { plan: boolean }>(spec, 'schedule', 'apply');
    expect(first).toMatchObject({ created: [driftId], updated: [], deleted: [], unchanged: [] });
    const again = await cli<ApplyResult>(spec, 'schedule', 'apply');
    expect(again).toMatchObject({ created: [], updated: [], deleted: [], unchanged: [driftId] });

    const { schedules } = await cli<{ schedules: ScheduleView[] }>(spec, 'schedule', 'list');
    expect(schedules).toEqual([
      expect.objectContaining({ id: driftId, kind: 'drift', host, every: '1h', paused: false, spec }),
    ]);

    const d = await world.env.client.schedule.getHandle(driftId).describe();
    expect(d.policies).toMatchObject({ overlap: 'SKIP', catchupWindow: 600_000, pauseOnFailure: false });
    expect(d.state.note).toBe(`steward: drift repair of ${host}, every 1h, from ${spec}`);
    expect(d.spec.intervals).toEqual([{ every: 3_600_000, offset: expect.any(Number) }]);
    if (d.action.type !== 'startWorkflow') throw new Error('not a start-workflow schedule');
    expect(d.action).toMatchObject({ workflowType: 'driftHost', workflowId: `drift/${host}/scheduled` });
    const attributes = new TypedSearchAttributes(
      d.action.typedSearchAttributes instanceof TypedSearchAttributes
        ? d.action.typedSearchAttributes.getAll()
        : d.action.typedSearchAttributes,
    );
    expect(attributes.get(StewardTrigger)).toBe(`schedule:${driftId}`);
    expect(attributes.get(StewardHost)).toBe(host);
    expect(attributes.get(StewardOperation)).toBe('drift');
    // The spec in the schedule's action is a payload like any other: encrypted before it left the CLI.
    const input = d.raw.schedule?.action?.startWorkflow?.input?.payloads?.[0];
    expect(isEncrypted(input as Payload)).toBe(true);
    expect(Buffer.from((input as Payload).metadata!.encoding!).toString()).toBe(ENCODING_ENCRYPTED);
  }, 120_000);

  it('trigger starts a drift-repair run that visibility, status and the UI history show', async () => {
    const spec = driftEvery('1h');
    expect(await cli(spec, 'schedule', 'trigger', driftId)).toEqual({ triggered: [driftId] });
    const run = await waitFor('the triggered run to finish', async () => {
      const [r] = await scheduled();
      return r && r.status === 'COMPLETED' && r.outcome === 'completed' ? r : undefined;
    });
    expect(run).toMatchObject({ host, operation: 'drift', changes: 0, trigger: `schedule:${driftId}` });
    expect(run.workflowId).toMatch(new RegExp(`^drift/${host}/scheduled-\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\dZ$`));

    const status = await cli<{ runs: RunSummary[] }>(spec, 'status', '--host', host, '--operation', 'drift');
    expect(status.runs[0]).toMatchObject({
      workflowId: run.workflowId,
      outcome: 'completed',
      trigger: `schedule:${driftId}`,
    });

    // What the UI shows through the codec server: the run's summary and one summary per step.
    const history = await world.env.client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
    const events = history.events ?? [];
    expect(await decode(events[0]?.userMetadata?.summary)).toBe(
      `drift repair of ${host}, started by schedule:${driftId}`,
    );
    const steps = events.filter((e) => e.activityTaskScheduledEventAttributes);
    const summaries = await Promise.all(steps.map((e) => decode(e.userMetadata?.summary)));
    expect(summaries).toEqual(expect.arrayContaining([`findEarlierRun drift on ${host}`, `observeDrift on ${host}`]));
    expect(steps.every((e) => isEncrypted(e.userMetadata!.summary as Payload))).toBe(true);
    const report = (await world.env.client.workflow.getHandle(run.workflowId, run.runId).result()) as HostReport;
    // Never deployed or hardened: drift compares what provision applied and says so.
    expect(report.findings.map((f) => f.id)).toContain('drift.not-applied');
  }, 240_000);

  it('webhooks are told, signed, of drift a schedule found and of a scheduled run that failed; a receiver that is down is reported', async () => {
    // The receiver: a local HTTP server (the stand-in for an operator's chat or paging webhook).
    const key = randomBytes(32).toString('hex');
    process.env.STEWARD_TEST_WEBHOOK_KEY = key; // the in-process worker's environment
    const got: { headers: IncomingHttpHeaders; body: string; at: number }[] = [];
    const receiver: Server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        got.push({ headers: req.headers, body, at: Date.now() });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/steward`;
    const notifying = (hookUrl: string, hostKey?: string): string => {
      const file = driftEvery('1h');
      const doc = parse(readFileSync(file, 'utf8')) as SpecInput;
      doc.notifications = { webhooks: [{ name: 'ops', url: hookUrl, signingKeyEnv: 'STEWARD_TEST_WEBHOOK_KEY' }] };
      if (hostKey) doc.hosts[0]!.hostKey = hostKey;
      const out = file.replace(/\.yaml$/, '-notify.yaml');
      writeFileSync(out, stringify(doc));
      return out;
    };
    const triggered = async (
      spec: string,
      outcome: string,
    ): Promise<{ run: Run; report: HostReport; ended: number }> => {
      const before = new Set((await scheduled()).map((r) => r.runId));
      await cli(spec, 'schedule', 'apply');
      await cli(spec, 'schedule', 'trigger', driftId);
      const run = await waitFor(`a triggered run that ends ${outcome}`, async () =>
        (await scheduled()).find((r) => !before.has(r.runId) && r.outcome === outcome && r.status !== 'RUNNING'),
      );
      const handle = world.env.client.workflow.getHandle(run.workflowId, run.runId);
      const ended = (await handle.describe()).closeTime!.getTime();
      const report = (await handle
        .result()
        .catch((err: { cause?: { details?: unknown[] } }) => err.cause?.details?.[0])) as HostReport;
      return { run, report, ended };
    };
    const verified = (m: (typeof got)[number]): unknown => {
      const timestamp = m.headers['x-steward-timestamp'] as string;
      const signature = createHmac('sha256', key).update(`${timestamp}.${m.body}`).digest('hex');
      expect(m.headers['x-steward-signature']).toBe(`sha256=${signature}`);
      return JSON.parse(m.body);
    };
    try {
      // 1. Drift made by hand; the schedule's run repairs it and the webhook hears of it at once.
      await onHost('chown root:root /opt/openclaw/state');
      const drift = await triggered(notifying(url), 'completed');
      expect(drift.report.changes.map((c) => c.resource)).toContain('dir:/opt/openclaw/state');
      expect(got).toHaveLength(1);
      expect(got[0]!.headers['x-steward-event']).toBe('drift.found');
      expect(got[0]!.at - drift.ended).toBeLessThan(5_000);
      expect(verified(got[0]!)).toMatchObject({
        event: 'drift.found',
        host,
        operation: 'drift',
        mode: 'apply',
        trigger: `schedule:${driftId}`,
        workflowId: drift.run.workflowId,
        resources: expect.arrayContaining(['dir:/opt/openclaw/state']),
      });
      expect(drift.report.findings).toContainEqual(expect.objectContaining({ id: 'notify.sent' }));

      // The watchdog came with the webhook (subscribed to every event, check.overdue too). Run now, it looks at this
      // queue's schedules and finds the hourly drift schedule on time: it tells nothing.
      await cli(notifying(url), 'schedule', 'trigger', WATCHDOG);
      const watchdog = await waitFor('the watchdog run', async () =>
        (await runs(triggerQuery(`schedule:${WATCHDOG}`))).find((r) => r.status === 'COMPLETED'),
      );
      expect(await world.env.client.workflow.getHandle(watchdog.workflowId, watchdog.runId).result()).toMatchObject({
        schedules: 1,
        overdue: [],
        told: [],
        missed: [],
      });
      expect(got).toHaveLength(1);

      // 2. A scheduled run that fails: the host presents another key than the one pinned.
      const stranger = makeKeyPair().publicKey.split(' ').slice(0, 2).join(' ');
      const failed = await triggered(notifying(url, stranger), 'failed');
      expect(got).toHaveLength(2);
      expect(got[1]!.at - failed.ended).toBeLessThan(5_000);
      expect(verified(got[1]!)).toMatchObject({
        event: 'run.failed',
        host,
        status: 'failed',
        error: expect.any(String),
      });
      expect(failed.report.findings).toContainEqual(expect.objectContaining({ id: 'notify.sent' }));

      // 3. The receiver is down: the run still completes, and its report says who was not told and why.
      await new Promise((r) => receiver.close(r));
      await onHost('chown root:root /opt/openclaw/state');
      const missed = await triggered(notifying(url), 'completed');
      expect(missed.report.status).toBe('completed');
      expect(missed.report.findings).toContainEqual(
        expect.objectContaining({
          id: 'notify.missed',
          severity: 'medium',
          message: expect.stringContaining('ECONNREFUSED'),
        }),
      );
      expect(got).toHaveLength(2);
    } finally {
      receiver.close();
      delete process.env.STEWARD_TEST_WEBHOOK_KEY;
      await cli(driftEvery('1h'), 'schedule', 'apply'); // the schedule as the next tests expect it
    }
  }, 240_000);

  it('a schedule left running repairs a drift introduced by hand, without anyone calling steward', async () => {
    const updated = await cli<ApplyResult>(driftEvery('30s'), 'schedule', 'apply');
    expect(updated).toMatchObject({ created: [], updated: [driftId], deleted: [], unchanged: [] });
    const want = await onHost('stat -c %u:%g /opt/openclaw/state');
    const since = new Date(); // the webhook test's repairs came before
    await onHost('chown root:root /opt/openclaw/state');

    await waitFor('the schedule to repair the owner', async () =>
      (await onHost('stat -c %u:%g /opt/openclaw/state')) === want ? true : undefined,
    );
    const repair = await waitFor('the repairing run in visibility', async () => {
      const found = (await scheduled()).find(
        (r) => r.startTime >= since && r.outcome === 'completed' && (r.changes ?? 0) > 0,
      );
      return found;
    });
    const report = (await world.env.client.workflow.getHandle(repair.workflowId, repair.runId).result()) as HostReport;
    expect(report.findings.map((f) => f.resource)).toContain('dir:/opt/openclaw/state');
    expect(report.changes.map((c) => c.resource)).toContain('dir:/opt/openclaw/state');
    // The provision it ran as a child carries the schedule as its trigger too.
    const children = await waitFor("the repair's provision in visibility", async () => {
      const found = await runs(`${triggerQuery(`schedule:${driftId}`)} AND ${StewardOperation.name} = 'provision'`);
      return found.some((r) => r.startTime >= since && r.outcome === 'completed') ? found : undefined;
    });
    expect(children[0]).toMatchObject({ host, outcome: 'completed', trigger: `schedule:${driftId}` });
    expect(children[0]!.workflowId).toMatch(new RegExp(`^provision/${host}/\\d{4}-`));
  }, 300_000);

  it('pause stops runs; resume restarts them', async () => {
    const spec = driftEvery('30s');
    const handle = world.env.client.schedule.getHandle(driftId);
    // When it would run next, unpaused (the interval's offset comes from the id).
    const due = (await handle.describe()).info.nextActionTimes.map((t) => t.getTime());
    expect(await cli(spec, 'schedule', 'pause', '--note', 'maintenance')).toEqual({ paused: [driftId] });
    await waitFor('runs in flight to finish', async () =>
      (await handle.describe()).info.runningActions.length === 0 ? true : undefined,
    );
    const taken = (await handle.describe()).info.numActionsTaken;
    const [paused] = (await cli<{ schedules: ScheduleView[] }>(spec, 'schedule', 'list')).schedules;
    expect(paused).toMatchObject({ paused: true, note: 'maintenance' });

    // Past the next time it was due (a few seconds' grace for the scheduler), it has not run.
    const next = due.find((t) => t > Date.now());
    expect(next).toBeDefined();
    await new Promise((r) => setTimeout(r, next! - Date.now() + 3_000));
    expect((await handle.describe()).info.numActionsTaken).toBe(taken);

    expect(await cli(spec, 'schedule', 'resume')).toEqual({ resumed: [driftId] });
    const [resumed] = (await cli<{ schedules: ScheduleView[] }>(spec, 'schedule', 'list')).schedules;
    expect(resumed).toMatchObject({ paused: false, note: `steward: drift repair of ${host}, every 30s, from ${spec}` });
    await waitFor(
      'a run after resume',
      async () => ((await handle.describe()).info.numActionsTaken > taken ? true : undefined),
      90_000,
    );
  }, 300_000);

  it('a schedule removed from the spec is deleted by the next apply; nothing else is touched', async () => {
    const { client } = world.env;
    const foreign = `not-steward-${host}`;
    await client.schedule.create({
      scheduleId: foreign,
      spec: { intervals: [{ every: '1h' }] },
      action: { type: 'startWorkflow', workflowType: 'driftHost', taskQueue: `${TASK_QUEUE}-nobody`, args: [] },
      state: { paused: true },
    });
    try {
      const spec = specWith({ drift: { enabled: false }, memory: { enabled: false } });
      const removed = await cli<ApplyResult>(spec, 'schedule', 'apply');
      expect(removed).toMatchObject({ created: [], updated: [], deleted: [driftId], unchanged: [] });
      expect((await cli<{ schedules: ScheduleView[] }>(spec, 'schedule', 'list')).schedules).toEqual([]);
      await expect(client.schedule.getHandle(driftId).describe()).rejects.toThrow(/not found/i);
      expect((await client.schedule.getHandle(foreign).describe()).scheduleId).toBe(foreign);
      expect(await cli(spec, 'schedule', 'apply')).toMatchObject({ deleted: [], created: [] });
    } finally {
      await client.schedule.getHandle(foreign).delete();
    }
  }, 120_000);

  it('one run per host: a run that finds another running on its host yields (skipped), a scheduled one waits its turn', async () => {
    const { client } = world.env;
    const { spec } = await loadSpec(driftEvery('30s'));
    const attributes = (trigger: string) => [
      { key: StewardHost, value: host },
      { key: StewardOperation, value: 'drift' },
      { key: StewardOutcome, value: 'running' },
      { key: StewardTrigger, value: trigger },
    ];
    // The first run waits on a task queue no worker polls: running, and visible, for as long as the test needs. (The
    // schedule is gone by now, so nothing else runs drift on the host.)
    const holder = await client.workflow.start('driftHost', {
      taskQueue: `${TASK_QUEUE}-nobody`,
      workflowId: `drift/${host}/holder-${Date.now()}`,
      args: [{ spec, host, mode: 'plan', audit: false }],
      typedSearchAttributes: attributes('cli:test@holder'),
    });
    try {
      await waitFor('the holder in visibility', async () =>
        (await runs(`WorkflowId = '${holder.workflowId}'`))[0]?.status === 'RUNNING' ? true : undefined,
      );
      const second = await client.workflow.start('driftHost', {
        taskQueue: TASK_QUEUE,
        workflowId: `drift/${host}/second-${Date.now()}`,
        args: [{ spec, host, mode: 'plan', audit: false }],
        typedSearchAttributes: attributes('cli:test@second'),
      });
      const report = (await second.result()) as HostReport;
      expect(report).toMatchObject({ status: 'completed', alreadyRunning: holder.workflowId, changes: [] });
      expect(report.steps.every((s) => s.status === 'skipped')).toBe(true);
      const [seen] = await waitFor('the skipped outcome', async () => {
        const r = await runs(`WorkflowId = '${second.workflowId}'`);
        return r[0]?.outcome === 'skipped' ? r : undefined;
      });
      expect(seen).toMatchObject({ status: 'COMPLETED', outcome: 'skipped' });

      // The lock is per host, whatever the operation: a provision plan started by a person yields to the drift run,
      // naming it, and the CLI refuses before it starts anything.
      const other = await client.workflow.start('provisionHost', {
        taskQueue: TASK_QUEUE,
        workflowId: `provision/${host}/other-${Date.now()}`,
        args: [{ spec, host, mode: 'plan' }],
        typedSearchAttributes: attributes('cli:test@other').map((a) =>
          a.key === StewardOperation ? { key: StewardOperation, value: 'provision' } : a,
        ),
      });
      const yielded = (await other.result()) as HostReport;
      expect(yielded).toMatchObject({ alreadyRunning: holder.workflowId, alreadyRunningOperation: 'drift' });
      expect(yielded.findings[0]?.message).toBe(
        `a drift of ${host} is already running (workflow ${holder.workflowId}); this run changed nothing`,
      );
      const refused = await world.cli(driftEvery('30s'), 'provision', '--plan');
      expect(refused.code).toBe(1);
      expect(refused.stderr).toContain(`a drift of ${host} is already running (workflow ${holder.workflowId})`);

      // A scheduled run queues instead: it waits, naming the holder, and runs once the holder is gone.
      const queued = await client.workflow.start('driftHost', {
        taskQueue: TASK_QUEUE,
        workflowId: `drift/${host}/queued-${Date.now()}`,
        args: [{ spec, host, mode: 'plan', audit: false }],
        typedSearchAttributes: attributes('schedule:steward-test/queued'),
      });
      await waitFor('the queued run to wait for the holder', async () => {
        const p = await queued.query<{ waitingFor?: string }>('progress').catch(() => undefined);
        return p?.waitingFor === holder.workflowId ? true : undefined;
      });
      await holder.terminate('test: the holder is done');
      const ran = (await queued.result()) as HostReport;
      expect(ran.alreadyRunning).toBeUndefined();
      expect(ran.status).toBe('completed');
      expect(ran.steps.some((s) => s.status === 'completed')).toBe(true);
    } finally {
      await holder.terminate('test done').catch(() => undefined);
    }
  }, 180_000);
});
