/**
 * One run as a timeline, read from its event history: the steps (activities with their attempts and durations,
 * child workflows, timers, signals), the changes they report, the retries and the failure that caused each, every
 * failure, who started the run and how it ended. Payloads are decoded with the codec when a key is at hand; without
 * one the timeline still shows everything that is not a payload.
 */
import { defaultPayloadConverter, type PayloadCodec } from '@temporalio/common';
import type proto from '@temporalio/proto';
import { isEncrypted } from '../../codec/aes-gcm';
import { attemptOf } from '../../model/attempts';
import type { Change } from '../../model/report';
import { StewardHost, StewardOperation, StewardOutcome } from '../../model/search-attributes';
import {
  int64,
  keyword,
  searchAttributeValues,
  timestampMs,
  type History,
  type HistoryEvent,
  type PendingActivity,
  type RawPayload,
} from '../../common/audit/history';
import { outcomeOf } from '../../common/audit/query';

type Failure = proto.temporal.api.failure.v1.IFailure;

/** Who started a run. */
export interface StartedBy {
  /** `schedule`: a Temporal schedule; `workflow`: a parent workflow; `cli`/`client`: a person or program. */
  readonly kind: 'schedule' | 'workflow' | 'cli' | 'client';
  /** `schedule:<id>`, `workflow:<id>`, the CLI user, or the client's identity. */
  readonly name: string;
  /** The client identity recorded in WorkflowExecutionStarted (`pid@host` for the SDK's default). */
  readonly identity?: string;
}

export type StepKind = 'activity' | 'child' | 'timer' | 'signal';
export type StepState = 'scheduled' | 'running' | 'completed' | 'failed' | 'timed-out' | 'canceled' | 'terminated';

export interface TimelineStep {
  readonly kind: StepKind;
  /** Activity type, child workflow type, timer id or signal name. */
  readonly name: string;
  /** Activity id, child workflow id or timer id. */
  readonly id?: string;
  readonly childRunId?: string;
  /** The activity's user summary, when the workflow gave one. */
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
  const failureText = (f: Failure | null | undefined) => describe(f);
  await openFailures([events, run.pending], values);

  const steps: TimelineStep[] = [];
  const byScheduled = new Map<string, number>();
  const byInitiated = new Map<string, number>();
  const byTimer = new Map<string, number>();
  const failures: TimelineFailure[] = [];
  const retries: TimelineRetry[] = [];
  /** Step index → its entry in `retries`. */
  const retryOf = new Map<number, number>();
  const at = (e: HistoryEvent) => ({ at: new Date(eventMs(e)).toISOString(), offsetMs: eventMs(e) - t0 });
  const patch = (index: number | undefined, p: Partial<TimelineStep>) => {
    if (index === undefined) return;
    steps[index] = { ...(steps[index] as TimelineStep), ...p };
  };
  const closeStep = (index: number | undefined, e: HistoryEvent, state: StepState, failure?: Failure | null) => {
    if (index === undefined) return;
    const step = steps[index] as TimelineStep;
    const message = failure ? failureText(failure) : undefined;
    patch(index, { state, durationMs: eventMs(e) - t0 - step.offsetMs, ...(message ? { failure: message } : {}) });
    if (failure)
      failures.push({ ...at(e), source: step.id ? `${step.name} (${step.id})` : step.name, ...failureFields(failure) });
  };

  let result: unknown;
  let finalFailure: Failure | null | undefined;
  let closeEvent: HistoryEvent | undefined;
  const memo = await decodeMap(started.memo?.fields as Record<string, RawPayload> | undefined, values);
  const input = ((await values(started.input?.payloads))[0] ?? {}) as Record<string, unknown>;

  for (const e of events) {
    const id = String(int64(e.eventId as never));
    const a = e.activityTaskScheduledEventAttributes;
    if (a) {
      const summary = (await values(e.userMetadata?.summary ? [e.userMetadata.summary] : []))[0];
      const name = a.activityType?.name ?? '';
      // A later attempt of a step the workflow retries: the same step again, with its attempt count and why.
      const attempt = attemptOf(typeof summary === 'string' ? summary : undefined);
      let earlier = -1;
      if (attempt !== undefined)
        for (let i = steps.length - 1; i >= 0 && earlier < 0; i--) if (steps[i]?.kind === 'activity') earlier = i;
      const prev = steps[earlier];
      if (attempt !== undefined && prev && prev.name === name && prev.state !== 'completed') {
        byScheduled.set(id, earlier);
        const after = prev.failure ?? 'unknown';
        patch(earlier, { state: 'scheduled', attempts: attempt, retriedAfter: after, failure: undefined });
        const retry = { step: name, ...(prev.id ? { id: prev.id } : {}), attempts: attempt, after };
        const known = retryOf.get(earlier);
        if (known === undefined) {
          retryOf.set(earlier, retries.length);
          retries.push(retry);
        } else retries[known] = retry;
        continue;
      }
      byScheduled.set(id, steps.length);
      steps.push({
        kind: 'activity',
        name,
        ...(a.activityId ? { id: a.activityId } : {}),
        ...(typeof summary === 'string' ? { summary } : {}),
        state: 'scheduled',
        ...at(e),
      });
      continue;
    }
    const s = e.activityTaskStartedEventAttributes;
    if (s) {
      const index = byScheduled.get(String(int64(s.scheduledEventId as never)));
      const step = index === undefined ? undefined : steps[index];
      // The server's attempt (its own retries), or the workflow's count when it retried the step itself.
      const attempts = Math.max(s.attempt ?? 1, step?.attempts ?? 1);
      const retriedAfter = (s.attempt ?? 1) > 1 && s.lastFailure ? failureText(s.lastFailure) : undefined;
      patch(index, { state: 'running', attempts, ...(retriedAfter ? { retriedAfter } : {}) });
      if (step && (s.attempt ?? 1) > 1) {
        retries.push({
          step: step.name,
          ...(step.id ? { id: step.id } : {}),
          attempts,
          after: retriedAfter ?? 'unknown',
        });
      }
      continue;
    }
    if (e.activityTaskCompletedEventAttributes) {
      const c = e.activityTaskCompletedEventAttributes;
      const index = byScheduled.get(String(int64(c.scheduledEventId as never)));
      closeStep(index, e, 'completed');
      const changes = changesIn((await values(c.result?.payloads))[0]);
      if (changes) patch(index, { changes });
      continue;
    }
    if (e.activityTaskFailedEventAttributes) {
      const f = e.activityTaskFailedEventAttributes;
      closeStep(byScheduled.get(String(int64(f.scheduledEventId as never))), e, 'failed', f.failure);
      continue;
    }
    if (e.activityTaskTimedOutEventAttributes) {
      const f = e.activityTaskTimedOutEventAttributes;
      closeStep(byScheduled.get(String(int64(f.scheduledEventId as never))), e, 'timed-out', f.failure);
      continue;
    }
    if (e.activityTaskCanceledEventAttributes) {
      closeStep(
        byScheduled.get(String(int64(e.activityTaskCanceledEventAttributes.scheduledEventId as never))),
        e,
        'canceled',
      );
      continue;
    }
    const ci = e.startChildWorkflowExecutionInitiatedEventAttributes;
    if (ci) {
      byInitiated.set(id, steps.length);
      steps.push({
        kind: 'child',
        name: ci.workflowType?.name ?? '',
        ...(ci.workflowId ? { id: ci.workflowId } : {}),
        state: 'scheduled',
        ...at(e),
      });
      continue;
    }
    const child = childEvent(e);
    if (child) {
      const index = byInitiated.get(String(int64(child.initiatedEventId as never)));
      if (child.state === 'running') {
        patch(index, { state: 'running', ...(child.runId ? { childRunId: child.runId } : {}) });
      } else {
        closeStep(index, e, child.state, child.failure);
        if (child.state === 'completed') {
          const changes = changesIn((await values(child.result)).at(0));
          if (changes) patch(index, { changes });
        }
      }
      continue;
    }
    if (e.timerStartedEventAttributes) {
      const timerId = e.timerStartedEventAttributes.timerId ?? id;
      byTimer.set(id, steps.length);
      steps.push({ kind: 'timer', name: `timer ${timerId}`, id: timerId, state: 'running', ...at(e) });
      continue;
    }
    if (e.timerFiredEventAttributes) {
      closeStep(byTimer.get(String(int64(e.timerFiredEventAttributes.startedEventId as never))), e, 'completed');
      continue;
    }
    if (e.timerCanceledEventAttributes) {
      closeStep(byTimer.get(String(int64(e.timerCanceledEventAttributes.startedEventId as never))), e, 'canceled');
      continue;
    }
    if (e.workflowExecutionSignaledEventAttributes) {
      const sig = e.workflowExecutionSignaledEventAttributes;
      steps.push({ kind: 'signal', name: sig.signalName ?? '', state: 'completed', ...at(e) });
      continue;
    }
    if (e.workflowTaskFailedEventAttributes?.failure) {
      failures.push({
        ...at(e),
        source: 'workflow task',
        ...failureFields(e.workflowTaskFailedEventAttributes.failure),
      });
      continue;
    }
    if (e.workflowExecutionCompletedEventAttributes) {
      result = (await values(e.workflowExecutionCompletedEventAttributes.result?.payloads))[0];
      closeEvent = e;
    } else if (e.workflowExecutionFailedEventAttributes) {
      finalFailure = e.workflowExecutionFailedEventAttributes.failure;
      closeEvent = e;
    } else if (e.workflowExecutionTimedOutEventAttributes || e.workflowExecutionContinuedAsNewEventAttributes) {
      closeEvent = e;
    } else if (e.workflowExecutionCanceledEventAttributes) {
      closeEvent = e;
    } else if (e.workflowExecutionTerminatedEventAttributes) {
      const t = e.workflowExecutionTerminatedEventAttributes;
      finalFailure = {
        message: `terminated${t.identity ? ` by ${t.identity}` : ''}${t.reason ? `: ${t.reason}` : ''}`,
      };
      closeEvent = e;
    }
  }

  for (const p of run.pending ?? []) {
    const index = steps.findIndex(
      (st) => st.kind === 'activity' && st.id === p.activityId && st.durationMs === undefined,
    );
    const step = steps[index];
    if (!step || p.attempt <= 1) continue;
    const after = p.lastFailure ? failureText(p.lastFailure) : 'unknown';
    patch(index, { attempts: p.attempt, retriedAfter: after });
    retries.push({ step: step.name, id: p.activityId, attempts: p.attempt, after });
  }

  if (closeEvent && finalFailure) {
    failures.push({ ...at(closeEvent), source: 'workflow', ...failureFields(finalFailure) });
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
    retries,
    failures,
    ...(error ? { error } : {}),
    ...(undecoded.size > 0 ? { undecoded: [...undecoded] } : {}),
  };
}

function eventMs(e: HistoryEvent): number {
  return timestampMs(e.eventTime) ?? 0;
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

/** The child workflow events after its initiation, in one shape. */
function childEvent(
  e: HistoryEvent,
):
  | { initiatedEventId: unknown; state: StepState; runId?: string; result?: RawPayload[]; failure?: Failure | null }
  | undefined {
  if (e.childWorkflowExecutionStartedEventAttributes) {
    const c = e.childWorkflowExecutionStartedEventAttributes;
    return { initiatedEventId: c.initiatedEventId, state: 'running', runId: c.workflowExecution?.runId ?? '' };
  }
  if (e.childWorkflowExecutionCompletedEventAttributes) {
    const c = e.childWorkflowExecutionCompletedEventAttributes;
    return {
      initiatedEventId: c.initiatedEventId,
      state: 'completed',
      result: (c.result?.payloads ?? []) as RawPayload[],
    };
  }
  if (e.childWorkflowExecutionFailedEventAttributes) {
    const c = e.childWorkflowExecutionFailedEventAttributes;
    return { initiatedEventId: c.initiatedEventId, state: 'failed', failure: c.failure };
  }
  if (e.childWorkflowExecutionTimedOutEventAttributes) {
    const c = e.childWorkflowExecutionTimedOutEventAttributes;
    return {
      initiatedEventId: c.initiatedEventId,
      state: 'timed-out',
      failure: { message: 'child workflow timed out' },
    };
  }
  if (e.childWorkflowExecutionCanceledEventAttributes) {
    return { initiatedEventId: e.childWorkflowExecutionCanceledEventAttributes.initiatedEventId, state: 'canceled' };
  }
  if (e.childWorkflowExecutionTerminatedEventAttributes) {
    const c = e.childWorkflowExecutionTerminatedEventAttributes;
    return {
      initiatedEventId: c.initiatedEventId,
      state: 'terminated',
      failure: { message: 'child workflow terminated' },
    };
  }
  if (e.startChildWorkflowExecutionFailedEventAttributes) {
    const c = e.startChildWorkflowExecutionFailedEventAttributes;
    return {
      initiatedEventId: c.initiatedEventId,
      state: 'failed',
      failure: { message: `could not start: ${String(c.cause)}` },
    };
  }
  return undefined;
}

/** The `changes` of a step result or host report, when it has well-formed ones. */
function changesIn(value: unknown): Change[] | undefined {
  const changes = (value as { changes?: unknown } | undefined)?.changes;
  if (!Array.isArray(changes)) return undefined;
  return changes.filter(
    (c): c is Change => typeof c === 'object' && c !== null && typeof (c as Change).resource === 'string',
  );
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

function failureFields(f: Failure): Pick<TimelineFailure, 'message' | 'type' | 'nonRetryable'> {
  const root = rootCause(f);
  const info = root.applicationFailureInfo;
  return {
    message: describe(f),
    ...(info?.type ? { type: info.type } : {}),
    ...(info?.nonRetryable ? { nonRetryable: true } : {}),
  };
}

function rootCause(f: Failure): Failure {
  let e = f;
  while (e.cause && (e.activityFailureInfo || e.childWorkflowExecutionFailureInfo)) e = e.cause;
  return e;
}

/** The failure in one line: its own message, then the causes below it that add something. */
function describe(f: Failure | null | undefined): string {
  if (!f) return 'unknown failure';
  const parts: string[] = [];
  for (let e: Failure | null | undefined = f; e; e = e.cause) {
    const message = e.message ?? '';
    const type = e.applicationFailureInfo?.type;
    if (message && !parts.some((p) => p.includes(message))) parts.push(type ? `${message} [${type}]` : message);
    if (parts.length >= 3) break;
  }
  return parts.join(': ') || 'unknown failure';
}
