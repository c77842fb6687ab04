/**
 * The steps of a run folded from its history, event by event: activities with their attempts, durations, changes and
 * the failure behind each retry; child workflows; timers; signals; every failure; and how the run closed.
 */
import type proto from '@temporalio/proto';
import { attemptOf } from '../../model/attempts';
import type { Change } from '../../model/report';
import {
  int64,
  timestampMs,
  type HistoryEvent,
  type PendingActivity,
  type RawPayload,
} from '../../common/audit/history';
import type { StepState, TimelineFailure, TimelineRetry, TimelineStep } from './timeline';

export type Failure = proto.temporal.api.failure.v1.IFailure;

/** Decoded values of payloads; what cannot be decoded is noted by the caller and comes back empty. */
export type Values = (payloads: readonly RawPayload[] | null | undefined) => Promise<unknown[]>;

export class StepFold {
  readonly steps: TimelineStep[] = [];
  readonly failures: TimelineFailure[] = [];
  readonly retries: TimelineRetry[] = [];
  /** The run's result (completed), or the failure it closed with, and the closing event. */
  result: unknown;
  finalFailure: Failure | null | undefined;
  closeEvent: HistoryEvent | undefined;
  private readonly byScheduled = new Map<string, number>();
  private readonly byInitiated = new Map<string, number>();
  private readonly byTimer = new Map<string, number>();
  /** Step index → its entry in `retries`. */
  private readonly retryOf = new Map<number, number>();

  constructor(
    private readonly t0: number,
    private readonly values: Values,
  ) {}

  /** Folds one event in; events the timeline does not show change nothing. */
  async add(e: HistoryEvent): Promise<void> {
    const id = String(int64(e.eventId as never));
    if (e.activityTaskScheduledEventAttributes) return this.activityScheduled(e, id);
    if (e.activityTaskStartedEventAttributes) return this.activityStarted(e);
    if (await this.activityClosed(e)) return;
    if (e.startChildWorkflowExecutionInitiatedEventAttributes) {
      const ci = e.startChildWorkflowExecutionInitiatedEventAttributes;
      this.byInitiated.set(id, this.steps.length);
      this.steps.push({
        kind: 'child',
        name: ci.workflowType?.name ?? '',
        ...(ci.workflowId ? { id: ci.workflowId } : {}),
        state: 'scheduled',
        ...this.at(e),
      });
      return;
    }
    const child = childEvent(e);
    if (child) return this.childChanged(e, child);
    if (this.timer(e, id)) return;
    if (e.workflowExecutionUpdateAcceptedEventAttributes) {
      // A decision delivered to the run (an approval or rejection, a rollout resumed or aborted): who, what, why.
      const req = e.workflowExecutionUpdateAcceptedEventAttributes.acceptedRequest;
      const [arg] = await this.values(req?.input?.args?.payloads);
      const identity = req?.meta?.identity;
      const summary = [describeDecision(arg), identity ? `client ${identity}` : ''].filter(Boolean).join(' · ');
      this.steps.push({
        kind: 'update',
        name: req?.input?.name ?? '',
        state: 'completed',
        ...(summary ? { summary } : {}),
        ...this.at(e),
      });
      return;
    }
    if (e.workflowExecutionSignaledEventAttributes) {
      const sig = e.workflowExecutionSignaledEventAttributes;
      this.steps.push({ kind: 'signal', name: sig.signalName ?? '', state: 'completed', ...this.at(e) });
      return;
    }
    if (e.workflowTaskFailedEventAttributes?.failure) {
      this.failures.push({
        ...this.at(e),
        source: 'workflow task',
        ...failureFields(e.workflowTaskFailedEventAttributes.failure),
      });
      return;
    }
    await this.workflowClosed(e);
  }

  /** Attempts the server is still retrying (from the run's description): their count and the failure behind them. */
  addPending(pending: readonly PendingActivity[] | undefined): void {
    for (const p of pending ?? []) {
      const index = this.steps.findIndex(
        (st) => st.kind === 'activity' && st.id === p.activityId && st.durationMs === undefined,
      );
      const step = this.steps[index];
      if (!step || p.attempt <= 1) continue;
      const after = p.lastFailure ? describe(p.lastFailure) : 'unknown';
      this.patch(index, { attempts: p.attempt, retriedAfter: after });
      this.retries.push({ step: step.name, id: p.activityId, attempts: p.attempt, after });
    }
  }

  at(e: HistoryEvent): { at: string; offsetMs: number } {
    return { at: new Date(eventMs(e)).toISOString(), offsetMs: eventMs(e) - this.t0 };
  }

  private patch(index: number | undefined, p: Partial<TimelineStep>): void {
    if (index === undefined) return;
    this.steps[index] = { ...(this.steps[index] as TimelineStep), ...p };
  }

  private closeStep(index: number | undefined, e: HistoryEvent, state: StepState, failure?: Failure | null): void {
    if (index === undefined) return;
    const step = this.steps[index] as TimelineStep;
    const message = failure ? describe(failure) : undefined;
    this.patch(index, {
      state,
      durationMs: eventMs(e) - this.t0 - step.offsetMs,
      ...(message ? { failure: message } : {}),
    });
    if (failure)
      this.failures.push({
        ...this.at(e),
        source: step.id ? `${step.name} (${step.id})` : step.name,
        ...failureFields(failure),
      });
  }

  /** A new step, or a later attempt of a step the workflow retries: the same step again, with its count and why. */
  private async activityScheduled(e: HistoryEvent, id: string): Promise<void> {
    const a = e.activityTaskScheduledEventAttributes!;
    const summary = (await this.values(e.userMetadata?.summary ? [e.userMetadata.summary] : []))[0];
    const name = a.activityType?.name ?? '';
    const attempt = attemptOf(typeof summary === 'string' ? summary : undefined);
    let earlier = -1;
    if (attempt !== undefined)
      for (let i = this.steps.length - 1; i >= 0 && earlier < 0; i--)
        if (this.steps[i]?.kind === 'activity') earlier = i;
    const prev = this.steps[earlier];
    if (attempt !== undefined && prev && prev.name === name && prev.state !== 'completed') {
      this.byScheduled.set(id, earlier);
      const after = prev.failure ?? 'unknown';
      this.patch(earlier, { state: 'scheduled', attempts: attempt, retriedAfter: after, failure: undefined });
      const retry = { step: name, ...(prev.id ? { id: prev.id } : {}), attempts: attempt, after };
      const known = this.retryOf.get(earlier);
      if (known === undefined) {
        this.retryOf.set(earlier, this.retries.length);
        this.retries.push(retry);
      } else this.retries[known] = retry;
      return;
    }
    this.byScheduled.set(id, this.steps.length);
    this.steps.push({
      kind: 'activity',
      name,
      ...(a.activityId ? { id: a.activityId } : {}),
      ...(typeof summary === 'string' ? { summary } : {}),
      state: 'scheduled',
      ...this.at(e),
    });
  }

  private activityStarted(e: HistoryEvent): void {
    const s = e.activityTaskStartedEventAttributes!;
    const index = this.byScheduled.get(String(int64(s.scheduledEventId as never)));
    const step = index === undefined ? undefined : this.steps[index];
    // The server's attempt (its own retries), or the workflow's count when it retried the step itself.
    const attempts = Math.max(s.attempt ?? 1, step?.attempts ?? 1);
    const retriedAfter = (s.attempt ?? 1) > 1 && s.lastFailure ? describe(s.lastFailure) : undefined;
    this.patch(index, { state: 'running', attempts, ...(retriedAfter ? { retriedAfter } : {}) });
    if (step && (s.attempt ?? 1) > 1) {
      this.retries.push({
        step: step.name,
        ...(step.id ? { id: step.id } : {}),
        attempts,
        after: retriedAfter ?? 'unknown',
      });
    }
  }

  /** An activity's end: completed (with the changes it reports), failed, timed out or canceled. */
  private async activityClosed(e: HistoryEvent): Promise<boolean> {
    const step = (scheduledEventId: unknown) => this.byScheduled.get(String(int64(scheduledEventId as never)));
    if (e.activityTaskCompletedEventAttributes) {
      const c = e.activityTaskCompletedEventAttributes;
      const index = step(c.scheduledEventId);
      this.closeStep(index, e, 'completed');
      const changes = changesIn((await this.values(c.result?.payloads))[0]);
      if (changes) this.patch(index, { changes });
    } else if (e.activityTaskFailedEventAttributes) {
      const f = e.activityTaskFailedEventAttributes;
      this.closeStep(step(f.scheduledEventId), e, 'failed', f.failure);
    } else if (e.activityTaskTimedOutEventAttributes) {
      const f = e.activityTaskTimedOutEventAttributes;
      this.closeStep(step(f.scheduledEventId), e, 'timed-out', f.failure);
    } else if (e.activityTaskCanceledEventAttributes) {
      this.closeStep(step(e.activityTaskCanceledEventAttributes.scheduledEventId), e, 'canceled');
    } else return false;
    return true;
  }

  private async childChanged(e: HistoryEvent, child: ChildEvent): Promise<void> {
    const index = this.byInitiated.get(String(int64(child.initiatedEventId as never)));
    if (child.state === 'running') {
      this.patch(index, { state: 'running', ...(child.runId ? { childRunId: child.runId } : {}) });
      return;
    }
    this.closeStep(index, e, child.state, child.failure);
    if (child.state === 'completed') {
      const changes = changesIn((await this.values(child.result)).at(0));
      if (changes) this.patch(index, { changes });
    }
  }

  private timer(e: HistoryEvent, id: string): boolean {
    if (e.timerStartedEventAttributes) {
      const timerId = e.timerStartedEventAttributes.timerId ?? id;
      this.byTimer.set(id, this.steps.length);
      this.steps.push({ kind: 'timer', name: `timer ${timerId}`, id: timerId, state: 'running', ...this.at(e) });
    } else if (e.timerFiredEventAttributes) {
      const started = String(int64(e.timerFiredEventAttributes.startedEventId as never));
      this.closeStep(this.byTimer.get(started), e, 'completed');
    } else if (e.timerCanceledEventAttributes) {
      const started = String(int64(e.timerCanceledEventAttributes.startedEventId as never));
      this.closeStep(this.byTimer.get(started), e, 'canceled');
    } else return false;
    return true;
  }

  private async workflowClosed(e: HistoryEvent): Promise<void> {
    if (e.workflowExecutionCompletedEventAttributes) {
      this.result = (await this.values(e.workflowExecutionCompletedEventAttributes.result?.payloads))[0];
      this.closeEvent = e;
    } else if (e.workflowExecutionFailedEventAttributes) {
      this.finalFailure = e.workflowExecutionFailedEventAttributes.failure;
      this.closeEvent = e;
    } else if (
      e.workflowExecutionTimedOutEventAttributes ||
      e.workflowExecutionContinuedAsNewEventAttributes ||
      e.workflowExecutionCanceledEventAttributes
    ) {
      this.closeEvent = e;
    } else if (e.workflowExecutionTerminatedEventAttributes) {
      const t = e.workflowExecutionTerminatedEventAttributes;
      this.finalFailure = {
        message: `terminated${t.identity ? ` by ${t.identity}` : ''}${t.reason ? `: ${t.reason}` : ''}`,
      };
      this.closeEvent = e;
    }
  }
}

export function eventMs(e: HistoryEvent): number {
  return timestampMs(e.eventTime) ?? 0;
}

interface ChildEvent {
  readonly initiatedEventId: unknown;
  readonly state: StepState;
  readonly runId?: string;
  readonly result?: RawPayload[];
  readonly failure?: Failure | null;
}

/** The child workflow events after its initiation, in one shape. */
function childEvent(e: HistoryEvent): ChildEvent | undefined {
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
export function changesIn(value: unknown): Change[] | undefined {
  const changes = (value as { changes?: unknown } | undefined)?.changes;
  if (!Array.isArray(changes)) return undefined;
  return changes.filter(
    (c): c is Change => typeof c === 'object' && c !== null && typeof (c as Change).resource === 'string',
  );
}

export function failureFields(f: Failure): Pick<TimelineFailure, 'message' | 'type' | 'nonRetryable'> {
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
export function describe(f: Failure | null | undefined): string {
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

/** An update's argument in one line: a decision on a plan names it, who decided and why. */
function describeDecision(arg: unknown): string {
  if (typeof arg === 'string') return arg ? `reason: ${arg}` : '';
  if (!arg || typeof arg !== 'object') return '';
  const d = arg as { decision?: unknown; plan?: unknown; by?: unknown; reason?: unknown };
  if (typeof d.decision !== 'string') return '';
  const plan = typeof d.plan === 'string' ? ` plan ${d.plan.slice(0, 12)}` : '';
  const by = typeof d.by === 'string' ? ` by ${d.by}` : '';
  const reason = typeof d.reason === 'string' && d.reason ? `: ${d.reason}` : '';
  return `${d.decision}${plan}${by}${reason}`;
}
