/**
 * One audit export: select closed runs from visibility, write each run's full event history in Temporal's JSON
 * format with its payloads as stored (encrypted), list them in a manifest, and link it to the chain's previous
 * export. Shared by `steward audit --export` and the `auditExport` activity.
 */
import type { Client } from '@temporalio/client';
import type { AuditExportResult, AuditSelection } from '../../model/audit';
import { StewardHost, StewardOperation, StewardOutcome } from '../../model/search-attributes';
import { chainHead, startExport, type ChainHead } from './export-dir';
import { fetchRawHistory, historyToJson, keyword, listRuns, type RunInfo } from './history';
import { chainHash, historyFileName, MANIFEST_FORMAT, type ExportEntry, type Manifest } from './manifest';
import { exportQuery, outcomeOf } from './query';

export interface ExportRequest {
  readonly client: Client;
  /** The chain directory: the new export goes into `<dir>/<sequence>`. */
  readonly dir: string;
  readonly selection: AuditSelection;
  /** Runs that closed at or after this; default: the previous export's `until`, else every run in retention. */
  readonly since?: Date;
  /** Runs that closed before this; default `now`. */
  readonly until?: Date;
  /** At most this many runs, the earliest closed first; the window then ends where the next would have begun. */
  readonly limit?: number;
  /** The manifest to link to when the chain's previous exports are not in `dir`; default the newest in `dir`. */
  readonly previous?: ChainHead;
  readonly producer: Manifest['producer'];
  readonly now?: Date;
  /** Called after each history page read and file written (activities heartbeat here). */
  readonly onProgress?: (done: number, total: number) => void;
}

/**
 * Writes one export and returns what it wrote; writes nothing when no run closed in the window.
 * Safe to retry: a failed export leaves nothing behind, and the next continues from the chain's head.
 * @throws AuditChainError when the chain's head is unreadable or another export took the same sequence number.
 */
export async function exportHistories(req: ExportRequest): Promise<AuditExportResult> {
  const now = req.now ?? new Date();
  const head = req.previous ?? (await chainHead(req.dir));
  const since = req.since ?? (head ? new Date(head.manifest.window.until) : null);
  let until = req.until ?? now;
  if (since && since >= until) return { runs: 0, window: { since: since.toISOString(), until: since.toISOString() } };

  const query = exportQuery({ ...req.selection, since, until });
  let runs = (await listRuns(req.client, query)).filter((r) => r.closeTime);
  runs.sort((a, b) => closeMs(a) - closeMs(b) || a.runId.localeCompare(b.runId));
  if (req.limit !== undefined && runs.length > req.limit) {
    // End the window at the first run left out, so the next export starts exactly there: none lost, none twice.
    const firstLeftOut = closeMs(runs[req.limit] as RunInfo);
    const kept = runs.filter((r) => closeMs(r) < firstLeftOut);
    if (kept.length > 0) {
      runs = kept;
      until = new Date(firstLeftOut);
    } else {
      runs = runs.filter((r) => closeMs(r) === firstLeftOut);
      until = new Date(firstLeftOut + 1);
    }
  }
  const window = { since: since?.toISOString() ?? null, until: until.toISOString() };
  if (runs.length === 0) return { runs: 0, window };

  const sequence = head ? head.manifest.sequence + 1 : 1;
  const writer = await startExport(req.dir, sequence);
  try {
    const files: ExportEntry[] = [];
    const skipped: Manifest['skipped'] = [];
    for (const run of runs) {
      let json: string;
      let events: number;
      try {
        const history = await fetchRawHistory(req.client, run.workflowId, run.runId, () =>
          req.onProgress?.(files.length, runs.length),
        );
        events = history.events?.length ?? 0;
        json = historyToJson(history);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        skipped.push({ workflowId: run.workflowId, runId: run.runId, reason: 'history no longer on the server' });
        continue;
      }
      const file = historyFileName(files.length + 1, run.workflowId, run.runId);
      const { sha256, bytes } = await writer.add(file, json);
      files.push(entry(run, file, sha256, bytes, events));
      req.onProgress?.(files.length, runs.length);
    }
    const previous = head ? { export: head.name, manifestSha256: head.manifestSha256 } : null;
    const manifest: Manifest = {
      format: MANIFEST_FORMAT,
      sequence,
      createdAt: now.toISOString(),
      namespace: req.client.options.namespace,
      window,
      selection: { ...req.selection, ...(req.limit !== undefined ? { limit: req.limit } : {}) },
      query,
      producer: req.producer,
      previous,
      files,
      skipped,
      chainHash: chainHash(sequence, previous?.manifestSha256 ?? null, files),
    };
    const { exportDir, manifestSha256 } = await writer.commit(manifest);
    return {
      exportDir,
      sequence,
      runs: files.length,
      manifestSha256,
      chainHash: manifest.chainHash,
      previousManifestSha256: previous?.manifestSha256 ?? null,
      window,
    };
  } catch (err) {
    await writer.abort();
    throw err;
  }
}

function closeMs(r: RunInfo): number {
  return r.closeTime?.getTime() ?? Number.MAX_SAFE_INTEGER;
}

function entry(run: RunInfo, file: string, sha256: string, bytes: number, events: number): ExportEntry {
  const a = run.searchAttributes;
  const host = keyword(a[StewardHost.name]);
  const operation = keyword(a[StewardOperation.name]);
  return {
    file,
    sha256,
    bytes,
    events,
    workflowId: run.workflowId,
    runId: run.runId,
    type: run.type,
    status: run.status,
    ...(host ? { host } : {}),
    ...(operation ? { operation } : {}),
    outcome: outcomeOf(run.status, keyword(a[StewardOutcome.name])),
    startTime: run.startTime.toISOString(),
    closeTime: (run.closeTime as Date).toISOString(),
  };
}

function isNotFound(err: unknown): boolean {
  const e = err as { code?: number; name?: string };
  return e?.code === 5 || e?.name === 'WorkflowNotFoundError';
}
