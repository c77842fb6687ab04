/**
 * Workflow interceptors the steward worker installs (workers/worker.ts): every activity and child workflow a
 * steward workflow starts gets a one-line summary, which the Temporal UI shows on its events ("applyStack on web1"),
 * and a child workflow carries its parent's `StewardTrigger`, so a fleet's children and a drift's repairs say who
 * started them. Summaries are payloads: the worker's codec encrypts them like every other payload, and the UI shows
 * them through the codec server. OpenTelemetry's interceptors trace the run (workers/tracing.ts). Deterministic: no
 * Node modules.
 */
import { TypedSearchAttributes, type SearchAttributePair } from '@temporalio/common';
import {
  workflowInfo,
  type ActivityInput,
  type Next,
  type StartChildWorkflowExecutionInput,
  type WorkflowInterceptors,
  type WorkflowOutboundCallsInterceptor,
} from '@temporalio/workflow';
import { interceptors as tracingInterceptors } from '@temporalio/interceptors-opentelemetry/lib/workflow-interceptors';
import { StewardTrigger } from '../model/search-attributes';

/** What a step or child works on, from its input: `<name> [secret|operation] on <host> [(plan)]`. */
export function stepSummary(name: string, input: unknown): string {
  const i = (typeof input === 'object' && input !== null ? input : {}) as Record<string, unknown>;
  const subject = [i.secret, i.operation].find((v): v is string => typeof v === 'string');
  const what = subject ? `${name} ${subject}` : name;
  if (typeof i.host !== 'string') return what;
  return `${what} on ${i.host}${i.mode === 'plan' ? ' (plan)' : ''}`;
}

/** `attributes` with the parent's trigger added when the child has none of its own. */
function withTrigger(
  attributes: SearchAttributePair[] | TypedSearchAttributes | undefined,
  trigger: string,
): SearchAttributePair[] | TypedSearchAttributes {
  const pair = { key: StewardTrigger, value: trigger };
  if (attributes instanceof TypedSearchAttributes) {
    return attributes.get(StewardTrigger) === undefined ? attributes.updateCopy([pair]) : attributes;
  }
  const list = attributes ?? [];
  return list.some((p) => p.key.name === StewardTrigger.name) ? list : [...list, pair];
}

class StepSummaries implements WorkflowOutboundCallsInterceptor {
  scheduleActivity(input: ActivityInput, next: Next<WorkflowOutboundCallsInterceptor, 'scheduleActivity'>) {
    if (input.options.summary) return next(input);
    return next({ ...input, options: { ...input.options, summary: stepSummary(input.activityType, input.args[0]) } });
  }

  startChildWorkflowExecution(
    input: StartChildWorkflowExecutionInput,
    next: Next<WorkflowOutboundCallsInterceptor, 'startChildWorkflowExecution'>,
  ) {
    const trigger = workflowInfo().typedSearchAttributes.get(StewardTrigger);
    const options = {
      ...input.options,
      staticSummary: input.options.staticSummary ?? stepSummary(input.workflowType, input.options.args?.[0]),
      ...(trigger ? { typedSearchAttributes: withTrigger(input.options.typedSearchAttributes, trigger) } : {}),
    };
    return next({ ...input, options });
  }
}

/**
 * Ours, and OpenTelemetry's: spans of the run and of each activity and child it starts, handed to the worker's
 * `exporter` sink (workers/tracing.ts exports them, or drops them when the worker traces nothing).
 */
export const interceptors = (): WorkflowInterceptors => {
  const otel = tracingInterceptors();
  return {
    inbound: otel.inbound ?? [],
    outbound: [new StepSummaries(), ...(otel.outbound ?? [])],
    internals: otel.internals ?? [],
  };
};
