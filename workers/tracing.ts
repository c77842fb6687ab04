/**
 * OpenTelemetry traces of the worker's runs: a span per workflow run and per activity (Temporal's interceptors) and
 * one per SSH command an activity runs (activities/host/session.ts), exported over OTLP/HTTP. A trace reads
 * `RunWorkflow:driftHost` → `StartActivity:observeDrift` → `RunActivity:observeDrift` → `ssh observe`.
 *
 * What leaves the worker is cut down to ids and names before export ({@link ScrubbingProcessor}): Temporal's workflow
 * exporter copies the whole WorkflowInfo (memo, search attributes, the last failure) into each workflow span, and
 * its interceptors put an error's message in the span's status and an exception event with the stack; those may hold
 * a host's stderr, which payloads carry encrypted. Spans keep the attributes of {@link KEPT}, the status code, no
 * events, and no status message.
 */
import { context, propagation, trace, type Context } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor, type ReadableSpan, type Span, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import type { Context as ActivityContext } from '@temporalio/activity';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  type OpenTelemetrySinks,
} from '@temporalio/interceptors-opentelemetry';
import type { InjectedSinks, WorkerOptions } from '@temporalio/worker';

/** The span attributes exported: Temporal's ids and names, and steward's SSH span attributes. */
export const KEPT: ReadonlySet<string> = new Set([
  'workflowId',
  'runId',
  'workflowType',
  'taskQueue',
  'namespace',
  'attempt',
  'run_id',
  'temporalWorkflowId',
  'temporalActivityId',
  'steward.host',
  'steward.ssh.user',
  'steward.command',
  'steward.exit_code',
]);

/** `span` with only {@link KEPT} attributes of a plain value, the status code alone, and no events. */
export function scrubbed(span: ReadableSpan): ReadableSpan {
  const attributes = Object.fromEntries(
    Object.entries(span.attributes).filter(
      ([k, v]) => KEPT.has(k) && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'),
    ),
  );
  return {
    name: span.name,
    kind: span.kind,
    spanContext: () => span.spanContext(),
    ...(span.parentSpanId ? { parentSpanId: span.parentSpanId } : {}),
    startTime: span.startTime,
    endTime: span.endTime,
    status: { code: span.status.code },
    attributes,
    links: span.links,
    events: [],
    duration: span.duration,
    ended: span.ended,
    resource: span.resource,
    instrumentationLibrary: span.instrumentationLibrary,
    droppedAttributesCount:
      span.droppedAttributesCount + Object.keys(span.attributes).length - Object.keys(attributes).length,
    droppedEventsCount: span.droppedEventsCount + span.events.length,
    droppedLinksCount: span.droppedLinksCount,
  };
}

/** Hands every ended span to `inner` {@link scrubbed}. */
export class ScrubbingProcessor implements SpanProcessor {
  constructor(private readonly inner: SpanProcessor) {}
  onStart(span: Span, parent: Context): void {
    this.inner.onStart(span, parent);
  }
  onEnd(span: ReadableSpan): void {
    this.inner.onEnd(scrubbed(span));
  }
  forceFlush(): Promise<void> {
    return this.inner.forceFlush();
  }
  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }
}

export interface Tracing {
  /** Worker options that export spans: the activity interceptor and the workflow spans' sink. */
  readonly workerOptions: Pick<WorkerOptions, 'interceptors' | 'sinks'>;
  /** Exports what is buffered, stops, and unregisters the process's tracer provider. */
  shutdown(): Promise<void>;
}

/**
 * Registers a tracer provider for the process exporting to `endpoint` (`http(s)://…/v1/traces`; headers from
 * OTEL_EXPORTER_OTLP_HEADERS as OpenTelemetry reads them), under `serviceName`.
 */
export function startTracing(
  endpoint: string,
  serviceName = process.env.OTEL_SERVICE_NAME || 'steward-worker',
): Tracing {
  const resource = new Resource({ 'service.name': serviceName });
  const processor = new ScrubbingProcessor(
    new BatchSpanProcessor(new OTLPTraceExporter({ url: endpoint }), { scheduledDelayMillis: 1000 }),
  );
  const provider = new NodeTracerProvider({ resource, spanProcessors: [processor] });
  provider.register();
  const sinks: InjectedSinks<OpenTelemetrySinks> = { exporter: makeWorkflowExporter(processor, resource) };
  return {
    workerOptions: {
      interceptors: {
        activity: [(ctx: ActivityContext) => ({ inbound: new OpenTelemetryActivityInboundInterceptor(ctx) })],
      },
      sinks,
    },
    async shutdown() {
      try {
        await provider.shutdown();
      } finally {
        trace.disable();
        context.disable();
        propagation.disable();
      }
    },
  };
}
