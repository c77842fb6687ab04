/**
 * Schedules from the spec (pure): which schedules a spec asks for, with what interval, input, trigger and note; the
 * plan that brings existing schedules in line (create, update, delete, unchanged, conflicts); the digest that makes
 * a second apply change nothing. And the run rules they rely on: workflow ids, the run guard's order, summaries.
 */
import { describe, expect, it } from 'vitest';
import { scheduleDigest } from '../../client/commands/schedule';
import { earlierRun, runningQuery, runSummary, scheduled, scheduleTrigger } from '../../model/runs';
import {
  desiredSchedules,
  planSchedules,
  readScheduleMemo,
  scheduleMemo,
  scheduleOffsetMs,
  type DesiredSchedule,
  type ExistingSchedule,
  unpinnedHosts,
} from '../../model/schedules';
import { specSchema, type SpecInput } from '../../model/schema';
import { durationMs } from '../../model/units';
import { validate, ValidationError } from '../../model/validate';
import { hostWorkflowId, idTime, scheduledWorkflowId } from '../../model/ids';
import { stepSummary } from '../../workflows/interceptors';

const ALL = new Set([
  'driftHost',
  'memoryCheckHost',
  'verifyHost',
  'rotateSecret',
  'auditExport',
  'backupHost',
  'restoreHost',
]);
const ctx = { specPath: '/ops/steward.yaml', taskQueue: 'steward', workflowTypes: ALL };

function spec(extra: Partial<SpecInput> = {}) {
  return validate(
    specSchema,
    {
      version: 1,
      hosts: [
        { name: 'web1', address: '203.0.113.10' },
        { name: 'web2', address: '203.0.113.11' },
      ],
      ...extra,
    },
    'steward.yaml',
  );
}

const digested = (ds: readonly DesiredSchedule[]) => ds.map((d) => ({ ...d, digest: scheduleDigest(d) }));
const existingFrom = (ds: readonly DesiredSchedule[], taskQueue = 'steward'): ExistingSchedule[] =>
  ds.map((d) => ({ id: d.id, memo: scheduleMemo(d, scheduleDigest(d), ctx.specPath, taskQueue) }));

describe('schedules in the spec', () => {
  it('defaults: drift repair every 15 min and the memory check hourly per host, SKIP-safe inputs, no pause', () => {
    const { schedules, unavailable } = desiredSchedules(spec(), ctx);
    expect(unavailable).toEqual([]);
    expect(schedules.map((s) => [s.id, s.every])).toEqual([
      ['steward/web1/drift', '15min'],
      ['steward/web2/drift', '15min'],
      ['steward/web1/memory', '1h'],
      ['steward/web2/memory', '1h'],
    ]);
    const drift = schedules[0]!;
    expect(drift).toMatchObject({
      kind: 'drift',
      host: 'web1',
      operation: 'drift',
      workflowType: 'driftHost',
      workflowId: 'drift/web1/scheduled',
      everyMs: 900_000,
      catchupWindowMs: 600_000,
      pauseOnFailure: false,
      trigger: 'schedule:steward/web1/drift',
      summary: 'drift repair of web1, started by schedule:steward/web1/drift',
      note: 'steward: drift repair of web1, every 15min, from /ops/steward.yaml',
    });
    expect(drift.input).toMatchObject({ host: 'web1', mode: 'apply', audit: true, auditMaxAgeMs: 24 * 3600_000 });
    // Each run carries its own host's plan: that host's entry and every section, no other host.
    expect((drift.input as { spec: unknown }).spec).toEqual({ ...spec(), hosts: [spec().hosts[0]] });
    expect(schedules[2]!.input).toMatchObject({ host: 'web1', mode: 'plan' });
  });

  it('never trusts a host key on first use: runs get trustOnFirstUse off, and apply names every unpinned host', () => {
    const key = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFvzyMgO2hs7mVKm0F0rWw3b5YRHqNpY6Sl4oS9Gv2Yb';
    const s = spec({
      hosts: [
        { name: 'web1', address: '203.0.113.10', trustOnFirstUse: true },
        { name: 'web2', address: '203.0.113.11', hostKey: key },
        { name: 'web3', address: '203.0.113.12' },
      ],
    });
    const { schedules } = desiredSchedules(s, ctx);
    expect(schedules.length).toBeGreaterThanOrEqual(3);
    for (const d of schedules) {
      const hosts = (d.input as { spec: { hosts: { name: string; trustOnFirstUse: boolean }[] } }).spec.hosts;
      expect(hosts.map((h) => [h.name, h.trustOnFirstUse])).toEqual([[d.host, false]]);
    }
    expect(unpinnedHosts(s, schedules)).toEqual(['web1', 'web3']);
    // A pin in the worker's known-hosts file counts for that name at that address and port only.
    const known = [
      { name: 'web1', address: '203.0.113.10', port: 22 },
      { name: 'web3', address: '203.0.113.99', port: 22 },
    ];
    expect(unpinnedHosts(s, schedules, known)).toEqual(['web3']);
    // Only the hosts some schedule runs against count.
    const only2 = spec({ ...s, schedules: { hosts: ['web2'] } } as Partial<SpecInput>);
    expect(unpinnedHosts(only2, desiredSchedules(only2, ctx).schedules)).toEqual([]);
    expect(unpinnedHosts(s, [])).toEqual([]);
    // The audit export reads Temporal only: no host of it needs a key.
    const auditOnly = spec({
      ...s,
      schedules: {
        drift: { enabled: false },
        memory: { enabled: false },
        audit: { enabled: true, every: '1d', directory: '/var/lib/steward/audit' },
      },
    } as Partial<SpecInput>);
    const audit = desiredSchedules(auditOnly, ctx).schedules;
    expect(audit.map((d) => d.kind)).toEqual(['audit']);
    expect(unpinnedHosts(auditOnly, audit)).toEqual([]);
  });

  it('one rotation schedule per host and consumed secret with rotateEvery, checked at most every rotateEvery', () => {
    const s = spec({
      secrets: {
        'gateway-token': { generate: { length: 48 }, rotateEvery: '12h' },
        'openrouter-key': { external: { env: 'OPENROUTER_KEY' }, rotateEvery: '30d' },
        unused: { generate: { length: 32 }, rotateEvery: '1d' },
      },
      stack: { providers: { openrouter: { apiKeySecret: 'openrouter-key' } } },
      schedules: { drift: { enabled: false }, memory: { enabled: false }, hosts: ['web2'] },
    });
    const { schedules } = desiredSchedules(s, ctx);
    expect(schedules.map((x) => [x.id, x.every, x.workflowId])).toEqual([
      ['steward/web2/rotate-gateway-token', '12h', 'rotate/web2/gateway-token/scheduled'],
      ['steward/web2/rotate-openrouter-key', '1d', 'rotate/web2/openrouter-key/scheduled'],
    ]);
    expect(schedules[0]!.input).toMatchObject({ host: 'web2', secret: 'gateway-token', mode: 'apply', due: true });
  });

  it('the audit export runs once per task queue when enabled with a directory; its workflow type names the contract', () => {
    const s = spec({
      schedules: {
        drift: { enabled: false },
        memory: { enabled: false },
        audit: { enabled: true, every: '1d', directory: '/var/lib/steward/audit' },
      },
    });
    const { schedules } = desiredSchedules(s, ctx);
    expect(schedules).toHaveLength(1);
    expect(schedules[0]).toMatchObject({
      id: 'steward/audit-export',
      workflowType: 'auditExport',
      workflowId: 'audit/export/scheduled',
      input: { directory: '/var/lib/steward/audit' },
    });
  });

  it('with a backup repository: a daily backup and a weekly restore drill per host; without one, neither', () => {
    const s = spec({
      secrets: { 'gateway-token': { generate: {} }, pw: { external: { env: 'PW' } } },
      backup: { repository: '/srv/backups', passwordSecret: 'pw' },
      schedules: { drift: { enabled: false }, memory: { enabled: false }, drill: { every: '14d' } },
    });
    const { schedules } = desiredSchedules(s, ctx);
    expect(schedules.map((x) => [x.id, x.workflowType, x.every])).toEqual([
      ['steward/web1/backup', 'backupHost', '1d'],
      ['steward/web2/backup', 'backupHost', '1d'],
      ['steward/web1/drill', 'restoreHost', '14d'],
      ['steward/web2/drill', 'restoreHost', '14d'],
    ]);
    expect(schedules[2]!.input).toMatchObject({ host: 'web1', mode: 'apply', drill: true });
    expect(schedules[0]!.input).not.toHaveProperty('drill');
    expect(schedules[2]!.operation).toBe('drill');
    expect(desiredSchedules(spec(), ctx).schedules.some((x) => x.kind === 'backup' || x.kind === 'drill')).toBe(false);
  });

  it('a kind whose workflow this version lacks is not scheduled, and is reported', () => {
    const { schedules, unavailable } = desiredSchedules(spec(), { ...ctx, workflowTypes: new Set(['driftHost']) });
    expect(schedules.map((s) => s.kind)).toEqual(['drift', 'drift']);
    expect(unavailable).toEqual([{ kind: 'memory', workflowType: 'memoryCheckHost' }]);
  });

  it('per-kind settings override the shared ones; disabled asks for nothing', () => {
    const s = spec({
      schedules: {
        pauseOnFailure: true,
        catchupWindow: '1min',
        drift: { every: '30s', repair: false, audit: false, pauseOnFailure: false },
        memory: { repair: true },
      },
    });
    const [drift, , memory] = desiredSchedules(s, ctx).schedules;
    expect(drift).toMatchObject({ everyMs: 30_000, pauseOnFailure: false, catchupWindowMs: 60_000 });
    expect(drift!.input).toMatchObject({ mode: 'plan', audit: false });
    expect(drift!.summary).toBe('drift plan of web1, started by schedule:steward/web1/drift');
    // Runs get the spec with the schedules section at its defaults: a schedule change does not touch the others.
    expect((drift!.input as { spec: { schedules: unknown } }).spec.schedules).toEqual(spec().schedules);
    expect(memory).toMatchObject({ pauseOnFailure: true });
    expect(memory!.input).toMatchObject({ mode: 'apply' });
    expect(desiredSchedules(spec({ schedules: { enabled: false } }), ctx).schedules).toEqual([]);
  });

  it('verification is scheduled only when asked for: a read-only run per host every 6 h, or as often as set', () => {
    expect(desiredSchedules(spec(), ctx).schedules.filter((d) => d.kind === 'verify')).toEqual([]);
    const on = desiredSchedules(
      spec({ schedules: { drift: { enabled: false }, memory: { enabled: false }, verify: { enabled: true } } }),
      ctx,
    ).schedules;
    expect(on.map((d) => [d.id, d.every, d.workflowType, d.workflowId])).toEqual([
      ['steward/web1/verify', '6h', 'verifyHost', 'verify/web1/scheduled'],
      ['steward/web2/verify', '6h', 'verifyHost', 'verify/web2/scheduled'],
    ]);
    expect(on[0]!.input).toMatchObject({ host: 'web1', mode: 'plan' });
    expect(on[0]!.summary).toBe('verification of web1, started by schedule:steward/web1/verify');
    const hourly = desiredSchedules(spec({ schedules: { verify: { enabled: true, every: '1h' } } }), ctx).schedules;
    expect(hourly.find((d) => d.kind === 'verify')?.everyMs).toBe(3_600_000);
  });

  it('refuses intervals under 30 s, a short catch-up window, an audit without a directory and unknown hosts', () => {
    let issues: { path: string; message: string }[] = [];
    try {
      spec({
        schedules: {
          drift: { every: '10s' },
          catchupWindow: '5s',
          audit: { enabled: true },
          hosts: ['web9'],
          memory: { every: '15 minutes' },
        },
      });
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      issues = [...(err as ValidationError).issues];
    }
    expect(issues.map((i) => i.path).sort()).toEqual(
      [
        'schedules.audit.directory',
        'schedules.catchupWindow',
        'schedules.drift.every',
        'schedules.hosts[0]',
        'schedules.memory.every',
      ].sort(),
    );
    expect(issues.find((i) => i.path === 'schedules.drift.every')?.message).toContain('at least 30s');
  });

  it('spreads schedules over their interval by id, the same every time', () => {
    const a = scheduleOffsetMs('steward/web1/drift', 900_000);
    expect(a).toBe(scheduleOffsetMs('steward/web1/drift', 900_000));
    expect(a % 1000).toBe(0);
    expect(a).toBeGreaterThanOrEqual(0);
    expect(a).toBeLessThan(900_000);
    const offsets = new Set(Array.from({ length: 50 }, (_, i) => scheduleOffsetMs(`steward/web${i}/drift`, 900_000)));
    expect(offsets.size).toBeGreaterThan(40);
    expect(durationMs('15min')).toBe(900_000);
  });
});

describe('schedule plan', () => {
  const desired = desiredSchedules(spec(), ctx).schedules;

  it('creates everything into an empty namespace, then a second apply changes nothing', () => {
    const first = planSchedules(digested(desired), [], 'steward');
    expect(first.create.map((d) => d.id)).toEqual(desired.map((d) => d.id));
    expect([first.update, first.delete, first.unchanged, first.conflicts]).toEqual([[], [], [], []]);

    const again = planSchedules(digested(desiredSchedules(spec(), ctx).schedules), existingFrom(desired), 'steward');
    expect(again.unchanged.map((d) => d.id)).toEqual(desired.map((d) => d.id));
    expect([again.create, again.update, again.delete, again.conflicts]).toEqual([[], [], [], []]);
  });

  it('updates what was made from something else: any spec change, the interval, the spec file', () => {
    const moved = desiredSchedules(spec({ schedules: { drift: { every: '5min' } } }), ctx).schedules;
    const plan = planSchedules(digested(moved), existingFrom(desired), 'steward');
    expect(plan.update.map((d) => d.id)).toEqual(['steward/web1/drift', 'steward/web2/drift']);
    expect(plan.unchanged.map((d) => d.id)).toEqual(['steward/web1/memory', 'steward/web2/memory']);

    const specChanged = desiredSchedules(spec({ harden: { confirmSeconds: 60 } }), ctx).schedules;
    expect(planSchedules(digested(specChanged), existingFrom(desired), 'steward').update).toHaveLength(4);

    const otherFile = desiredSchedules(spec(), { ...ctx, specPath: '/elsewhere/steward.yaml' }).schedules;
    expect(planSchedules(digested(otherFile), existingFrom(desired), 'steward').update).toHaveLength(4);
  });

  it('deletes only what steward made for this task queue and the spec no longer asks for', () => {
    const fewer = desiredSchedules(spec({ schedules: { memory: { enabled: false } } }), ctx).schedules;
    const foreign: ExistingSchedule[] = [
      { id: 'nightly-report' },
      { id: 'steward/handmade' },
      ...existingFrom(desiredSchedules(spec(), ctx).schedules, 'other-queue').map((e) => ({
        ...e,
        id: e.id.replace('web', 'db'),
      })),
    ];
    const plan = planSchedules(digested(fewer), [...existingFrom(desired), ...foreign], 'steward');
    expect(plan.delete).toEqual(['steward/web1/memory', 'steward/web2/memory']);
    expect(plan.unchanged.map((d) => d.id)).toEqual(['steward/web1/drift', 'steward/web2/drift']);
    expect(plan.conflicts).toEqual([]);
  });

  it('refuses ids taken by a schedule steward did not make, or made for another task queue', () => {
    const taken: ExistingSchedule[] = [
      { id: 'steward/web1/drift' },
      ...existingFrom(
        desired.filter((d) => d.id === 'steward/web2/drift'),
        'staging',
      ),
    ];
    const plan = planSchedules(digested(desired), taken, 'steward');
    expect(plan.conflicts).toEqual([
      { id: 'steward/web1/drift', reason: 'exists and was not made by steward' },
      { id: 'steward/web2/drift', reason: 'was made by steward for task queue staging' },
    ]);
  });

  it("reads steward's memo back, and nothing from a memo it did not write", () => {
    const memo = scheduleMemo(desired[0]!, 'abc', '/ops/steward.yaml', 'steward');
    expect(readScheduleMemo({ steward: memo })).toEqual(memo);
    expect(readScheduleMemo({ steward: { digest: 'x' } })).toBeUndefined();
    expect(readScheduleMemo(undefined)).toBeUndefined();
  });

  it('the digest ignores key order but nothing else', () => {
    const d = desired[0]!;
    const reordered = Object.fromEntries(Object.entries(d).reverse()) as unknown as DesiredSchedule;
    expect(scheduleDigest(reordered)).toBe(scheduleDigest(d));
    expect(scheduleDigest({ ...d, pauseOnFailure: true })).not.toBe(scheduleDigest(d));
  });
});

describe('runs', () => {
  it('workflow ids read as <operation>/<host>/<time>; a schedule’s runs as <operation>/<host>/scheduled-<time>', () => {
    const at = new Date('2026-11-26T10:45:18.123Z');
    expect(idTime(at)).toBe('2026-11-26T10:45:18Z');
    expect(hostWorkflowId('drift', 'web1', at)).toBe('drift/web1/2026-11-26T10:45:18Z');
    expect(scheduledWorkflowId('drift', 'web1')).toBe('drift/web1/scheduled');
    expect(scheduleTrigger('steward/web1/drift')).toBe('schedule:steward/web1/drift');
  });

  it('the host lock lets the run that started first go on; the others go after it', () => {
    const a = { workflowId: 'drift/web1/t1', runId: 'b-run', startTime: '2026-11-26T10:00:00.000Z' };
    const b = { workflowId: 'drift/web1/t2', runId: 'a-run', startTime: '2026-11-26T10:00:01.000Z' };
    const tie = { workflowId: 'drift/web1/t1x', runId: 'a-run-tie', startTime: a.startTime };
    expect(earlierRun(a, [a, b])).toBeUndefined();
    expect(earlierRun(b, [a, b])).toEqual(a);
    expect(earlierRun(a, [a])).toBeUndefined();
    expect(earlierRun(a, [a, tie])).toEqual(tie);
    expect(earlierRun(tie, [a, tie])).toBeUndefined();
    // A child (drift's repair) never waits for its own parent, only for other runs on the host.
    const parent = { workflowId: 'drift/web1/t0', runId: 'p-run', startTime: '2026-11-26T09:59:00.000Z' };
    const child = { workflowId: 'provision/web1/t3', runId: 'c-run', startTime: '2026-11-26T10:00:02.000Z' };
    expect(earlierRun(child, [parent, child], [parent.workflowId])).toBeUndefined();
    expect(earlierRun(child, [parent, a, child], [parent.workflowId])).toEqual(a);
    expect(earlierRun(child, [parent, child])).toEqual(parent);
    expect(scheduled('schedule:steward/web1/drift')).toBe(true);
    expect(scheduled('cli:ops@laptop')).toBe(false);
    expect(scheduled(undefined)).toBe(false);
  });

  it('builds visibility queries from validated names only', () => {
    expect(runningQuery(['web1'], 'drift')).toBe(
      "StewardHost = 'web1' AND StewardOperation = 'drift' AND ExecutionStatus = 'Running'",
    );
    expect(runningQuery(['web1', 'web2'], 'provision')).toContain("StewardHost IN ('web1', 'web2')");
    // The host lock: every steward run on the host, whatever its operation.
    expect(runningQuery(['web1'])).toBe("StewardHost = 'web1' AND ExecutionStatus = 'Running'");
    expect(() => runningQuery(["web1' OR 1=1 --"], 'drift')).toThrow(/not a valid visibility query value/);
  });

  it('summaries name the step, what it works on and where', () => {
    expect(stepSummary('applyStack', { host: 'web1', mode: 'apply', spec: {} })).toBe('applyStack on web1');
    expect(stepSummary('observeDrift', { host: 'web1', mode: 'plan' })).toBe('observeDrift on web1 (plan)');
    expect(stepSummary('setSecret', { host: 'web1', secret: 'gateway-token', mode: 'apply' })).toBe(
      'setSecret gateway-token on web1',
    );
    expect(stepSummary('recordApplied', { host: 'web1', operation: 'provision' })).toBe(
      'recordApplied provision on web1',
    );
    expect(stepSummary('auditExport', { directory: '/x' })).toBe('auditExport');
    expect(runSummary('provision', 'apply', 'web1', 'cli:ops@laptop')).toBe(
      'provision of web1, started by cli:ops@laptop',
    );
  });
});
