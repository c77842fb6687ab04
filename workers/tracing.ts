/**
 * OpenTelemetry traces of the worker's runs: a span per workflow run and per activity (Temporal's interceptors) and
 * one per SSH command an activity runs (activities/host/session.ts), exported over OTLP/HTTP. A trace reads
 * `RunWorkflow:driftHost` → `StartActivity:observeDrift` → `RunActivity:observeDrift` → `ssh observe`. Spans carry
 * names steward chooses (workflow and activity types, host names, command labels), never a command's text, input or
 * output. Off unless an endpoint is configured; the workflow side's spans then go nowhere.
 */
import type { Context as ActivityContext } from '@temporalio/activity';
import type { InjectedSinks, WorkerOptions } from '@temporalio/worker';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  type OpenTelemetrySinks,
} from '@temporalio/interceptors-opentelemetry';

export interface Tracing {
  /** Worker options that export spans: the activity interceptor and the workflow spans' sink. */
  readonly workerOptions: Pick<WorkerOptions, 'interceptors' | 'sinks'>;
  /** Exports what is buffered and stops. */
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
  const processor = new BatchSpanProcessor(new OTLPTraceExporter({ url: endpoint }), { scheduledDelayMillis: 1000 });
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
    shutdown: () => provider.shutdown(),
  };
}
