/**
 * Approval before a change: a run that needs one plans first (the operation in plan mode), publishes the plan and its
 * digest, and waits for a decision delivered as an Update (`steward approve RUN` / `steward reject RUN --reason`).
 * The decision names the digest of the plan it decides, so nobody approves a plan they did not see; before applying,
 * the run plans again, and applies only when the host still matches the approved plan. Pure: the workflow, the CLI
 * and the tests share it.
 */
import { sha256Hex } from './digest';
import type { Change, Operation } from './report';

/** The host workflow's query and update, by name for the CLI. */
export const APPROVAL_QUERY = 'approval';
export const DECIDE_UPDATE = 'decide';

/** The operations that can wait for approval: those whose plan mode shows what the apply would change. */
export const APPROVABLE_OPERATIONS = ['provision', 'harden', 'deploy'] as const satisfies readonly Operation[];
export type ApprovableOperation = (typeof APPROVABLE_OPERATIONS)[number];

/** Default time a plan waits for a decision before the run ends with nothing applied. */
export const DEFAULT_APPROVAL_WINDOW_MS = 24 * 3600_000;

/** What a run that asks for approval is given. */
export interface ApprovalRequest {
  /** How long each published plan waits for its decision. */
  readonly windowMs: number;
}

/** A plan as published for a decision. */
export interface PublishedPlan {
  /** {@link planDigest} of `changes`. */
  readonly digest: string;
  readonly changes: readonly Change[];
  /** 1 for the first plan; each plan published again after the host moved counts up. */
  readonly revision: number;
  readonly publishedAt: string;
  readonly expiresAt: string;
}

export interface Decision {
  readonly decision: 'approve' | 'reject';
  /** The digest of the plan decided (the one shown to the person deciding). */
  readonly plan: string;
  /** Who decided, as the CLI names its user (`user@host`). */
  readonly by: string;
  readonly reason?: string;
}

/** A decision as the run recorded it. */
export interface RecordedDecision extends Decision {
  readonly at: string;
  readonly revision: number;
}

export type ApprovalStatus = 'planning' | 'waiting' | 'approved' | 'rejected' | 'expired' | 'not-needed';

/** What the approval query answers. */
export interface ApprovalState {
  readonly status: ApprovalStatus;
  /** The plan waiting (or last waiting) for a decision. */
  readonly plan?: PublishedPlan;
  readonly decisions: readonly RecordedDecision[];
  /** Why the last plan was published again: the host moved after the decision. */
  readonly replanned?: string;
}

/**
 * The digest of a plan: SHA-256 of its changes in canonical form (keys sorted, changes ordered by resource and
 * action). Two plans with the same digest change the same resources the same way.
 */
export function planDigest(changes: readonly Change[]): string {
  const rows = changes
    .map((c) => canonical({ resource: c.resource, action: c.action, before: c.before, after: c.after }))
    .sort();
  return sha256Hex(`steward-plan-v1\n${rows.join('\n')}`);
}

/** The short form shown beside a plan and accepted by `steward approve --plan` (12 hex digits, or more). */
export function shortDigest(digest: string): string {
  return digest.slice(0, 12);
}

/** Whether `given` (a full digest or a prefix of at least 12 hex digits) names `digest`. */
export function namesPlan(given: string, digest: string): boolean {
  const g = given.trim().toLowerCase();
  return /^[0-9a-f]{12,64}$/.test(g) && digest.startsWith(g);
}

/**
 * Why the run refuses `d` in state `s`, or undefined when it takes it (the Update's validator: a refused decision
 * leaves no trace in the run's history).
 */
export function decisionProblem(s: ApprovalState, d: Decision): string | undefined {
  if (d.decision !== 'approve' && d.decision !== 'reject') return 'a decision is approve or reject';
  if (!d.by?.trim()) return 'a decision names who decided';
  if (d.decision === 'reject' && !d.reason?.trim()) return 'a rejection needs a reason (--reason)';
  if (s.status !== 'waiting' || !s.plan) {
    const now = s.status === 'planning' ? 'is planning' : `is ${s.status}`;
    return `this run is not waiting for a decision (it ${now})`;
  }
  if (!namesPlan(d.plan ?? '', s.plan.digest)) {
    return (
      `the run waits for a decision on plan ${shortDigest(s.plan.digest)} (revision ${s.plan.revision}), ` +
      `not ${JSON.stringify(d.plan)}: look at the plan again (steward approve RUN shows it)`
    );
  }
  if (s.decisions.some((r) => r.revision === s.plan!.revision)) return 'this plan was already decided';
  return undefined;
}

/**
 * The plan as the Web UI shows it (the run's current details, Markdown): what waits, its digest, its changes and the
 * commands that decide it. Values are described as in every report: no secret ever reaches a change.
 */
export function approvalDetails(workflowId: string, s: ApprovalState): string {
  const p = s.plan;
  if (!p) return `**Approval:** ${s.status}`;
  const head =
    s.status === 'waiting'
      ? `**Waiting for approval** of plan \`${shortDigest(p.digest)}\` (revision ${p.revision}, until ${p.expiresAt})`
      : `**Approval ${s.status}**: plan \`${shortDigest(p.digest)}\` (revision ${p.revision})`;
  const lines = [head];
  if (s.replanned) lines.push('', `Planned again: ${s.replanned}`);
  lines.push('', `${p.changes.length} change(s):`, '');
  for (const c of p.changes.slice(0, 50)) lines.push(`- ${c.action} \`${c.resource}\``);
  if (p.changes.length > 50) lines.push(`- … ${p.changes.length - 50} more (steward approve shows all)`);
  if (s.status === 'waiting') {
    lines.push(
      '',
      `Approve: \`steward approve ${workflowId} --plan ${shortDigest(p.digest)}\``,
      '',
      `Reject: \`steward reject ${workflowId} --reason "…"\``,
    );
  }
  for (const d of s.decisions) {
    lines.push(
      '',
      `${d.decision === 'approve' ? 'Approved' : 'Rejected'} by ${d.by} at ${d.at}${d.reason ? `: ${d.reason}` : ''}`,
    );
  }
  return lines.join('\n');
}

/** JSON with object keys sorted at every level: the same value always gives the same text. */
function canonical(value: unknown): string {
  if (value === undefined) return 'null';
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
}
