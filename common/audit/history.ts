/**
 * Reading runs as Temporal stores them, without decoding a payload: visibility listings, raw event histories, and
 * Temporal's JSON history format (the proto3 JSON that `temporal workflow show --output json` and the Web UI's
 * download write, and that the SDK's replayer reads). Needs no codec key: nothing here decrypts.
 */
import { createRequire } from 'node:module';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import proto from '@temporalio/proto';
import { patchProtobufRoot } from '@temporalio/proto/lib/patch-protobuf-root';

export type History = proto.temporal.api.history.v1.IHistory;
export type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;
export type RawPayload = proto.temporal.api.common.v1.IPayload;
type Timestamp = proto.google.protobuf.ITimestamp;
type Int64 = number | string | { toString(): string } | null | undefined;

/** A run as visibility lists it. */
export interface RunInfo {
  readonly workflowId: string;
  readonly runId: string;
  readonly type: string;
  /** `Running`, `Completed`, `Failed`, `Canceled`, `Terminated`, `ContinuedAsNew`, `TimedOut`. */
  readonly status: string;
  readonly startTime: Date;
  readonly closeTime?: Date;
  readonly historyLength: number;
  /** Search attributes by name (keyword lists as arrays). */
  readonly searchAttributes: Readonly<Record<string, unknown>>;
  readonly parent?: { readonly workflowId: string; readonly runId: string };
}

export function int64(v: Int64): number {
  return v === null || v === undefined ? 0 : typeof v === 'number' ? v : Number(v.toString());
}

export function timestampMs(t: Timestamp | null | undefined): number | undefined {
  if (!t) return undefined;
  return int64(t.seconds as Int64) * 1000 + Math.floor((t.nanos ?? 0) / 1e6);
}

/** `WORKFLOW_EXECUTION_STATUS_TIMED_OUT` → `TimedOut`, as visibility queries name statuses. */
export function statusName(status: number | null | undefined): string {
  const name = proto.temporal.api.enums.v1.WorkflowExecutionStatus[status ?? 0] ?? 'UNSPECIFIED';
  return name
    .replace(/^WORKFLOW_EXECUTION_STATUS_/, '')
    .toLowerCase()
    .replace(/(^|_)([a-z])/g, (_, _sep: string, c: string) => c.toUpperCase());
}

/** Search attribute values: plain JSON payloads (never encrypted: the server indexes them). */
export function searchAttributeValues(fields: Record<string, RawPayload> | null | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, payload] of Object.entries(fields ?? {})) {
    try {
      out[name] = defaultPayloadConverter.fromPayload(payload as never);
    } catch {
      // A value this SDK cannot read is left out rather than failing the listing.
    }
  }
  return out;
}

/** One keyword: a keyword search attribute comes back as a string, or as a one-element list. */
export function keyword(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && typeof value[0] === 'string') return value[0];
  return undefined;
}

function runInfo(raw: proto.temporal.api.workflow.v1.IWorkflowExecutionInfo): RunInfo {
  const close = timestampMs(raw.closeTime);
  const parent = raw.parentExecution;
  return {
    workflowId: raw.execution?.workflowId ?? '',
    runId: raw.execution?.runId ?? '',
    type: raw.type?.name ?? '',
    status: statusName(raw.status),
    startTime: new Date(timestampMs(raw.startTime) ?? 0),
    ...(close !== undefined ? { closeTime: new Date(close) } : {}),
    historyLength: int64(raw.historyLength as Int64),
    searchAttributes: searchAttributeValues(raw.searchAttributes?.indexedFields as Record<string, RawPayload>),
    ...(parent?.workflowId ? { parent: { workflowId: parent.workflowId, runId: parent.runId ?? '' } } : {}),
  };
}

/**
 * Runs matching a visibility query, in visibility's order, at most `limit` (every match when undefined). Reads the
 * raw listing, so memos and payloads are never decoded and no codec key is needed.
 */
export async function listRuns(client: Client, query: string, limit?: number): Promise<RunInfo[]> {
  const runs: RunInfo[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const pageSize = limit === undefined ? 1000 : Math.min(1000, limit - runs.length);
    const page = await client.workflowService.listWorkflowExecutions({
      namespace: client.options.namespace,
      query,
      pageSize,
      ...(nextPageToken ? { nextPageToken } : {}),
    });
    runs.push(...(page.executions ?? []).map(runInfo));
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
  } while (nextPageToken && (limit === undefined || runs.length < limit));
  return limit === undefined ? runs : runs.slice(0, limit);
}

/** An activity still running or waiting for its next attempt, as the server describes it. */
export interface PendingActivity {
  readonly activityId: string;
  readonly attempt: number;
  readonly lastFailure?: proto.temporal.api.failure.v1.IFailure;
}

/**
 * One run as the server describes it, with its pending activities.
 * @throws the server's NotFound error when the run is unknown (or expired).
 */
export async function describeRun(
  client: Client,
  workflowId: string,
  runId?: string,
): Promise<{ run: RunInfo; pending: PendingActivity[] }> {
  const d = await client.workflowService.describeWorkflowExecution({
    namespace: client.options.namespace,
    execution: { workflowId, ...(runId ? { runId } : {}) },
  });
  return {
    run: runInfo(d.workflowExecutionInfo ?? {}),
    pending: (d.pendingActivities ?? []).map((p) => ({
      activityId: p.activityId ?? '',
      attempt: p.attempt ?? 1,
      ...(p.lastFailure ? { lastFailure: p.lastFailure } : {}),
    })),
  };
}

/**
 * The run's full event history exactly as stored: payloads stay as written (encrypted).
 * @throws the server's NotFound error when the run is unknown or its retention expired.
 */
export async function fetchRawHistory(
  client: Client,
  workflowId: string,
  runId: string,
  onPage?: () => void,
): Promise<History> {
  const events: HistoryEvent[] = [];
  let nextPageToken: Uint8Array | undefined;
  do {
    const page = await client.workflowService.getWorkflowExecutionHistory({
      namespace: client.options.namespace,
      execution: { workflowId, runId },
      ...(nextPageToken ? { nextPageToken } : {}),
    });
    events.push(...(page.history?.events ?? []));
    nextPageToken = page.nextPageToken?.length ? page.nextPageToken : undefined;
    onPage?.();
  } while (nextPageToken);
  return { events };
}

/** The run's first event (who started it, with which search attributes and memo): one small read. */
export async function fetchStartEvent(client: Client, workflowId: string, runId: string): Promise<HistoryEvent> {
  const page = await client.workflowService.getWorkflowExecutionHistory({
    namespace: client.options.namespace,
    execution: { workflowId, runId },
    maximumPageSize: 1,
  });
  const first = page.history?.events?.[0];
  if (!first?.workflowExecutionStartedEventAttributes) {
    throw new Error(`history of ${workflowId} (run ${runId}) does not begin with WorkflowExecutionStarted`);
  }
  return first;
}

// The SDK's own historyToJSON/historyFromJSON load protobufjs's JSON extension from their own copy of protobufjs,
// which need not be the copy @temporalio/proto's types were built with (npm does not always dedupe them), and then
// reject those types. The extension is loaded here from the copy next to @temporalio/proto, which always matches.
interface ProtoJson {
  toJson(type: unknown, message: unknown): unknown;
  fromJson(type: unknown, json: unknown, options?: { ignoreUnknownFields?: boolean }): unknown;
}
const protoRequire = createRequire(createRequire(import.meta.url).resolve('@temporalio/proto'));
const protojson = protoRequire('protobufjs/ext/protojson') as ProtoJson;
const historyType = (patchProtobufRoot(proto) as unknown as { lookupType(name: string): unknown }).lookupType(
  'temporal.api.history.v1.History',
);

/** Temporal's JSON history format, indented by two spaces, ending in a newline. Payloads are written as they are. */
export function historyToJson(history: History): string {
  const message = proto.temporal.api.history.v1.History.fromObject(history as Record<string, unknown>);
  return `${JSON.stringify(protojson.toJson(historyType, message), null, 2)}\n`;
}

/**
 * Parses Temporal's JSON history format.
 * @throws Error when the text is not JSON or not a history.
 */
export function historyFromJson(text: string): History {
  const json = JSON.parse(text) as { events?: unknown };
  if (!json || !Array.isArray(json.events)) throw new Error('not a Temporal history: no "events" array');
  return protojson.fromJson(historyType, json, { ignoreUnknownFields: true }) as History;
}
