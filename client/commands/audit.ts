/**
 * `steward audit`: steward's runs from Temporal visibility (filtered by host, operation, outcome and time), one run
 * as a timeline read from its event history, exports of full histories into a hash-chained directory, and the
 * verification of such a directory.
 *
 * Listing, exporting and verifying decode no payload, so they need no codec key; a timeline decodes payloads (step
 * changes, the final report, who started it) when a key is at hand and shows the rest without one.
 */
import { hostname, userInfo } from 'node:os';
import { resolve } from 'node:path';
import { Client } from '@temporalio/client';
import { AesGcmPayloadCodec } from '../../codec/aes-gcm';
import { CodecKeyError } from '../../codec/errors';
import { StewardChanges, StewardHost, StewardOperation, StewardOutcome } from '../../model/search-attributes';
import { validate } from '../../model/validate';
import { chainHead, readChain, readManifestFile, type ChainHead } from '../../common/audit/export-dir';
import { exportHistories } from '../../common/audit/exporter';
import {
  describeRun,
  fetchRawHistory,
  fetchStartEvent,
  keyword,
  listRuns,
  searchAttributeValues,
} from '../../common/audit/history';
import type { RawPayload, RunInfo } from '../../common/audit/history';
import { verifyChain } from '../../common/audit/manifest';
import { auditFiltersSchema, listQuery, outcomeOf, type AuditFilters } from '../../common/audit/query';
import {
  buildTimeline,
  payloadDecoder,
  startedByOf,
  type RunTimeline,
  type StartedBy,
  type TimelineStep,
} from '../audit/timeline';
import { loadCodecKeys } from '../../common/codec-keys';
import { connectTemporal } from '../../common/temporal-client';
import type { GlobalOptions } from '../context';
import { EXIT, UsageError } from '../errors';
import { describeChange } from '../output';

export interface AuditFlags {
  readonly run?: string;
  readonly host?: string;
  readonly operation?: string;
  readonly outcome?: string;
  readonly since?: string;
  readonly until?: string;
  readonly limit?: string;
  readonly export?: string;
  readonly previous?: string;
}

export interface VerifyFlags {
  readonly previous?: string;
  readonly expectHead?: string;
}

/** One run as `steward audit` lists it. */
export interface AuditListEntry {
  readonly workflowId: string;
  readonly runId: string;
  readonly type: string;
  readonly host?: string;
  readonly operation?: string;
  readonly outcome: string;
  readonly changes?: number;
  readonly startTime: string;
  readonly closeTime?: string;
  readonly durationMs?: number;
  readonly startedBy: StartedBy;
}

const DEFAULT_LIST_LIMIT = 20;
/** Start events read at once to tell who started each listed run. */
const START_EVENT_READS = 8;

/** A client that never sends a payload (listing, history reads): it needs no codec key and decodes nothing. */
async function readOnlyClient(g: GlobalOptions): Promise<Client> {
  return new Client({ connection: await connectTemporal(g.temporal), namespace: g.namespace });
}

/** `steward audit [WORKFLOW_ID] […]`: list, timeline or export. @returns the exit code. */
export async function audit(g: GlobalOptions, workflowId: string | undefined, flags: AuditFlags): Promise<number> {
  const now = new Date();
  const { run, export: exportDir, previous, ...filterFlags } = flags;
  const filters = validate(auditFiltersSchema(now), filterFlags, 'steward audit flags');
  if (workflowId !== undefined) {
    const given = Object.keys(filterFlags).filter((k) => filterFlags[k as keyof typeof filterFlags] !== undefined);
    if (given.length > 0 || exportDir) {
      throw new UsageError(
        `steward audit ${workflowId} shows one run: --${[...given, ...(exportDir ? ['export'] : [])].join(', --')} apply to lists and exports`,
      );
    }
    return timeline(g, workflowId, run);
  }
  if (run) throw new UsageError('--run needs a workflow id: steward audit WORKFLOW_ID --run RUN_ID');
  if (previous && !exportDir) throw new UsageError('--previous applies to --export');
  if (exportDir) return exportRuns(g, resolve(exportDir), filters, previous);
  return list(g, filters);
}

async function list(g: GlobalOptions, filters: AuditFilters): Promise<number> {
  const client = await readOnlyClient(g);
  let entries: AuditListEntry[];
  try {
    const runs = await listRuns(client, listQuery(filters), filters.limit ?? DEFAULT_LIST_LIMIT);
    runs.sort((a, b) => b.startTime.getTime() - a.startTime.getTime() || a.workflowId.localeCompare(b.workflowId));
    entries = await mapLimited(runs, START_EVENT_READS, (r) => listEntry(client, r));
  } finally {
    await client.connection.close();
  }
  if (g.json) {
    console.log(JSON.stringify({ runs: entries }, null, 2));
    return EXIT.ok;
  }
  if (entries.length === 0) {
    console.log('no steward runs match');
    return EXIT.ok;
  }
  const rows = entries.map((e) => [
    e.startTime.replace(/\.\d+Z$/, 'Z'),
    e.durationMs === undefined ? 'running' : seconds(e.durationMs),
    e.outcome,
    e.operation ?? '-',
    e.host ?? '-',
    e.changes === undefined ? '-' : String(e.changes),
    e.startedBy.name,
    e.workflowId,
    e.runId,
  ]);
  printTable(['START', 'TOOK', 'OUTCOME', 'OPERATION', 'HOST', 'CHANGES', 'STARTED BY', 'WORKFLOW ID', 'RUN ID'], rows);
  return EXIT.ok;
}

async function listEntry(client: Client, r: RunInfo): Promise<AuditListEntry> {
  const a = r.searchAttributes;
  let startedBy = startedByOf({
    searchAttributes: a,
    ...(r.parent ? { parentWorkflowId: r.parent.workflowId } : {}),
  });
  if (startedBy.kind === 'client') {
    // Neither a marker, a schedule nor a parent: the start event says which client it was.
    const first = await fetchStartEvent(client, r.workflowId, r.runId).catch(() => undefined);
    const s = first?.workflowExecutionStartedEventAttributes;
    startedBy = startedByOf({
      searchAttributes: {
        ...searchAttributeValues(s?.searchAttributes?.indexedFields as Record<string, RawPayload> | undefined),
        ...a,
      },
      ...(s?.identity ? { identity: s.identity } : {}),
    });
  }
  const host = keyword(a[StewardHost.name]);
  const operation = keyword(a[StewardOperation.name]);
  const changes = a[StewardChanges.name];
  return {
    workflowId: r.workflowId,
    runId: r.runId,
    type: r.type,
    ...(host ? { host } : {}),
    ...(operation ? { operation } : {}),
    outcome: outcomeOf(r.status, keyword(a[StewardOutcome.name])),
    ...(typeof changes === 'number' ? { changes } : {}),
    startTime: r.startTime.toISOString(),
    ...(r.closeTime
      ? { closeTime: r.closeTime.toISOString(), durationMs: r.closeTime.getTime() - r.startTime.getTime() }
      : {}),
    startedBy,
  };
}

async function timeline(g: GlobalOptions, workflowId: string, runId: string | undefined): Promise<number> {
  let codec: AesGcmPayloadCodec | undefined;
  try {
    // A timeline shows a history as it is: payloads some client wrote without the key are shown, not refused.
    codec = new AesGcmPayloadCodec(await loadCodecKeys(g), { readPlaintext: true });
  } catch (err) {
    if (!(err instanceof CodecKeyError)) throw err;
  }
  const client = await readOnlyClient(g);
  let t: RunTimeline;
  try {
    const { run, pending } = await describeRun(client, workflowId, runId).catch((err: unknown) => {
      throw notFound(err)
        ? new Error(
            `no run of ${workflowId}${runId ? ` with run id ${runId}` : ''} on ${g.address} (namespace ${g.namespace}): unknown, or past retention`,
          )
        : err;
    });
    const history = await fetchRawHistory(client, run.workflowId, run.runId);
    t = await buildTimeline(history, { ...run, pending }, payloadDecoder(codec));
  } finally {
    await client.connection.close();
  }
  if (g.json) console.log(JSON.stringify(t, null, 2));
  else printTimeline(t);
  return EXIT.ok;
}

async function exportRuns(
  g: GlobalOptions,
  dir: string,
  filters: AuditFilters,
  previousFile: string | undefined,
): Promise<number> {
  const previous: ChainHead | undefined = previousFile ? await readManifestFile(resolve(previousFile)) : undefined;
  if (previous && (await chainHead(dir))) {
    throw new UsageError(
      `${dir} already holds a chain: --previous only starts a new directory from a manifest kept elsewhere`,
    );
  }
  const client = await readOnlyClient(g);
  const { host, operation, outcome, since, until, limit } = filters;
  try {
    const r = await exportHistories({
      client,
      dir,
      selection: { ...(host ? { host } : {}), ...(operation ? { operation } : {}), ...(outcome ? { outcome } : {}) },
      ...(since ? { since } : {}),
      ...(until ? { until } : {}),
      ...(limit !== undefined ? { limit } : {}),
      ...(previous ? { previous } : {}),
      producer: { kind: 'cli', identity: cliIdentity() },
    });
    if (g.json) console.log(JSON.stringify(r, null, 2));
    else if (!r.exportDir) {
      console.log(
        `no steward run closed in [${r.window.since ?? 'the beginning'}, ${r.window.until}) matches: nothing written`,
      );
    } else {
      console.log(
        `export ${r.sequence}: ${r.runs} run${r.runs === 1 ? '' : 's'} closed in [${r.window.since ?? 'the beginning'}, ${r.window.until}) → ${r.exportDir}`,
      );
      console.log(`  chain hash ${r.chainHash}`);
      console.log(`  head (manifest SHA-256, keep it elsewhere) ${r.manifestSha256}`);
    }
  } finally {
    await client.connection.close();
  }
  return EXIT.ok;
}

/** `steward audit verify DIR`: @returns 0 when every file, manifest and link holds, else 1. */
export async function verify(g: GlobalOptions, dir: string, flags: VerifyFlags): Promise<number> {
  const sha = /^[0-9a-f]{64}$/;
  if (flags.expectHead !== undefined && !sha.test(flags.expectHead))
    throw new UsageError('--expect-head must be a SHA-256 (64 lowercase hex digits)');
  let previous: string | undefined;
  if (flags.previous !== undefined)
    previous = sha.test(flags.previous)
      ? flags.previous
      : (await readManifestFile(resolve(flags.previous))).manifestSha256;
  const snapshot = await readChain(resolve(dir));
  const result = verifyChain(snapshot, {
    ...(previous ? { previous } : {}),
    ...(flags.expectHead ? { expectHead: flags.expectHead } : {}),
  });
  if (g.json) console.log(JSON.stringify({ dir, ...result }, null, 2));
  else if (result.ok) {
    const files = result.exports.reduce((n, e) => n + e.files, 0);
    console.log(
      `${dir}: ${result.exports.length} export${result.exports.length === 1 ? '' : 's'}, ${files} histories verified`,
    );
    console.log(`  head ${result.head ?? '-'}`);
  }
  const base = dir.replace(/\/$/, '');
  for (const p of result.problems)
    console.error(`steward: ${p.path === '.' ? base : `${base}/${p.path}`}: ${p.problem}`);
  return result.ok ? EXIT.ok : EXIT.failed;
}

function printTimeline(t: RunTimeline): void {
  console.log(`${t.workflowId}  run ${t.runId}  ${t.type}`);
  const what = [t.host && `host ${t.host}`, t.operation && `operation ${t.operation}`, t.mode && `mode ${t.mode}`];
  if (what.some(Boolean)) console.log(`  ${what.filter(Boolean).join(' · ')}`);
  console.log(`  started ${t.startTime} by ${describeStarter(t.startedBy)}`);
  const took = t.durationMs === undefined ? 'still running' : `took ${seconds(t.durationMs)}`;
  console.log(
    `  ${t.outcome} · ${t.changes.length} change${t.changes.length === 1 ? '' : 's'} · ${took} · ${t.events} events`,
  );
  console.log('');
  for (const s of t.steps) printStep(s);
  if (t.retries.length > 0) {
    console.log('\nretries');
    for (const r of t.retries)
      console.log(`  ${r.step}${r.id ? ` (${r.id})` : ''}: ${r.attempts} attempts, retried after: ${r.after}`);
  }
  if (t.failures.length > 0) {
    console.log('\nfailures');
    for (const f of t.failures)
      console.log(`  +${seconds(f.offsetMs)} ${f.source}: ${f.message}${f.nonRetryable ? ' (not retryable)' : ''}`);
  }
  if (t.changes.length > 0) {
    console.log('\nchanges');
    for (const c of t.changes) console.log(`  ${describeChange(c)}`);
  }
  if (t.controls?.length) {
    console.log('\ncontrols');
    for (const c of t.controls) console.log(`  ${c.status.padEnd(14)} ${c.control}: ${c.observed}`);
  }
  console.log(`\noutcome: ${t.outcome}${t.error ? `: ${t.error}` : ''}`);
  for (const u of t.undecoded ?? []) console.log(`note: some payloads not shown: ${u}`);
}

function printStep(s: TimelineStep): void {
  const name = s.kind === 'activity' ? s.name : `${s.kind} ${s.name}`;
  const attempts = s.attempts && s.attempts > 1 ? `  ${s.attempts} attempts` : '';
  const took = s.durationMs === undefined ? '' : seconds(s.durationMs);
  const changes = s.changes?.length ? `  ${s.changes.length} change${s.changes.length === 1 ? '' : 's'}` : '';
  console.log(
    `  +${seconds(s.offsetMs).padEnd(8)} ${name.padEnd(28)} ${s.state.padEnd(10)} ${took.padStart(8)}${attempts}${changes}`,
  );
  if (s.kind === 'child' && s.id) console.log(`      ${s.id}${s.childRunId ? ` (run ${s.childRunId})` : ''}`);
  if (s.summary) console.log(`      ${s.summary}`);
  if (s.retriedAfter) console.log(`      retried after: ${s.retriedAfter}`);
  if (s.failure) console.log(`      failed: ${s.failure}`);
  for (const c of s.changes ?? []) console.log(`      ${describeChange(c)}`);
}

function describeStarter(s: StartedBy): string {
  const identity = s.identity && s.identity !== s.name ? ` (client ${s.identity})` : '';
  return `${s.kind === 'client' ? 'client ' : ''}${s.name}${identity}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
}

function printTable(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  console.log(line(header));
  for (const r of rows) console.log(line(r));
}

/** Who runs this CLI: the operator's login and machine. */
function cliIdentity(): string {
  let user = process.env.USER ?? 'unknown';
  try {
    user = userInfo().username;
  } catch {
    // no passwd entry (containers): keep $USER
  }
  return `${user}@${hostname()}`;
}

function notFound(err: unknown): boolean {
  return (err as { code?: number })?.code === 5;
}

async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const lane = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, lane));
  return out;
}
