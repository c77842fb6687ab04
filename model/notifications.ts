/**
 * Notifications to webhooks outside the stack: which end of a run is worth telling (a scheduled run that failed, a
 * scheduled drift run that found drift), what the notification says, and how its bodies and signature are made.
 * Pure: the host workflow decides with it, the worker's activity renders and signs with it.
 *
 * A notification carries ids, counts and severities, never a value: resources by `kind:name`, findings by id, the
 * error's first line cut short (the run's history holds the rest).
 */
import { shortDigest, type PublishedPlan } from './approval';
import type { HostReport, Mode, Operation, Severity } from './report';
import { scheduled } from './runs';
import type { NotificationEvent, Webhook } from './schema';

/** At most this many resources and findings are listed; the counts are always whole. */
export const LIST_LIMIT = 20;
const ERROR_LIMIT = 300;

export interface Notification {
  readonly event: NotificationEvent;
  readonly host: string;
  readonly operation: Operation | 'audit';
  readonly mode: Mode;
  /** How the run ended; `waiting` while a plan waits for approval; `overdue`: a check that stopped running. */
  readonly status: HostReport['status'] | 'waiting' | 'overdue';
  /** The schedule that started the run, `schedule:<id>`, or the CLI user, `cli:<user>`. */
  readonly trigger: string;
  readonly workflowId: string;
  readonly runId: string;
  /** When the run ended (workflow time). */
  readonly at: string;
  /** Resources the run changed (in a plan: would change). */
  readonly changes: number;
  /** drift.found: resources found drifted (a repair's findings, a plan's changes). */
  readonly drifted?: number;
  /** `kind:name` of the first {@link LIST_LIMIT} resources found drifted, else changed. */
  readonly resources: readonly string[];
  /** Findings above `info`, the first {@link LIST_LIMIT}. */
  readonly findings: readonly { readonly id: string; readonly severity: Severity }[];
  readonly error?: string;
  /** approval.waiting: the digest of the plan waiting, its revision and when the wait ends. */
  readonly plan?: string;
  readonly revision?: number;
  readonly expiresAt?: string;
  /** check.overdue: the schedule, its interval, since when no run of it ended, since when it is overdue and its
   * newest run's end (when known), and whether it is paused, with its note then. */
  readonly schedule?: string;
  readonly every?: string;
  readonly noRunSince?: string;
  readonly overdueSince?: string;
  readonly lastEnded?: string;
  readonly paused?: boolean;
  readonly note?: string;
}

export interface RunContext {
  readonly trigger: string | undefined;
  /** The run is part of another run of the same operation tree (a repair's provision, a converge's deploy): the
   * run it belongs to tells, once. A fleet's host runs are not nested: each tells of its own host. */
  readonly nested?: boolean;
  readonly workflowId: string;
  readonly runId: string;
  readonly at: string;
}

/** The notification a run's end deserves, if any: only runs a schedule started (a person is watching the others). */
export function notificationFor(report: HostReport, run: RunContext): Notification | undefined {
  if (!run.trigger || !scheduled(run.trigger) || run.nested || report.alreadyRunning) return undefined;
  const drifted = report.operation === 'drift' ? driftedResources(report) : [];
  const event: NotificationEvent | undefined =
    report.status === 'failed' ? 'run.failed' : drifted.length > 0 ? 'drift.found' : undefined;
  if (!event) return undefined;
  const error = report.error?.split('\n')[0];
  return {
    event,
    host: report.host,
    operation: report.operation,
    mode: report.mode,
    status: report.status,
    trigger: run.trigger,
    workflowId: run.workflowId,
    runId: run.runId,
    at: run.at,
    changes: report.changes.length,
    ...(drifted.length ? { drifted: drifted.length } : {}),
    resources: (drifted.length ? drifted : report.changes.map((c) => c.resource)).slice(0, LIST_LIMIT),
    findings: report.findings
      .filter((f) => f.severity !== 'info')
      .slice(0, LIST_LIMIT)
      .map(({ id, severity }) => ({ id, severity })),
    ...(error ? { error: error.length > ERROR_LIMIT ? `${error.slice(0, ERROR_LIMIT)}…` : error } : {}),
  };
}

/**
 * The notification of a plan waiting for a decision: every run that waits tells (the person who approves is rarely
 * the one who started it). The plan's resources by name, never their values.
 */
export function approvalNotification(
  operation: Operation,
  input: { readonly host: string; readonly mode: Mode },
  plan: PublishedPlan,
  run: { readonly trigger: string; readonly workflowId: string; readonly runId: string },
): Notification {
  return {
    event: 'approval.waiting',
    host: input.host,
    operation,
    mode: input.mode,
    status: 'waiting',
    trigger: run.trigger,
    workflowId: run.workflowId,
    runId: run.runId,
    at: plan.publishedAt,
    changes: plan.changes.length,
    resources: plan.changes.map((c) => c.resource).slice(0, LIST_LIMIT),
    findings: [],
    plan: plan.digest,
    revision: plan.revision,
    expiresAt: plan.expiresAt,
  };
}

/**
 * What a drift run found drifted: a plan's changes; a repair's `drift.corrective` / `drift.intentional` findings (its
 * changes are what the repairs did, which may be fewer).
 */
function driftedResources(report: HostReport): string[] {
  if (report.mode === 'plan') return report.changes.map((c) => c.resource);
  const found = report.findings.filter((f) => f.id === 'drift.corrective' || f.id === 'drift.intentional');
  return [...new Set(found.map((f) => f.resource ?? f.message))];
}

/** The webhooks subscribed to an event. */
export function subscribers(webhooks: readonly Webhook[], event: NotificationEvent): Webhook[] {
  return webhooks.filter((w) => w.events.includes(event));
}

/** One line an operator reads in a chat. */
export function summaryLine(n: Notification): string {
  if (n.event === 'approval.waiting') {
    const plan = shortDigest(n.plan ?? '');
    return (
      `steward: ${n.operation} of ${n.host} waits for approval of plan ${plan} (${plural(n.changes)} to change) ` +
      `until ${n.expiresAt} — steward approve ${n.workflowId} --plan ${plan}, or reject it with --reason`
    );
  }
  if (n.event === 'check.overdue') {
    const subject = `${n.operation}${n.host ? ` of ${n.host}` : ''}`;
    const last = n.lastEnded ? `its last run ended ${n.lastEnded}` : `no run ended since ${n.noRunSince}`;
    const since = n.overdueSince ? `overdue since ${n.overdueSince}, ` : '';
    const paused = n.paused ? `; the schedule is paused${n.note ? `: ${n.note}` : ''}` : '';
    return (
      `steward: ${subject} has not run for twice its interval (${n.every}): ${since}${last}${paused} — ` +
      `schedule ${n.schedule}, see steward schedule list`
    );
  }
  const what =
    n.event === 'run.failed'
      ? `${n.operation} of ${n.host} failed${n.error ? `: ${n.error}` : ''}`
      : `drift on ${n.host}: ${plural(n.drifted ?? 0)} drifted${n.mode === 'apply' ? `, ${plural(n.changes)} changed by the repair` : ''}` +
        (n.resources.length ? ` (${n.resources.slice(0, 5).join(', ')}${(n.drifted ?? 0) > 5 ? ', …' : ''})` : '');
  return `steward: ${what} — ${n.trigger}, workflow ${n.workflowId}`;
}

const plural = (n: number): string => `${n} resource${n === 1 ? '' : 's'}`;

/** The request body for a webhook's format. */
export function notificationBody(n: Notification, format: Webhook['format']): string {
  return format === 'text' ? JSON.stringify({ text: summaryLine(n) }) : JSON.stringify({ version: 1, ...n });
}

/** What is signed: the timestamp header's value, a dot, and the exact body bytes. */
export function signedPayload(timestamp: string, body: string): string {
  return `${timestamp}.${body}`;
}

/** The outcome of telling one webhook. */
export interface Delivery {
  readonly webhook: string;
  readonly delivered: boolean;
  readonly attempts: number;
  /** Why the last attempt failed (status or error), when not delivered. */
  readonly error?: string;
}
