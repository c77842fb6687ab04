/**
 * Approval from the command line: the plan a waiting run shows (printed while its command follows it, and by
 * `steward approve` before it decides), and the decision delivered as the run's `decide` Update — refused by the run
 * unless it names the plan waiting. After a decision the command follows the run to its end, or to its next wait when
 * the host moved and the run asks again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Client, WorkflowHandle } from '@temporalio/client';
import {
  APPROVAL_QUERY,
  DECIDE_UPDATE,
  namesPlan,
  shortDigest,
  type ApprovalState,
  type Decision,
  type RecordedDecision,
} from '../model/approval';
import type { HostReport } from '../model/report';
import type { HostProgress } from '../workflows/host-operation';
import { runningQuery } from '../model/runs';
import { StewardHost } from '../model/search-attributes';
import { cliUser, listingClient, type GlobalOptions } from './context';
import { EXIT, OperationRefusedError, UsageError } from './errors';
import { describeChange, pollUntilStopped, toStdout, type Print } from './output';

/** The plan a run waits with, for a person to read: digest, expiry, every change, and the commands that decide it. */
export function printPlan(workflowId: string, host: string, s: ApprovalState, print: Print = toStdout): void {
  const p = s.plan;
  if (!p) return;
  if (s.replanned) print(`${host}: planned again: ${s.replanned}`);
  print(
    `${host}: plan ${shortDigest(p.digest)} (revision ${p.revision}) waits for approval until ${p.expiresAt}: ` +
      `${p.changes.length} change${p.changes.length === 1 ? '' : 's'}`,
  );
  for (const c of p.changes) print(`    ${describeChange(c)}`);
  print(
    `  approve: steward approve ${workflowId} --plan ${shortDigest(p.digest)}\n` +
      `  reject:  steward reject ${workflowId} --reason "…"`,
  );
}

/**
 * Watches runs that may wait for approval (their `approval` query, once a second) and prints each plan revision when
 * it starts waiting, and each decision. A run without the query (a converge: its stages wait, as runs of their own)
 * is watched through the host's running stage runs, found in visibility every few seconds.
 */
export function watchApprovals(
  client: Client,
  runs: readonly { readonly label: string; readonly workflowId: string }[],
  print: Print,
): { stop(): Promise<void> } {
  const shown = new Map<string, number>();
  const decided = new Map<string, number>();
  /** Runs that answer no approval query: their host's stage runs are looked up instead. */
  const staged = new Set<string>();
  const stages = new Map<string, { label: string; workflowId: string }>();
  let last = 0;
  let listed = 0;
  return pollUntilStopped(async () => {
    if (Date.now() - last < 1_000) return;
    last = Date.now();
    if (staged.size > 0 && Date.now() - listed > 3_000) {
      listed = Date.now();
      const hosts = runs.filter((r) => staged.has(r.workflowId)).map((r) => r.label);
      for await (const w of listingClient(client).workflow.list({ query: runningQuery(hosts) })) {
        const host = w.typedSearchAttributes.get(StewardHost);
        if (host && !runs.some((r) => r.workflowId === w.workflowId)) {
          stages.set(w.workflowId, { label: host, workflowId: w.workflowId });
        }
      }
    }
    for (const run of [...runs.filter((r) => !staged.has(r.workflowId)), ...stages.values()]) {
      const s = await client.workflow
        .getHandle(run.workflowId)
        .query<ApprovalState>(APPROVAL_QUERY)
        .catch((err: unknown) => {
          // Only a run without the query (a converge) is watched through its stages; one not started yet is asked
          // again next time.
          if (runs.includes(run) && /did not register a handler|QueryNotRegistered/i.test(String(err))) {
            staged.add(run.workflowId);
          }
          return undefined;
        });
      if (!s?.plan) continue;
      if (s.status === 'waiting' && shown.get(run.workflowId) !== s.plan.revision) {
        shown.set(run.workflowId, s.plan.revision);
        printPlan(run.workflowId, run.label, s, print);
      }
      const d = s.decisions.at(-1);
      if (d && decided.get(run.workflowId) !== s.decisions.length) {
        decided.set(run.workflowId, s.decisions.length);
        print(`${run.label}: ${describeDecision(d)}`);
      }
    }
  });
}

export function describeDecision(d: RecordedDecision): string {
  const what = d.decision === 'approve' ? 'approved' : 'rejected';
  return `plan ${shortDigest(d.plan)} ${what} by ${d.by} at ${d.at}${d.reason ? `: ${d.reason}` : ''}`;
}

export interface DecisionFlags {
  readonly decision: Decision['decision'];
  /** The digest (or its first 12+ hex digits) of the plan decided; default the plan waiting now. */
  readonly plan?: string;
  readonly reason?: string;
}

/**
 * `steward approve RUN` / `steward reject RUN --reason`: shows the plan waiting, delivers the decision on it, then
 * follows the run (unless --no-wait) to its end — or, when the host moved since the plan and the run asks again, to
 * that new wait (exit 1: the approval did not apply).
 * @throws OperationRefusedError (exit 1) when the run does not wait for a decision or refuses this one.
 */
export async function decideApproval(
  client: Client,
  g: GlobalOptions,
  workflowId: string,
  flags: DecisionFlags,
  print: Print = toStdout,
): Promise<{ code: number; reports: HostReport[] }> {
  if (flags.plan !== undefined && !/^[0-9a-fA-F]{12,64}$/.test(flags.plan.trim())) {
    throw new UsageError(`--plan ${JSON.stringify(flags.plan)}: must be the plan's digest (12 to 64 hex digits)`);
  }
  if (flags.decision === 'reject' && !flags.reason?.trim()) throw new UsageError('reject needs --reason');
  const handle = client.workflow.getHandle(workflowId);
  const { state, progress } = await waiting(handle);
  const plan = state.plan!;
  if (flags.plan !== undefined && !namesPlan(flags.plan, plan.digest)) {
    throw new OperationRefusedError(
      `${workflowId} waits with plan ${shortDigest(plan.digest)} (revision ${plan.revision}), not ${flags.plan}: ` +
        'read the plan again (steward approve without --plan prints it) before deciding',
    );
  }
  if (!g.json) printPlan(workflowId, progress.host, state, print);
  const decision: Decision = {
    decision: flags.decision,
    plan: plan.digest,
    by: cliUser(),
    ...(flags.reason?.trim() ? { reason: flags.reason.trim() } : {}),
  };
  const recorded = await handle
    .executeUpdate<RecordedDecision, [Decision]>(DECIDE_UPDATE, { args: [decision] })
    .catch((err: unknown) => {
      throw new OperationRefusedError(`${workflowId}: ${refusal(err)}`);
    });
  if (!g.json) print(`${progress.host}: ${describeDecision(recorded)}`);
  if (!g.wait || recorded.decision === 'reject') {
    // A rejected run ends at once, with nothing applied: that is what the command asked for.
    if (recorded.decision === 'reject' && g.wait) await handle.result().catch(() => undefined);
    if (g.json) print(JSON.stringify({ workflowId, decision: recorded }));
    else if (recorded.decision === 'reject') print(`${progress.host}: the run ended with nothing applied`);
    return { code: EXIT.ok, reports: [] };
  }
  return followDecided(handle, progress, recorded, g.json, print);
}

/** The run and its approval state. @throws OperationRefusedError unless it is running and waits for a decision. */
async function waiting(handle: WorkflowHandle): Promise<{ state: ApprovalState; progress: HostProgress }> {
  const id = handle.workflowId;
  const run = await handle.describe().catch((err: unknown) => {
    throw new OperationRefusedError(`${id}: ${refusal(err)}`);
  });
  if (run.status.name !== 'RUNNING') {
    throw new OperationRefusedError(`${id} does not wait for a decision (it is ${run.status.name.toLowerCase()})`);
  }
  const [state, progress] = await Promise.all([
    handle.query<ApprovalState>(APPROVAL_QUERY),
    handle.query<HostProgress>('progress'),
  ]).catch((err: unknown) => {
    throw new OperationRefusedError(`${id} is not a run that waits for approval: ${refusal(err)}`);
  });
  if (state.status !== 'waiting' || !state.plan) {
    throw new OperationRefusedError(`${id} does not wait for a decision (approval ${state.status})`);
  }
  return { state, progress };
}

/**
 * After a decision: the run's end (its report), or its next wait for a decision (the host moved since the approved
 * plan), whichever comes first.
 */
async function followDecided(
  handle: WorkflowHandle,
  { host, operation }: Pick<HostProgress, 'host' | 'operation'>,
  recorded: RecordedDecision,
  json: boolean,
  print: Print,
): Promise<{ code: number; reports: HostReport[] }> {
  const ended = handle.result().then(
    (report: HostReport) => ({ report }),
    (err: unknown) => ({ failure: err }),
  );
  let asking: ApprovalState | undefined;
  for (;;) {
    const next = await Promise.race([ended, sleep(1_000).then(() => undefined)]);
    if (next) {
      const report = 'report' in next ? next.report : reportOf(next.failure, host, operation);
      if (json) print(JSON.stringify({ workflowId: handle.workflowId, decision: recorded, report }, null, 2));
      else if (report.status === 'completed') print(`${host}: ${report.changes.length} change(s) applied`);
      else print(`${host}: FAILED: ${report.error ?? 'unknown error'}`);
      return { code: report.status === 'completed' ? EXIT.ok : EXIT.failed, reports: [report] };
    }
    asking = await handle.query<ApprovalState>(APPROVAL_QUERY).catch(() => undefined);
    if (asking?.status === 'waiting' && asking.plan && asking.plan.revision > recorded.revision) break;
  }
  ended.catch(() => undefined);
  if (json) print(JSON.stringify({ workflowId: handle.workflowId, decision: recorded, waiting: asking }, null, 2));
  else {
    print(`${host}: the host no longer matched the plan decided; nothing was applied and the run asks again`);
    if (asking) printPlan(handle.workflowId, host, asking, print);
  }
  return { code: EXIT.failed, reports: [] };
}

/** The report a failed host run carries, or one made from its failure. */
function reportOf(err: unknown, host: string, operation: HostReport['operation']): HostReport {
  let e = err as { cause?: unknown; details?: unknown[]; message?: string } | undefined;
  while (e) {
    const report = e.details?.[0] as HostReport | undefined;
    if (report && typeof report === 'object' && 'steps' in report) return report;
    e = e.cause as typeof e;
  }
  const message = err instanceof Error ? err.message : String(err);
  return { host, operation, mode: 'apply', status: 'failed', changes: [], findings: [], steps: [], error: message };
}

function refusal(err: unknown): string {
  const e = err as Error & { cause?: Error };
  return (e.cause?.message ?? e.message ?? String(err)).split('\n')[0]!;
}
