/** WebSocket `connect`s through the proxy with version files of the gateway token, patient while the gateway boots. */
import { stackLayout } from '../../model/render/stack';
import type { Spec } from '../../model/schema';
import { heartbeat } from '../context';
import { outsideAddress, probeGatewayAuth, type AuthProbeResult, type ProbeOutcome } from '../deploy/verify';
import type { HostSession } from '../host/session';
import { run } from '../host/shell';
import { versionPath } from './host';

/**
 * How long the WebSocket checks retry while the gateway gives no clear answer: just restarted, it may refuse every
 * `connect` with a retryable UNAVAILABLE (startup sidecars still loading) although its health check passes.
 */
const PROBE_PATIENCE_MS = 120_000;
const PROBE_RETRY_MS = 5_000;

/** Whether a `connect` outcome is the gateway's answer about the token (not "busy starting", not a network error). */
function decisive(o: ProbeOutcome | undefined): boolean {
  return o?.outcome === 'accepted' || (o?.outcome === 'refused' && o.code !== 'UNAVAILABLE');
}

/**
 * WebSocket `connect`s through the proxy with the given versions' files, retried while the gateway gives no decisive
 * answer (for up to {@link PROBE_PATIENCE_MS}).
 */
export async function probeVersions(
  session: HostSession,
  spec: Spec,
  secret: string,
  versions: Readonly<Record<string, string>>,
): Promise<AuthProbeResult> {
  const layout = stackLayout(spec);
  if (spec.proxy.tls === 'internal') {
    await session.check(`install -m 0644 ${run(layout.proxyRootCa)} ${run(`${layout.releaseDir}/proxy-ca.crt`)}`, {
      label: 'copy the proxy CA root',
    });
  }
  const address = await outsideAddress(session);
  const tokens = Object.fromEntries(
    Object.entries(versions).map(([label, id]) => [label, versionPath(spec, secret, id)]),
  );
  const deadline = Date.now() + PROBE_PATIENCE_MS;
  for (;;) {
    heartbeat();
    const result = await probeGatewayAuth(session, spec, address, { tokens });
    if (Object.keys(tokens).every((l) => decisive(result.tokens[l])) || Date.now() > deadline) return result;
    await new Promise((r) => setTimeout(r, PROBE_RETRY_MS));
  }
}
