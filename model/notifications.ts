/**
 * Notifications to webhooks outside the stack: which end of a run is worth telling (a scheduled run that failed, a
 * scheduled drift run that found drift), what the notification says, and how its bodies and signature are made.
 * Pure: the host workflow decides with it, the worker's activity renders and signs with it.
 *
 * A notification carries ids, counts and severities, never a value: resources by `kind:name`, findings by id, the
 * error's first line cut short (the run's history holds the rest).
 */
import type { HostReport, Mode, Operation, Severity } from './report';
import { scheduled } from './runs';
import type { NotificationEvent, Webhook } from './schema';

/** At most this many resources and findings are listed; the counts are always whole. */
export const LIST_LIMIT = 20;
const ERROR_LIMIT = 300;

export interface Notification {
  readonly event: NotificationEvent;
  readonly host: string;
  readonly operation: Operation;
  readonly mode: Mode;
  readonly status: HostReport['status'];
  /** The schedule that started the run, `schedule:<id>`. */
  readonly trigger: string;
  readonly workflowId: string;
  readonly runId: string;
  /** When the run ended (workflow time). */
  readonly at: string;
  readonly changes: number;
  /** `kind:name` of the first {@link LIST_LIMIT} resources changed (or, in a plan, to change). */
  readonly resources: readonly string[];
  /** Findings above `info`, the first {@link LIST_LIMIT}. */
  readonly findings: readonly { readonly id: string; readonly severity: Severity }[];
  readonly error?: string;
}

export interface RunContext {
  readonly trigger: string | undefined;
  readonly workflowId: string;
  readonly runId: string;
  readonly at: string;
}

/** The notification a run's end deserves, if any: only runs a schedule started (a person is watching the others). */
export function notificationFor(report: HostReport, run: RunContext): Notification | undefined {
  if (!run.trigger || !scheduled(run.trigger) || report.alreadyRunning) return undefined;
  const event: NotificationEvent | undefined =
    report.status === 'failed'
      ? 'run.failed'
      : report.operation === 'drift' && report.changes.length > 0
        ? 'drift.found'
        : undefined;
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
    resources: report.changes.slice(0, LIST_LIMIT).map((c) => c.resource),
    findings: report.findings
      .filter((f) => f.severity !== 'info')
      .slice(0, LIST_LIMIT)
      .map(({ id, severity }) => ({ id, severity })),
    ...(error ? { error: error.length > ERROR_LIMIT ? `${error.slice(0, ERROR_LIMIT)}…` : error } : {}),
  };
}

/** The webhooks subscribed to an event. */
export function subscribers(webhooks: readonly Webhook[], event: NotificationEvent): Webhook[] {
  return webhooks.filter((w) => w.events.includes(event));
}

/** One line an operator reads in a chat. */
export function summaryLine(n: Notification): string {
  const what =
    n.event === 'run.failed'
      ? `${n.operation} of ${n.host} failed${n.error ? `: ${n.error}` : ''}`
      : `drift on ${n.host}: ${n.changes} resource${n.changes === 1 ? '' : 's'} ${n.mode === 'apply' ? 'repaired' : 'drifted'}` +
        (n.resources.length ? ` (${n.resources.slice(0, 5).join(', ')}${n.changes > 5 ? ', …' : ''})` : '');
  return `steward: ${what} — ${n.trigger}, workflow ${n.workflowId}`;
}

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
