/**
 * The watchdog (pure): which schedules are overdue — no run ended for twice the interval, counted from the newest
 * end or the schedule's creation — and which are told now (once per overdue spell); what the `check.overdue`
 * notification says; and that the spec makes the watchdog schedule only when a webhook would hear of it.
 */
import { describe, expect, it } from 'vitest';
import { desiredSchedules } from '../../model/schedules';
import { notificationBody, summaryLine } from '../../model/notifications';
import { specSchema, type SpecInput } from '../../model/schema';
import { validate } from '../../model/validate';
import { lookBackFrom, overdueChecks, overdueNotification, type WatchedSchedule } from '../../model/watchdog';

const MIN = 60_000;
const T = Date.parse('2026-12-07T12:00:00.000Z');
const at = (minutes: number) => new Date(T + minutes * MIN);
const iso = (minutes: number) => at(minutes).toISOString();

const drift = (over: Partial<WatchedSchedule> = {}): WatchedSchedule => ({
  id: 'steward/web1/drift',
  kind: 'drift',
  host: 'web1',
  every: '15min',
  everyMs: 15 * MIN,
  createdAt: iso(-24 * 60),
  paused: false,
  ...over,
});

describe('overdue checks', () => {
  it('a run that ended within twice the interval keeps a check on time; past it, the check is overdue', () => {
    expect(overdueChecks([drift({ lastEnded: iso(-29) })], at(0), at(-15))).toEqual([]);
    expect(overdueChecks([drift({ lastEnded: iso(-30) })], at(0), at(-15))).toEqual([]);
    const [late] = overdueChecks([drift({ lastEnded: iso(-31) })], at(0), at(-15));
    expect(late).toEqual({
      schedule: 'steward/web1/drift',
      kind: 'drift',
      host: 'web1',
      every: '15min',
      noRunSince: iso(-31),
      overdueSince: iso(-1),
      lastEnded: iso(-31),
      paused: false,
      newly: true,
    });
  });

  it('told once per spell: not again when it was already overdue as the previous watchdog run started', () => {
    // Overdue since -1 min; the previous run started at -15: told now. The next run (at +15, previous at 0): not.
    expect(overdueChecks([drift({ lastEnded: iso(-31) })], at(0), at(-15))[0]!.newly).toBe(true);
    expect(overdueChecks([drift({ lastEnded: iso(-31) })], at(15), at(0))[0]!.newly).toBe(false);
    // No run ended in the window looked at (twice the interval before the previous watchdog run): overdue, told before.
    const [old] = overdueChecks([drift()], at(15), at(0));
    expect(old).toMatchObject({ newly: false, noRunSince: iso(-30) });
    expect(old).not.toHaveProperty('lastEnded');
    expect(old).not.toHaveProperty('overdueSince');
    // A run ended, then the check stopped again: a new spell, told again.
    expect(overdueChecks([drift({ lastEnded: iso(-20) })], at(15), at(0))[0]).toMatchObject({
      newly: true,
      overdueSince: iso(10),
    });
  });

  it('a spell that begins exactly as a watchdog run looks is told by the next run, not lost between them', () => {
    // Last end at -30: overdue only after 0. The run at 0 does not see it; the run at 15 tells it.
    expect(overdueChecks([drift({ lastEnded: iso(-30) })], at(0), at(-15))).toEqual([]);
    expect(overdueChecks([drift({ lastEnded: iso(-30) })], at(15), at(0))[0]).toMatchObject({
      newly: true,
      overdueSince: iso(0),
    });
  });

  it('with no previous watchdog run (the first, or after an outage of the worker) every overdue check is told', () => {
    expect(overdueChecks([drift()], at(0))).toEqual([
      expect.objectContaining({ newly: true, noRunSince: iso(-30), paused: false }),
    ]);
  });

  it('a new schedule counts from its creation; a paused one is overdue like any other, with its note', () => {
    expect(overdueChecks([drift({ createdAt: iso(-20) })], at(0), at(-15))).toEqual([]);
    expect(overdueChecks([drift({ createdAt: iso(-40), paused: true, note: 'maintenance' })], at(0), at(-15))).toEqual([
      expect.objectContaining({ noRunSince: iso(-40), overdueSince: iso(-10), paused: true, note: 'maintenance' }),
    ]);
    // An unreadable creation time is an old schedule, never a reason to stay quiet.
    expect(overdueChecks([drift({ createdAt: 'yesterday' })], at(0))).toHaveLength(1);
  });

  it("the watchdog's own schedule is never judged; each schedule by its own interval", () => {
    const watchdog = drift({ id: 'steward/watchdog', kind: 'watchdog', createdAt: iso(-600) });
    delete (watchdog as { host?: string }).host;
    const daily = drift({ id: 'steward/web1/backup', kind: 'backup', every: '1d', everyMs: 24 * 60 * MIN });
    expect(overdueChecks([watchdog, daily, drift()], at(0)).map((c) => c.schedule)).toEqual(['steward/web1/drift']);
  });

  it('looks back twice the interval before the previous watchdog run, or before now', () => {
    expect(lookBackFrom(15 * MIN, at(0), at(-15))).toEqual(at(-45));
    expect(lookBackFrom(15 * MIN, at(0))).toEqual(at(-30));
    expect(lookBackFrom(15 * MIN, at(0), at(5))).toEqual(at(-30));
  });
});

describe('the check.overdue notification', () => {
  const [check] = overdueChecks([drift({ lastEnded: iso(-31), paused: true, note: 'maintenance' })], at(0), at(-15));
  const n = overdueNotification(check!, { workflowId: 'watchdog/checks/scheduled-x', runId: 'r1', at: iso(0) });

  it('names the schedule, its interval, since when, the last run and the pause; no values', () => {
    expect(n).toMatchObject({
      event: 'check.overdue',
      host: 'web1',
      operation: 'drift',
      status: 'overdue',
      trigger: 'schedule:steward/web1/drift',
      schedule: 'steward/web1/drift',
      every: '15min',
      noRunSince: iso(-31),
      overdueSince: iso(-1),
      lastEnded: iso(-31),
      paused: true,
      note: 'maintenance',
      changes: 0,
      resources: [],
    });
    expect(JSON.parse(notificationBody(n, 'json'))).toMatchObject({ version: 1, event: 'check.overdue' });
    expect(summaryLine(n)).toBe(
      `steward: drift of web1 has not run for twice its interval (15min): overdue since ${iso(-1)}, its last run ` +
        `ended ${iso(-31)}; the schedule is paused: maintenance — schedule steward/web1/drift, see steward schedule list`,
    );
    expect(JSON.parse(notificationBody(n, 'text'))).toEqual({ text: summaryLine(n) });
  });

  it('says so when no run ended in the window, and leaves an unpaused schedule’s note out', () => {
    const [quiet] = overdueChecks([drift({ note: 'steward: drift repair of web1' })], at(0));
    const q = overdueNotification(quiet!, { workflowId: 'w', runId: 'r', at: iso(0) });
    expect(q).not.toHaveProperty('note');
    expect(summaryLine(q)).toBe(
      `steward: drift of web1 has not run for twice its interval (15min): no run ended since ${iso(-30)} — ` +
        'schedule steward/web1/drift, see steward schedule list',
    );
  });
});

describe('the watchdog schedule in the spec', () => {
  const ctx = {
    specPath: '/ops/steward.yaml',
    taskQueue: 'steward',
    workflowTypes: new Set(['driftHost', 'memoryCheckHost', 'checkWatchdog']),
  };
  const spec = (extra: Partial<SpecInput>) =>
    validate(specSchema, { version: 1, hosts: [{ name: 'web1', address: '203.0.113.10' }], ...extra }, 'steward.yaml');
  const hook = { name: 'ops', url: 'https://hooks.example.net/steward', signingKeyEnv: 'OPS_HOOK_KEY' };

  it('is made when a webhook subscribes to check.overdue (the default), every 15 min, telling only those', () => {
    const quiet = { ...hook, name: 'quiet', events: ['run.failed'] };
    const s = spec({ notifications: { webhooks: [hook, quiet] } as SpecInput['notifications'] });
    expect(s.notifications.webhooks[0]!.events).toContain('check.overdue');
    const watchdog = desiredSchedules(s, ctx).schedules.find((d) => d.kind === 'watchdog');
    expect(watchdog).toMatchObject({
      id: 'steward/watchdog',
      workflowType: 'checkWatchdog',
      every: '15min',
      input: { webhooks: [expect.objectContaining({ name: 'ops' })], everyMs: 15 * MIN },
    });
    expect((watchdog!.input.webhooks as unknown[]).length).toBe(1);
  });

  it('is not made without such a webhook, when disabled, or when this version lacks the workflow', () => {
    const kinds = (s: ReturnType<typeof spec>, c = ctx) => desiredSchedules(s, c).schedules.map((d) => d.kind);
    expect(kinds(spec({}))).not.toContain('watchdog');
    const only = { notifications: { webhooks: [{ ...hook, events: ['drift.found'] }] } } as Partial<SpecInput>;
    expect(kinds(spec(only))).not.toContain('watchdog');
    const off = spec({
      notifications: { webhooks: [hook] },
      schedules: { watchdog: { enabled: false } },
    } as Partial<SpecInput>);
    expect(kinds(off)).not.toContain('watchdog');
    const old = { ...ctx, workflowTypes: new Set(['driftHost', 'memoryCheckHost']) };
    expect(
      desiredSchedules(spec({ notifications: { webhooks: [hook] } } as Partial<SpecInput>), old).unavailable,
    ).toEqual([{ kind: 'watchdog', workflowType: 'checkWatchdog' }]);
  });
});
