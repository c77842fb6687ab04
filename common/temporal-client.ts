/** A client connection to the resolved Temporal target, shared by the CLI and the worker. */
import { connect as tlsConnect } from 'node:tls';
import { Connection } from '@temporalio/client';
import { connectionOptions, explainConnectError, type TemporalTarget } from './temporal-connection';

/**
 * A connection to `target` (TLS, client certificate and API key as configured); a failure says what to fix
 * ({@link diagnoseConnectError}).
 */
export async function connectTemporal(target: TemporalTarget, connectTimeoutMs = 5000): Promise<Connection> {
  try {
    return await Connection.connect({ ...connectionOptions(target), connectTimeout: connectTimeoutMs });
  } catch (err) {
    throw await diagnoseConnectError(err, target);
  }
}

/**
 * A failed connection explained ({@link explainConnectError}). The client library reports a failed TLS handshake
 * only as a missed deadline, and the worker's core, under load, as a cancelled connection that was not ready: when
 * the error names no cause, one handshake is made directly with the same settings, and its error is explained.
 */
export async function diagnoseConnectError(err: unknown, target: TemporalTarget): Promise<Error> {
  const explained = explainConnectError(err, target);
  if (explained !== err) return explained;
  const handshake = await tlsProbe(target);
  if (handshake) {
    const probed = new Error(handshake, { cause: err });
    const why = explainConnectError(probed, target);
    if (why !== probed) return why;
  }
  return explained;
}

/**
 * One TLS handshake with `target`'s settings, and a moment after it for the server's verdict on the client
 * certificate (TLS 1.3 sends it after the handshake): the error, or undefined when it went through. Without TLS
 * configured, whether the server speaks TLS at all (a plaintext client gets no answer from such a server).
 */
export function tlsProbe(target: TemporalTarget, timeoutMs = 3000): Promise<string | undefined> {
  const i = target.address.lastIndexOf(':');
  const host = target.address.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(target.address.slice(i + 1));
  const tls = target.tls;
  const servername = tls?.serverNameOverride ?? (/^[\d.:]+$/.test(host) ? undefined : host);
  return new Promise((resolve) => {
    const socket = tlsConnect({
      host,
      port,
      ALPNProtocols: ['h2'],
      ...(servername ? { servername } : {}),
      ...(tls?.serverRootCACertificate ? { ca: Buffer.from(tls.serverRootCACertificate) } : {}),
      ...(tls?.clientCertPair
        ? { cert: Buffer.from(tls.clientCertPair.crt), key: Buffer.from(tls.clientCertPair.key) }
        : {}),
      rejectUnauthorized: tls !== undefined,
    });
    const done = (why: string | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(why);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.on('error', (e) => done(tls ? e.message : undefined));
    socket.on('secureConnect', () => {
      if (!tls) return done('the server speaks TLS (a TLS handshake succeeded): plaintext gets no answer');
      setTimeout(() => done(undefined), 300);
    });
  });
}
