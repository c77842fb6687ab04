/** `steward status`: recent runs from Temporal visibility, filterable by host and operation. */
import { z } from 'zod';
import { APPROVABLE_OPERATIONS, APPROVAL_QUERY, shortDigest, type ApprovalState } from '../../model/approval';
import { resourceNameSchema } from '../../model/schema';
import {
  StewardChanges,
  StewardHost,
  StewardOperation,
  StewardOutcome,
  StewardTrigger,
} from '../../model/search-attributes';
import { validate } from '../../model/validate';
import { connectClient, listingClient, type GlobalOptions } from '../context';

const flagsSchema = z.object({
  host: resourceNameSchema.optional(),
  operation: z
    .enum([
      'provision',
      'harden',
      'deploy',
      'converge',
      'rotate',
      'memory',
      'drift',
      'backup',
      'restore',
      'drill',
      'upgrade',
      'verify',
    ])
    .optional(),
  limit: z.coerce.number().int().min(1).max(1000),
});

export interface RunSummary {
  workflowId: string;
  runId: string;
  type: string;
  status: string;
  host?: string;
  operation?: string;
  outcome?: string;
  changes?: number;
  /** Who started it: `cli:<user>@<host>` or `schedule:<id>`. */
  trigger?: string;
  startTime: string;
  closeTime?: string;
  /** A running run whose plan waits for a decision: its digest (short), revision and when the wait ends. */
  waitingForApproval?: { plan: string; revision: number; changes: number; expiresAt: string };
}

/** Visibility query for steward runs; values were validated, so they cannot break out of the quotes. */
export function statusQuery(host?: string, operation?: string): string {
  const clauses = [`${StewardOperation.name} IS NOT NULL`];
  if (host) clauses.push(`${StewardHost.name} = '${host}'`);
  if (operation) clauses.push(`${StewardOperation.name} = '${operation}'`);
  return clauses.join(' AND ');
}

export async function status(
  g: GlobalOptions,
  flags: { host?: string; operation?: string; limit: string },
): Promise<void> {
  const f = validate(flagsSchema, flags, 'steward status flags');
  const client = await connectClient(g);
  const runs: RunSummary[] = [];
  try {
    for await (const w of listingClient(client).workflow.list({
      query: statusQuery(f.host, f.operation),
      pageSize: f.limit,
    })) {
      const a = w.typedSearchAttributes;
      runs.push({
        workflowId: w.workflowId,
        runId: w.runId,
        type: w.type,
        status: w.status.name,
        host: a.get(StewardHost),
        operation: a.get(StewardOperation),
        outcome: a.get(StewardOutcome),
        changes: a.get(StewardChanges),
        trigger: a.get(StewardTrigger),
        startTime: w.startTime.toISOString(),
        ...(w.closeTime ? { closeTime: w.closeTime.toISOString() } : {}),
      });
      if (runs.length >= f.limit) break;
    }
    // Runs that may wait for approval say so (a converge's stages are runs of their own here).
    for (const r of runs) {
      if (r.status !== 'RUNNING' || !APPROVABLE_OPERATIONS.some((o) => o === r.operation)) continue;
      const s = await client.workflow
        .getHandle(r.workflowId, r.runId)
        .query<ApprovalState>(APPROVAL_QUERY)
        .catch(() => undefined);
      if (s?.status === 'waiting' && s.plan) {
        const { digest, revision, changes, expiresAt } = s.plan;
        r.waitingForApproval = { plan: shortDigest(digest), revision, changes: changes.length, expiresAt };
      }
    }
  } finally {
    await client.connection.close();
  }
  if (g.json) {
    console.log(JSON.stringify({ runs }, null, 2));
    return;
  }
  if (runs.length === 0) console.log('no steward runs found');
  for (const r of runs) {
    const took = r.closeTime
      ? `${((Date.parse(r.closeTime) - Date.parse(r.startTime)) / 1000).toFixed(1)}s`
      : 'running';
    console.log(
      `${r.startTime}  ${r.status.padEnd(10)} ${(r.operation ?? '').padEnd(10)} ${(r.host ?? '').padEnd(14)} ` +
        `${String(r.changes ?? '-').padStart(4)} changes  ${took.padStart(8)}  ${r.workflowId}` +
        (r.trigger ? `  by ${r.trigger}` : ''),
    );
    const w = r.waitingForApproval;
    if (w) {
      console.log(
        `  waits for approval of plan ${w.plan} (revision ${w.revision}, ${w.changes} changes) until ${w.expiresAt}: ` +
          `steward approve ${r.workflowId} --plan ${w.plan}`,
      );
    }
  }
}
