/**
 * What the worker's traces carry (workers/tracing.ts): Temporal's exporter copies the whole WorkflowInfo into a
 * workflow span and its interceptors record an error's message and stack; only ids, names and steward's SSH
 * attributes are exported, with the status code alone and no events.
 */
import { SpanStatusCode } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { describe, expect, it } from 'vitest';
import { ScrubbingProcessor } from '../../workers/tracing';

describe('exported spans', () => {
  it('keep ids, names and steward.* SSH attributes; drop info, error messages and exception events', async () => {
    const memory = new InMemorySpanExporter();
    const provider = new BasicTracerProvider({
      spanProcessors: [new ScrubbingProcessor(new SimpleSpanProcessor(memory))],
    });
    const span = provider.getTracer('test').startSpan('RunActivity:applyStack', {
      attributes: {
        workflowId: 'deploy/web1/2026-12-07T10:00:00Z',
        temporalActivityId: '7',
        'steward.host': 'web1',
        'steward.exit_code': 1,
        // What WorkflowInfo and a careless caller would add.
        memo: 'summary of the spec',
        searchAttributes: 'StewardTrigger=cli:alice@laptop',
        lastFailure: 'stderr: token=abc123',
      },
    });
    span.recordException(new Error('exit 1: stderr: password=hunter2'));
    span.setStatus({ code: SpanStatusCode.ERROR, message: 'exit 1: stderr: password=hunter2' });
    span.end();
    await provider.forceFlush();

    const [out] = memory.getFinishedSpans();
    expect(out!.name).toBe('RunActivity:applyStack');
    expect(out!.attributes).toEqual({
      workflowId: 'deploy/web1/2026-12-07T10:00:00Z',
      temporalActivityId: '7',
      'steward.host': 'web1',
      'steward.exit_code': 1,
    });
    expect(out!.status).toEqual({ code: SpanStatusCode.ERROR });
    expect(out!.events).toEqual([]);
    expect(out!.droppedAttributesCount).toBe(3);
    expect(out!.droppedEventsCount).toBe(1);
    expect(out!.spanContext().traceId).toBe(span.spanContext().traceId);
    expect(JSON.stringify(out!.attributes)).not.toMatch(/hunter2|abc123|alice/);
    await provider.shutdown();
  });
});
