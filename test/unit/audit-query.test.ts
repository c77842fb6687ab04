/** `steward audit` selection without a server: time flags, filter validation, visibility queries, outcomes. */
import { describe, expect, it } from 'vitest';
import { auditFiltersSchema, exportQuery, listQuery, outcomeOf, parseTime } from '../../common/audit/query';
import { auditExportInputSchema } from '../../model/audit';
import { validate, ValidationError } from '../../model/validate';

const now = new Date('2026-03-10T12:00:00.000Z');

describe('parseTime', () => {
  it('reads ages back from now', () => {
    expect(parseTime('30m', now)?.toISOString()).toBe('2026-03-10T11:30:00.000Z');
    expect(parseTime('12h', now)?.toISOString()).toBe('2026-03-10T00:00:00.000Z');
    expect(parseTime('7d', now)?.toISOString()).toBe('2026-03-03T12:00:00.000Z');
    expect(parseTime('2w', now)?.toISOString()).toBe('2026-02-24T12:00:00.000Z');
    expect(parseTime('45s', now)?.toISOString()).toBe('2026-03-10T11:59:15.000Z');
  });

  it('reads ISO dates and date-times', () => {
    expect(parseTime('2026-01-31', now)?.toISOString()).toBe('2026-01-31T00:00:00.000Z');
    expect(parseTime('2026-01-31T08:30:00Z', now)?.toISOString()).toBe('2026-01-31T08:30:00.000Z');
    expect(parseTime('2026-01-31T08:30:00+02:00', now)?.toISOString()).toBe('2026-01-31T06:30:00.000Z');
  });

  it('rejects anything else', () => {
    for (const bad of ['yesterday', '7 days', '-1d', '2026-13-45', "2026-01-01' OR 1=1", '']) {
      expect(parseTime(bad, now), bad).toBeUndefined();
    }
  });
});

describe('audit filters', () => {
  const schema = auditFiltersSchema(now);

  it('validates every flag and reports each bad one with its name', () => {
    const f = validate(schema, { host: 'web1', operation: 'drift', outcome: 'failed', since: '1d', limit: '5' }, 'f');
    expect(f).toEqual({
      host: 'web1',
      operation: 'drift',
      outcome: 'failed',
      since: new Date('2026-03-09T12:00:00.000Z'),
      limit: 5,
    });
    let err: unknown;
    try {
      validate(schema, { host: "web1' OR 1=1", outcome: 'exploded', since: 'soon', limit: '0' }, 'steward audit flags');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ValidationError);
    expect((err as ValidationError).issues.map((i) => i.path).sort()).toEqual(['host', 'limit', 'outcome', 'since']);
  });

  it('refuses a window that ends before it starts', () => {
    expect(() => validate(schema, { since: '1d', until: '2d' }, 'f')).toThrow(/--since must be before --until/);
  });
});

describe('visibility queries', () => {
  it('lists steward runs by start time', () => {
    expect(listQuery({})).toBe('StewardOperation IS NOT NULL');
    expect(
      listQuery({
        host: 'web1',
        operation: 'provision',
        since: new Date('2026-03-01T00:00:00Z'),
        until: new Date('2026-03-02T00:00:00Z'),
      }),
    ).toBe(
      "StewardOperation IS NOT NULL AND StewardHost = 'web1' AND StewardOperation = 'provision' AND " +
        "StartTime >= '2026-03-01T00:00:00.000Z' AND StartTime < '2026-03-02T00:00:00.000Z'",
    );
  });

  it('maps outcomes to execution status and StewardOutcome', () => {
    expect(listQuery({ outcome: 'failed' })).toContain("(ExecutionStatus = 'Failed' OR StewardOutcome = 'failed')");
    expect(listQuery({ outcome: 'completed' })).toContain(
      "ExecutionStatus = 'Completed' AND (StewardOutcome IS NULL OR StewardOutcome != 'failed')",
    );
    expect(listQuery({ outcome: 'timed-out' })).toContain("ExecutionStatus = 'TimedOut'");
    expect(listQuery({ outcome: 'running' })).toContain("ExecutionStatus = 'Running'");
  });

  it('exports closed runs by close time, in a half-open window', () => {
    expect(exportQuery({ since: null, until: new Date('2026-03-02T00:00:00Z') })).toBe(
      "StewardOperation IS NOT NULL AND ExecutionStatus != 'Running' AND CloseTime < '2026-03-02T00:00:00.000Z'",
    );
    expect(
      exportQuery({ host: 'web1', since: new Date('2026-03-01T00:00:00Z'), until: new Date('2026-03-02T00:00:00Z') }),
    ).toBe(
      "StewardOperation IS NOT NULL AND StewardHost = 'web1' AND ExecutionStatus != 'Running' AND " +
        "CloseTime >= '2026-03-01T00:00:00.000Z' AND CloseTime < '2026-03-02T00:00:00.000Z'",
    );
  });

  it('reads outcomes the way the filters select them', () => {
    expect(outcomeOf('Completed', 'completed')).toBe('completed');
    expect(outcomeOf('Completed', 'failed')).toBe('failed');
    expect(outcomeOf('Completed', 'running')).toBe('completed'); // a fleet run never updates its attribute
    expect(outcomeOf('Failed', 'running')).toBe('failed');
    expect(outcomeOf('TimedOut')).toBe('timed-out');
    expect(outcomeOf('Terminated', 'running')).toBe('terminated');
    expect(outcomeOf('Running', 'running')).toBe('running');
  });
});

describe('auditExport input', () => {
  it('needs an absolute directory and defaults the settle time', () => {
    expect(validate(auditExportInputSchema, { directory: '/var/lib/steward/audit' }, 'input')).toEqual({
      directory: '/var/lib/steward/audit',
      settleSeconds: 60,
    });
    expect(() => validate(auditExportInputSchema, { directory: 'audit' }, 'input')).toThrow(/absolute path/);
    expect(() => validate(auditExportInputSchema, { directory: '/a', extra: 1 }, 'input')).toThrow(/extra/);
    expect(() => validate(auditExportInputSchema, { directory: '/a', since: 'yesterday' }, 'input')).toThrow(/since/);
  });
});
