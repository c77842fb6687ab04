/** `steward status`: recent runs from Temporal visibility, filterable by host and operation. */
import { z } from 'zod';
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
  }
}
