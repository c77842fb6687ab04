/**
 * TEST DOUBLE — a stand-in for a production Temporal frontend (a self-hosted cluster with mutual TLS, or Temporal
 * Cloud's endpoint with API keys) in front of the run's dev server, which speaks only plaintext gRPC. An HTTP/2
 * server in the test's process that:
 *   - accepts TLS only, with the server certificate given; with `clientCa`, only clients presenting a certificate that
 *     CA signed (the handshake fails otherwise);
 *   - with `apiKey`, answers every call without `authorization: Bearer <key>` with gRPC status 16 (UNAUTHENTICATED),
 *     as Temporal Cloud does, and strips the header before forwarding;
 *   - forwards every other call, headers, body and trailers, to the dev server in plaintext, one upstream HTTP/2
 *     session per client session.
 * It counts the calls it forwarded and the ones it refused, so a test can show that traffic went through it.
 */
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';

export interface TemporalFront {
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  readonly counts: { forwarded: number; refusedApiKey: number; refusedHandshake: number };
  /** Calls forwarded, by gRPC method (`PollActivityTaskQueue`, …): only a worker polls. */
  readonly methods: Map<string, number>;
  close(): Promise<void>;
}

export async function startTemporalFront(o: {
  /** The dev server, `host:port`. */
  backend: string;
  key: Buffer;
  cert: Buffer;
  clientCa?: Buffer;
  apiKey?: string;
}): Promise<TemporalFront> {
  const counts = { forwarded: 0, refusedApiKey: 0, refusedHandshake: 0 };
  const methods = new Map<string, number>();
  const server = http2.createSecureServer({
    key: o.key,
    cert: o.cert,
    ALPNProtocols: ['h2'],
    ...(o.clientCa ? { ca: o.clientCa, requestCert: true, rejectUnauthorized: true } : {}),
  });
  server.on('tlsClientError', () => counts.refusedHandshake++);
  const upstreams = new Map<http2.ServerHttp2Session, http2.ClientHttp2Session>();
  server.on('session', (session) => {
    const upstream = http2.connect(`http://${o.backend}`);
    upstream.on('error', () => session.destroy());
    // The server went away (GOAWAY, a restart): so does this session, and the client connects again.
    upstream.on('close', () => session.close());
    // A GOAWAY takes no new streams on the upstream, though it stays open for the calls in flight: the client is told
    // to connect again at once, and its new calls go over a new upstream session.
    upstream.on('goaway', () => {
      if (!session.closed) session.close();
    });
    upstreams.set(session, upstream);
    session.on('close', () => {
      upstream.close();
      upstreams.delete(session);
    });
  });
  server.on('stream', (stream, headers) => {
    if (o.apiKey !== undefined && headers.authorization !== `Bearer ${o.apiKey}`) {
      counts.refusedApiKey++;
      stream.respond(
        {
          ':status': 200,
          'content-type': 'application/grpc',
          'grpc-status': '16',
          'grpc-message': 'Request unauthorized: invalid API key',
        },
        { endStream: true },
      );
      return;
    }
    const upstream = upstreams.get(stream.session as http2.ServerHttp2Session);
    if (!upstream || upstream.destroyed || upstream.closed) return stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    counts.forwarded++;
    const method = String(headers[':path']).split('/').pop() ?? '';
    methods.set(method, (methods.get(method) ?? 0) + 1);
    const forwarded: http2.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(headers)) {
      if (k === 'authorization' || (k.startsWith(':') && k !== ':method' && k !== ':path')) continue;
      forwarded[k] = v;
    }
    let call: http2.ClientHttp2Stream;
    try {
      call = upstream.request(forwarded);
    } catch {
      // Went away between the check and the request: the client retries a refused stream elsewhere.
      return stream.close(http2.constants.NGHTTP2_REFUSED_STREAM);
    }
    let trailers: http2.OutgoingHttpHeaders = {};
    call.on('response', (h) => {
      const reply: http2.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(h)) if (!k.startsWith(':') || k === ':status') reply[k] = v;
      if ('grpc-status' in h) {
        // Trailers-only: the call ended in its headers.
        stream.unpipe(call);
        stream.respond(reply, { endStream: true });
        call.close();
        return;
      }
      stream.respond(reply, { waitForTrailers: true });
      call.pipe(stream);
    });
    call.on('trailers', (t) => {
      trailers = Object.fromEntries(Object.entries(t).filter(([k]) => !k.startsWith(':'))) as http2.OutgoingHttpHeaders;
    });
    stream.on('wantTrailers', () => stream.sendTrailers(trailers));
    stream.pipe(call);
    const end = () => {
      if (!call.closed) call.close(http2.constants.NGHTTP2_CANCEL);
      if (!stream.closed) stream.close(http2.constants.NGHTTP2_CANCEL);
    };
    call.on('error', end);
    stream.on('error', end);
    stream.on('close', () => {
      if (!call.closed) call.close(http2.constants.NGHTTP2_CANCEL);
    });
    // The server reset or ended the call without a response end (a cancel, a restart): the client's call ends alike.
    call.on('close', () => {
      if (!stream.closed && !stream.headersSent) stream.close(call.rstCode || http2.constants.NGHTTP2_CANCEL);
      else if (!stream.closed && call.rstCode) stream.close(call.rstCode);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    address: `127.0.0.1:${port}`,
    counts,
    methods,
    close: () =>
      new Promise<void>((resolve) => {
        for (const [session, upstream] of upstreams) {
          session.destroy();
          upstream.destroy();
        }
        server.close(() => resolve());
      }),
  };
}
