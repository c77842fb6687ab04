/**
 * One run as a timeline, read from its event history: the steps (activities with their attempts and durations,
 * child workflows, timers, signals), the changes they report, the retries and the failure that caused each, every
 * failure, who started the run and how it ended. Payloads are decoded with the codec when a key is at hand; without
 * one the timeline still shows everything that is not a payload.
 */
import { defaultPayloadConverter, type PayloadCodec } from '@temporalio/common';
import { isEncrypted } from '../../codec/aes-gcm';
import type { Change, ControlResult } from '../../model/report';
import { StewardHost, StewardOperation, StewardOutcome } from '../../model/search-attributes';
import {
  keyword,
  searchAttributeValues,
  type History,
  type PendingActivity,
  type RawPayload,
} from '../../common/audit/history';
import { outcomeOf } from '../../common/audit/query';
import { changesIn, describe, eventMs, failureFields, StepFold, type Failure } from './timeline-steps';

/** Who started a run. */
export interface StartedBy {
  /** `schedule`: a Temporal schedule; `workflow`: a parent workflow; `cli`/`client`: a person or program. */
  readonly kind: 'schedule' | 'workflow' | 'cli' | 'client';
  /** `schedule:<id>`, `workflow:<id>`, the CLI user, or the client's identity. */
  readonly name: string;
  /** The client identity recorded in WorkflowExecutionStarted (`pid@host` for the SDK's default). */
  readonly identity?: string;
}

export type StepKind = 'activity' | 'child' | 'timer' | 'signal' | 'update';
export type StepState = 'scheduled' | 'running' | 'completed' | 'failed' | 'timed-out' | 'canceled' | 'terminated';

export interface TimelineStep {
  readonly kind: StepKind;
  /** Activity type, child workflow type, timer id, signal or update name. */
  readonly name: string;
  /** Activity id, child workflow id or timer id. */
  readonly id?: string;
  readonly childRunId?: string;
  /** The activity's user summary, when the workflow gave one; an update's decision, who made it and why. */
  readonly summary?: string;
  readonly state: StepState;
  readonly at: string;
  /** Since the run started. */
  readonly offsetMs: number;
  /** From scheduled to done, across every attempt. */
  readonly durationMs?: number;
  /** Attempts it took (activities); more than one means it was retried. */
  readonly attempts?: number;
  /** The failure of the attempt before the last one: why it was retried. */
  readonly retriedAfter?: string;
  readonly failure?: string;
  readonly changes?: readonly Change[];
}

export interface TimelineRetry {
  readonly step: string;
  readonly id?: string;
  readonly attempts: number;
  readonly after: string;
}

export interface TimelineFailure {
  readonly at: string;
  readonly offsetMs: number;
  /** The step that failed, or `workflow` / `workflow task`. */
  readonly source: string;
  readonly message: string;
  readonly type?: string;
  readonly nonRetryable?: boolean;
}

/** What `steward audit <workflowId>` shows. */
export interface RunTimeline {
  readonly workflowId: string;
  readonly runId: string;
  readonly type: string;
  readonly status: string;
  readonly outcome: string;
  readonly host?: string;
  readonly operation?: string;
  readonly mode?: string;
  readonly startedBy: StartedBy;
  readonly startTime: string;
  readonly closeTime?: string;
  readonly durationMs?: number;
  readonly events: number;
  readonly steps: readonly TimelineStep[];
  readonly changes: readonly Change[];
  /** The controls the run's report carries (a memory check's proofs, a restore's RPO and RTO). */
  readonly controls?: readonly ControlResult[];
  readonly retries: readonly TimelineRetry[];
  readonly failures: readonly TimelineFailure[];
  readonly error?: string;
  /** Payloads that could not be decoded (no codec key, or a key missing from the ring), once per reason. */
  readonly undecoded?: readonly string[];
}

/** What the timeline knows besides the history: visibility's record of the run. */
export interface RunContext {
  readonly workflowId: string;
  readonly runId: string;
  readonly status: string;
  readonly searchAttributes: Readonly<Record<string, unknown>>;
  /** Activities the server reports pending (a running run): their current attempt and last failure. */
  readonly pending?: readonly PendingActivity[];
}

/** The search attribute the schedules set on runs they start (Temporal's own). */
export const SCHEDULED_BY_ID = 'TemporalScheduledById';
/** steward's trigger marker: `cli:<user>` or `schedule:<id>`, as a search attribute or memo field. */
export const TRIGGER_MARKER = 'StewardTrigger';

/**
 * Who started a run, from the best evidence first: steward's trigger marker, the schedule that started it, the
 * parent workflow, then the client identity recorded in the start event.
 */
export function startedByOf(evidence: {
  readonly identity?: string;
  readonly parentWorkflowId?: string;
  readonly searchAttributes: Readonly<Record<string, unknown>>;
  readonly memo?: Readonly<Record<string, unknown>>;
}): StartedBy {
  const identity = evidence.identity ? { identity: evidence.identity } : {};
  const memo = evidence.memo ?? {};
  const marker =
    keyword(evidence.searchAttributes[TRIGGER_MARKER]) ??
    [memo.trigger, memo.startedBy, memo[TRIGGER_MARKER]].find((v): v is string => typeof v === 'string');
  if (marker) {
    const [kind, ...rest] = marker.split(':');
    if (kind === 'schedule') return { kind: 'schedule', name: marker, ...identity };
    if (kind === 'cli') return { kind: 'cli', name: rest.join(':') || marker, ...identity };
    return { kind: 'client', name: marker, ...identity };
  }
  const scheduleId = keyword(evidence.searchAttributes[SCHEDULED_BY_ID]);
  if (scheduleId) return { kind: 'schedule', name: `schedule:${scheduleId}`, ...identity };
  if (evidence.parentWorkflowId)
    return { kind: 'workflow', name: `workflow:${evidence.parentWorkflowId}`, ...identity };
  return { kind: 'client', name: evidence.identity || 'unknown', ...identity };
}

/** Decodes payloads with the codec (when given) and the default converter; undecodable ones become errors. */
export type PayloadDecoder = (payloads: readonly RawPayload[] | null | undefined) => Promise<unknown[] | string>;

/** A decoder over steward's codec, or, without a key, one that reads only unencrypted payloads. */
export function payloadDecoder(codec?: PayloadCodec): PayloadDecoder {
  return async (payloads) => {
    if (!payloads?.length) return [];
    try {
      if (!codec && payloads.some((p) => isEncrypted(p as never)))
        return 'payloads are encrypted and no codec key is set';
      const plain = codec ? await codec.decode(payloads as never) : (payloads as never[]);
      return plain.map((p) => defaultPayloadConverter.fromPayload(p));
    } catch (err) {
      return err instanceof Error ? err.message : String(err);
    }
  };
}

/** Builds the timeline of one run from its full history. */
export async function buildTimeline(history: History, run: RunContext, decode: PayloadDecoder): Promise<RunTimeline> {
  const events = history.events ?? [];
  const first = events[0];
  const started = first?.workflowExecutionStartedEventAttributes;
  if (!first || !started) throw new Error(`history of ${run.workflowId} does not begin with WorkflowExecutionStarted`);
  const t0 = eventMs(first);
  const undecoded = new Set<string>();
  const values = async (payloads: readonly RawPayload[] | null | undefined): Promise<unknown[]> => {
    const r = await decode(payloads);
    if (typeof r === 'string') {
      undecoded.add(r);
      return [];
    }
    return r;
  };
  await openFailures([events, run.pending], values);
  const memo = await decodeMap(started.memo?.fields as Record<string, RawPayload> | undefined, values);
  const input = ((await values(started.input?.payloads))[0] ?? {}) as Record<string, unknown>;

  const fold = new StepFold(t0, values);
  for (const e of events) await fold.add(e);
  fold.addPending(run.pending);
  const { steps, retries, failures, closeEvent, finalFailure } = fold;
  let result = fold.result;
  if (closeEvent && finalFailure) {
    failures.push({ ...fold.at(closeEvent), source: 'workflow', ...failureFields(finalFailure) });
    result = (await values(finalFailure.applicationFailureInfo?.details?.payloads))[0];
  }
  const report = (result && typeof result === 'object' ? result : {}) as Record<string, unknown>;
  const changes =
    changesIn(report) ?? fleetChanges(report) ?? steps.flatMap((s) => (s.kind === 'activity' ? (s.changes ?? []) : []));
  const sa = run.searchAttributes;
  const startAttrs = searchAttributeValues(started.searchAttributes?.indexedFields as Record<string, RawPayload>);
  const host = keyword(sa[StewardHost.name]) ?? keyword(startAttrs[StewardHost.name]);
  const operation = keyword(sa[StewardOperation.name]) ?? keyword(startAttrs[StewardOperation.name]);
  const mode = typeof input.mode === 'string' ? input.mode : undefined;
  const closeMs = closeEvent ? eventMs(closeEvent) : undefined;
  const error = finalFailure ? describe(finalFailure) : typeof report.error === 'string' ? report.error : undefined;
  return {
    workflowId: run.workflowId,
    runId: run.runId,
    type: started.workflowType?.name ?? '',
    status: run.status,
    outcome: outcomeOf(run.status, keyword(sa[StewardOutcome.name])),
    ...(host ? { host } : {}),
    ...(operation ? { operation } : {}),
    ...(mode ? { mode } : {}),
    startedBy: startedByOf({
      ...(started.identity ? { identity: started.identity } : {}),
      ...(started.parentWorkflowExecution?.workflowId
        ? { parentWorkflowId: started.parentWorkflowExecution.workflowId }
        : {}),
      searchAttributes: { ...startAttrs, ...sa },
      memo,
    }),
    startTime: new Date(t0).toISOString(),
    ...(closeMs !== undefined ? { closeTime: new Date(closeMs).toISOString(), durationMs: closeMs - t0 } : {}),
    events: events.length,
    steps,
    changes,
    ...(Array.isArray(report.controls) ? { controls: report.controls as ControlResult[] } : {}),
    retries,
    failures,
    ...(error ? { error } : {}),
    ...(undecoded.size > 0 ? { undecoded: [...undecoded] } : {}),
  };
}

async function decodeMap(
  fields: Record<string, RawPayload> | undefined,
  values: (p: readonly RawPayload[]) => Promise<unknown[]>,
): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const [k, p] of Object.entries(fields ?? {})) {
    const [v] = await values([p]);
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** A fleet report's changes, each resource prefixed with its host. */
function fleetChanges(report: Record<string, unknown>): Change[] | undefined {
  if (!Array.isArray(report.hosts)) return undefined;
  return (report.hosts as unknown[]).flatMap((h) => {
    const host = (h as { host?: unknown }).host;
    return (changesIn(h) ?? []).map((c) => ({ ...c, resource: `${String(host)}:${c.resource}` }));
  });
}

/**
 * Puts back the message and stack trace of every failure in `value` (history events, pending activities) from its
 * encoded attributes, a payload decoded like any other; a failure that cannot be decoded keeps "Encoded failure".
 */
async function openFailures(
  value: unknown,
  values: (payloads: readonly RawPayload[]) => Promise<unknown[]>,
): Promise<void> {
  if (!value || typeof value !== 'object' || ArrayBuffer.isView(value)) return;
  const f = value as Failure;
  if (f.encodedAttributes && typeof f.message === 'string') {
    const [attributes] = await values([f.encodedAttributes as RawPayload]);
    const { message, stack_trace } = (attributes ?? {}) as { message?: unknown; stack_trace?: unknown };
    if (typeof message === 'string') f.message = message;
    if (typeof stack_trace === 'string') f.stackTrace = stack_trace;
  }
  for (const v of Object.values(value)) await openFailures(v, values);
}
