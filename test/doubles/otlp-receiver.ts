/**
 * TEST DOUBLE — a stand-in for an OpenTelemetry collector (or any tracing backend taking OTLP over HTTP): a server on
 * 127.0.0.1 that accepts `POST /v1/traces` with OTLP's JSON encoding, answers 200 as a collector does, and keeps every
 * span it received so a test can read the traces a worker exported. It checks nothing else of the protocol.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  readonly traceId: string;
  readonly spanId: string;
  /** '' for a root span. */
  readonly parentSpanId: string;
  readonly name: string;
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
  /** The exporting process's resource attributes (`service.name`, …). */
  readonly resource: Readonly<Record<string, string | number | boolean>>;
  readonly startNs: bigint;
  readonly endNs: bigint;
  /** OTLP's status code: 0 unset, 1 ok, 2 error. */
  readonly status: number;
  /** The status message, '' when none was sent. */
  readonly statusMessage: string;
  /** How many events (an exception's, say) the span carried. */
  readonly events: number;
}

export interface OtlpReceiver {
  /** The traces endpoint, `http://127.0.0.1:<port>/v1/traces`. */
  readonly endpoint: string;
  readonly spans: ReceivedSpan[];
  /** The raw request bodies, for checking what was never sent. */
  readonly bodies: string[];
  close(): Promise<void>;
}

interface AnyValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
  kvlistValue?: unknown;
  arrayValue?: unknown;
  bytesValue?: unknown;
}
interface KeyValue {
  key: string;
  value?: AnyValue;
}

function attributes(list: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const { key, value } of list ?? []) {
    if (!value) continue;
    out[key] =
      value.stringValue ??
      (value.intValue !== undefined ? Number(value.intValue) : undefined) ??
      value.doubleValue ??
      value.boolValue ??
      '';
  }
  return out;
}

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const spans: ReceivedSpan[] = [];
  const bodies: string[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') {
        res.writeHead(404).end();
        return;
      }
      const body = Buffer.concat(chunks).toString('utf8');
      bodies.push(body);
      try {
        const doc = JSON.parse(body) as {
          resourceSpans?: {
            resource?: { attributes?: KeyValue[] };
            scopeSpans?: {
              spans?: {
                traceId: string;
                spanId: string;
                parentSpanId?: string;
                name: string;
                attributes?: KeyValue[];
                startTimeUnixNano: string | number;
                endTimeUnixNano: string | number;
                status?: { code?: number; message?: string };
                events?: unknown[];
              }[];
            }[];
          }[];
        };
        for (const rs of doc.resourceSpans ?? []) {
          const resource = attributes(rs.resource?.attributes);
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              spans.push({
                traceId: s.traceId,
                spanId: s.spanId,
                parentSpanId: s.parentSpanId ?? '',
                name: s.name,
                attributes: attributes(s.attributes),
                resource,
                startNs: BigInt(s.startTimeUnixNano),
                endNs: BigInt(s.endTimeUnixNano),
                status: s.status?.code ?? 0,
                statusMessage: s.status?.message ?? '',
                events: s.events?.length ?? 0,
              });
            }
          }
        }
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}/v1/traces`,
    spans,
    bodies,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
