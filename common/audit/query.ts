/**
 * Which runs `steward audit` lists and exports: flags validated into filters, filters turned into a Temporal
 * visibility query, and a run's outcome read from its execution status and steward's search attributes. Pure.
 */
import { z } from 'zod';
import { auditSelectionSchema, type AuditOutcome, type AuditSelection } from '../../model/audit';
import { StewardHost, StewardOperation, StewardOutcome } from '../../model/search-attributes';

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;

/**
 * A point in time as operators write it: an age (`30m`, `12h`, `7d`, `2w`, counted back from `now`) or an ISO 8601
 * date or date-time (`2026-01-31`, `2026-01-31T12:00:00Z`). Undefined when it is neither.
 */
export function parseTime(value: string, now: Date): Date | undefined {
  const age = /^(\d{1,6})([smhdw])$/.exec(value.trim());
  if (age) return new Date(now.getTime() - Number(age[1]) * UNIT_MS[age[2] as keyof typeof UNIT_MS]);
  if (!/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(value.trim())) return undefined;
  const t = Date.parse(value.trim());
  return Number.isNaN(t) ? undefined : new Date(t);
}

const timeFlag = (now: Date) =>
  z.string().transform((value, ctx) => {
    const t = parseTime(value, now);
    if (!t) ctx.addIssue({ code: 'custom', message: 'must be an age such as 30m, 12h or 7d, or an ISO date-time' });
    return t ?? now;
  });

/** `steward audit` flags, validated. `since`/`until` bound start times when listing and close times when exporting. */
export function auditFiltersSchema(now: Date) {
  return auditSelectionSchema
    .extend({
      since: timeFlag(now).optional(),
      until: timeFlag(now).optional(),
      limit: z.coerce.number().int().min(1).max(100_000).optional(),
    })
    .refine((f) => !f.since || !f.until || f.since < f.until, { message: '--since must be before --until' });
}
export type AuditFilters = z.output<ReturnType<typeof auditFiltersSchema>>;

/** The execution status names visibility queries use, by outcome. */
const STATUS_OF: Partial<Record<AuditOutcome, string>> = {
  running: 'Running',
  canceled: 'Canceled',
  terminated: 'Terminated',
  'timed-out': 'TimedOut',
};

/** Quotes a value for a visibility query; values are validated names and ISO times, so this never has to escape. */
function quoted(value: string): string {
  if (/['"\\]/.test(value)) throw new Error(`unexpected quote in visibility query value ${value}`);
  return `'${value}'`;
}

function selectionClauses(s: AuditSelection): string[] {
  const clauses = [`${StewardOperation.name} IS NOT NULL`];
  if (s.host) clauses.push(`${StewardHost.name} = ${quoted(s.host)}`);
  if (s.operation) clauses.push(`${StewardOperation.name} = ${quoted(s.operation)}`);
  if (s.outcome === 'completed') {
    clauses.push(
      `ExecutionStatus = 'Completed'`,
      `(${StewardOutcome.name} IS NULL OR ${StewardOutcome.name} != 'failed')`,
    );
  } else if (s.outcome === 'failed') {
    clauses.push(`(ExecutionStatus = 'Failed' OR ${StewardOutcome.name} = 'failed')`);
  } else if (s.outcome) {
    clauses.push(`ExecutionStatus = ${quoted(STATUS_OF[s.outcome] as string)}`);
  }
  return clauses;
}

/** Steward's runs matching the selection that started in [since, until): what `steward audit` lists. */
export function listQuery(s: AuditSelection & { since?: Date; until?: Date }): string {
  const clauses = selectionClauses(s);
  if (s.since) clauses.push(`StartTime >= ${quoted(s.since.toISOString())}`);
  if (s.until) clauses.push(`StartTime < ${quoted(s.until.toISOString())}`);
  return clauses.join(' AND ');
}

/** Steward's closed runs matching the selection that closed in [since, until): what an export writes. */
export function exportQuery(s: AuditSelection & { since?: Date | null; until: Date }): string {
  const clauses = [...selectionClauses(s), `ExecutionStatus != 'Running'`];
  if (s.since) clauses.push(`CloseTime >= ${quoted(s.since.toISOString())}`);
  clauses.push(`CloseTime < ${quoted(s.until.toISOString())}`);
  return clauses.join(' AND ');
}

/**
 * How a run ended: its execution status (`Completed` → `completed`, `TimedOut` → `timed-out`, …), except that a run
 * which completed but recorded `StewardOutcome = failed` counts as failed. The same rule as the query filters.
 */
export function outcomeOf(status: string, stewardOutcome?: string): AuditOutcome | 'continued-as-new' | 'unknown' {
  switch (status) {
    case 'Running':
      return 'running';
    case 'Completed':
      return stewardOutcome === 'failed' ? 'failed' : 'completed';
    case 'Failed':
      return 'failed';
    case 'Canceled':
      return 'canceled';
    case 'Terminated':
      return 'terminated';
    case 'TimedOut':
      return 'timed-out';
    case 'ContinuedAsNew':
      return 'continued-as-new';
    default:
      return 'unknown';
  }
}
