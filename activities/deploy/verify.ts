/**
 * Verification of a deployed stack from the outside in: TLS through Caddy at the host's own outside address (checked
 * against the proxy's CA), the canvas path, the HTTP→HTTPS redirect, WebSocket handshakes at the public URL with the
 * token, a wrong token and none, the gateway port unreachable from anywhere but the host's loopback, and OpenClaw's
 * own security audit. The token is read inside a throwaway probe container from the secret file; it never leaves
 * the host.
 */
import type { ControlResult, Finding, Severity } from '../../spec/report';
import { GATEWAY_SERVICE, PROXY_SERVICE, secretDeliveries, stackLayout } from '../../spec/render/stack';
import type { Spec } from '../../spec/schema';
import { HostOutputError } from '../host/errors';
import type { HostSession } from '../host/session';
import { run, sh } from '../host/shell';
import type { ObservedContainer } from './stack';

/**
 * Runs in the probe container (Node 24: global WebSocket). Prints one JSON line: the outcome of an OpenClaw
 * `connect` with the token, with a wrong token and without one, and TCP connects to the gateway's host port and to
 * 443 at the host's outside address (the second proves the probe reaches the host at all).
 */
const PROBE_JS = String.raw`
import net from 'node:net';
import { readFileSync } from 'node:fs';
const [url, address, closedPort, openPort] = process.argv.slice(2);
const token = readFileSync('/run/secrets/token', 'utf8').trim();
function connect(auth) {
  return new Promise((resolve) => {
    const ws = new WebSocket(url);
    const done = (r) => { clearTimeout(timer); try { ws.close(); } catch {} resolve(r); };
    const timer = setTimeout(() => done({ outcome: 'timeout' }), 10000);
    ws.onerror = (e) => done({ outcome: 'error', message: String(e?.message ?? 'websocket error') });
    ws.onclose = (e) => done({ outcome: 'closed', code: e.code });
    ws.onmessage = (m) => {
      let f; try { f = JSON.parse(String(m.data)); } catch { return; }
      if (f.type === 'event' && f.event === 'connect.challenge') {
        ws.send(JSON.stringify({ type: 'req', id: 'steward-verify', method: 'connect', params: {
          minProtocol: 1, maxProtocol: 99, role: 'operator', scopes: ['operator.read'],
          client: { id: 'cli', version: 'steward', platform: 'linux', mode: 'cli' },
          ...(auth ? { auth: { token: auth } } : {}) } }));
      } else if (f.type === 'res') {
        done(f.ok ? { outcome: 'accepted' } : { outcome: 'refused', code: f.error?.details?.code ?? f.error?.code ?? 'unknown' });
      }
    };
  });
}
function tcp(port) {
  return new Promise((resolve) => {
    const s = net.connect({ host: address, port: Number(port) });
    const done = (r) => { s.destroy(); resolve(r); };
    s.setTimeout(4000, () => done('timeout'));
    s.on('connect', () => done('open'));
    s.on('error', (e) => done(e.code === 'ECONNREFUSED' ? 'refused' : String(e.code ?? 'error')));
  });
}
const wrong = 'steward-wrong-' + Math.random().toString(36).slice(2);
const [withToken, withWrong, without, closed, open] = await Promise.all([
  connect(token), connect(wrong), connect(undefined), tcp(closedPort), tcp(openPort),
]);
console.log(JSON.stringify({ withToken, withWrong, without, closed, open }));
`;

interface ProbeOutcome {
  outcome: string;
  code?: string;
  message?: string;
}

const control = (id: string, expected: string, observed: string, pass: boolean, note?: string): ControlResult => ({
  control: id,
  expected,
  observed,
  status: pass ? 'pass' : 'fail',
  ...(note ? { note } : {}),
});

/** How long the outside checks are retried before a failure counts. */
const VERIFY_WINDOW_MS = 90_000;

/** The host's address on its default route: what the outside world connects to. */
async function outsideAddress(session: HostSession): Promise<string> {
  const r = await session.check(
    `dev=$(ip -4 route show default | awk '{for(i=1;i<NF;i++) if ($i=="dev") {print $(i+1); exit}}'); ip -4 -o addr show dev "$dev" | awk '{print $4; exit}' | cut -d/ -f1`,
    { label: 'outside address' },
  );
  const ip = r.stdout.trim();
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(ip))
    throw new HostOutputError(session.target.name, `no IPv4 address on the default route (${JSON.stringify(ip)})`);
  return ip;
}

/** HTTP checks with curl on the host, resolving the domain to the host's outside address. */
async function httpControls(session: HostSession, spec: Spec, address: string): Promise<ControlResult[]> {
  const layout = stackLayout(spec);
  const { domain, canvasPath } = spec.proxy;
  const ca = `${layout.releaseDir}/proxy-ca.crt`;
  const trust = spec.proxy.tls === 'internal' ? ['--cacert', ca] : [];
  const curl = (url: string, port: number, extra: string[] = []) =>
    sh(['curl', '-sS', '--max-time', '20', '--resolve', `${domain}:${port}:${address}`, ...trust, ...extra, url]);
  const probes = {
    healthz: `${curl(`https://${domain}/healthz`, 443, ['-w', '\\n%{http_code}'])}; echo " exit=$?"`,
    canvas: `${curl(`https://${domain}${canvasPath.replace(/\/?$/, '/')}`, 443, ['-o', '/dev/null', '-w', '%{http_code}'])}; echo " exit=$?"`,
    redirect: `${curl(`http://${domain}/`, 80, ['-o', '/dev/null', '-w', '%{http_code} %{redirect_url}'])}; echo " exit=$?"`,
  };
  const r = await session.probe(probes);
  const healthz = r.healthz.out.trim();
  const healthOk = /"ok"\s*:\s*true/.test(healthz) && /\n200 exit=0$/.test(healthz);
  const canvas = r.canvas.out.trim();
  const redirect = r.redirect.out.trim();
  const curlError = (s: string) =>
    /exit=(?!0\b)\d+/.test(s) ? ` (${s.split('\n').find((l) => l.startsWith('curl:')) ?? s.slice(-80)})` : '';
  return [
    control(
      'proxy.tls-healthz',
      `200 {"ok":true} over TLS trusted via ${spec.proxy.tls === 'internal' ? "the proxy's internal CA" : 'the system CAs'}`,
      healthOk ? '200 ok, certificate verified' : `${healthz.split('\n').slice(-1)[0]}${curlError(healthz)}`,
      healthOk,
      `https://${domain}/healthz via ${address}:443`,
    ),
    control('proxy.canvas', `2xx at ${canvasPath}/`, canvas, /^2\d\d exit=0$/.test(canvas)),
    control('proxy.http-redirect', `308 to https://${domain}/`, redirect, /^30[18] https:\/\//.test(redirect)),
  ];
}

/** WebSocket handshakes and port reachability from a throwaway container outside the host's network namespace. */
async function probeControls(session: HostSession, spec: Spec, address: string): Promise<ControlResult[]> {
  const layout = stackLayout(spec);
  const token = secretDeliveries(spec).find((d) => d.secret === spec.stack.gateway.tokenSecret)!;
  const ca = `${layout.releaseDir}/proxy-ca.crt`;
  const url = `wss://${spec.proxy.domain}${spec.proxy.websocketPath}`;
  const argv = [
    'docker',
    'run',
    '--rm',
    '-i',
    '--network',
    'bridge',
    '--read-only',
    '--tmpfs',
    '/tmp',
    '--user',
    `${spec.stack.uid}:${spec.stack.gid}`,
    '--cap-drop',
    'ALL',
    '--security-opt',
    'no-new-privileges',
    '--add-host',
    `${spec.proxy.domain}:${address}`,
    '-v',
    `${layout.secretsDir}/${token.secret}:/run/secrets/token:ro`,
    ...(spec.proxy.tls === 'internal'
      ? ['-v', `${ca}:/etc/steward/proxy-ca.crt:ro`, '-e', 'NODE_EXTRA_CA_CERTS=/etc/steward/proxy-ca.crt']
      : []),
    '--entrypoint',
    'node',
    spec.stack.image,
    '--input-type=module',
    '-',
    url,
    address,
    String(spec.stack.gateway.hostPort),
    '443',
  ];
  const r = await session.script(`${sh(argv)} <<'STEWARD_PROBE'\n${PROBE_JS}\nSTEWARD_PROBE`, { timeoutMs: 90_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let p: { withToken: ProbeOutcome; withWrong: ProbeOutcome; without: ProbeOutcome; closed: string; open: string };
  try {
    p = JSON.parse(line);
  } catch {
    throw new HostOutputError(
      session.target.name,
      `verification probe failed (exit ${r.code}): ${r.stderr.trim().slice(-300)}`,
    );
  }
  const show = (o: ProbeOutcome) =>
    o.code ? `${o.outcome} (${o.code})` : o.message ? `${o.outcome}: ${o.message}` : o.outcome;
  const hostPort = spec.stack.gateway.hostPort;
  return [
    control('gateway.ws-token', `accepted at ${url}`, show(p.withToken), p.withToken.outcome === 'accepted'),
    control(
      'gateway.ws-wrong-token',
      'refused (AUTH_TOKEN_MISMATCH)',
      show(p.withWrong),
      p.withWrong.outcome === 'refused' && p.withWrong.code === 'AUTH_TOKEN_MISMATCH',
    ),
    control(
      'gateway.ws-no-token',
      'refused',
      show(p.without),
      p.without.outcome === 'refused',
      'without a token only a paired device may connect',
    ),
    control(
      'gateway.port-outside',
      `${address}:${hostPort} unreachable, ${address}:443 reachable`,
      `${hostPort} ${p.closed}, 443 ${p.open}`,
      p.closed !== 'open' && p.open === 'open',
      'probed from a container on the default bridge',
    ),
  ];
}

/** The gateway's published ports: loopback only. */
function bindingControl(spec: Spec, containers: Map<string, ObservedContainer>): ControlResult {
  const bindings = Object.entries(containers.get(GATEWAY_SERVICE)?.portBindings ?? {}).flatMap(([port, bs]) =>
    (bs ?? []).map((b) => `${b.HostIp || '0.0.0.0'}:${b.HostPort}->${port}`),
  );
  const ok = bindings.length > 0 && bindings.every((b) => b.startsWith('127.0.0.1:'));
  return control(
    'gateway.port-binding',
    `127.0.0.1:${spec.stack.gateway.hostPort}->${spec.stack.gateway.port}/tcp only`,
    bindings.join(', ') || '(none)',
    ok,
  );
}

const AUDIT_SEVERITY: Record<string, Severity> = { critical: 'critical', warn: 'medium', info: 'info' };

/** `openclaw security audit --json` inside the gateway: no critical finding; its findings join the report. */
async function auditControl(
  session: HostSession,
  containers: Map<string, ObservedContainer>,
): Promise<{ control: ControlResult; findings: Finding[] }> {
  const id = containers.get(GATEWAY_SERVICE)?.id;
  if (!id)
    return {
      control: control('gateway.security-audit', 'no critical finding', 'no gateway container', false),
      findings: [],
    };
  const r = await session.script(sh(['docker', 'exec', id, 'openclaw', 'security', 'audit', '--json']), {
    timeoutMs: 120_000,
  });
  let doc: {
    summary?: { critical?: number; warn?: number };
    findings?: { checkId: string; severity: string; title: string }[];
  };
  try {
    doc = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
  } catch {
    throw new HostOutputError(session.target.name, `openclaw security audit printed no JSON (exit ${r.code})`);
  }
  const findings: Finding[] = (doc.findings ?? [])
    .filter((f) => f.severity !== 'info')
    .map((f) => ({
      id: `openclaw.audit.${f.checkId}`,
      severity: AUDIT_SEVERITY[f.severity] ?? 'medium',
      message: f.title,
      resource: `container:${GATEWAY_SERVICE}`,
    }));
  const critical = doc.summary?.critical ?? findings.filter((f) => f.severity === 'critical').length;
  return {
    control: control(
      'gateway.security-audit',
      'no critical finding',
      `${critical} critical, ${doc.summary?.warn ?? 0} warn`,
      critical === 0,
    ),
    findings,
  };
}

/** Every deploy verification control, and the audit's findings. Changes nothing but a copy of the public CA cert. */
export async function verifyStack(
  session: HostSession,
  spec: Spec,
  containers: Map<string, ObservedContainer>,
  tick: () => void = () => {},
): Promise<{ controls: ControlResult[]; findings: Finding[] }> {
  const address = await outsideAddress(session);
  const health = [GATEWAY_SERVICE, PROXY_SERVICE].map((s) => {
    const c = containers.get(s);
    const observed = c ? `${c.status}${c.health ? `/${c.health}` : ''}` : 'absent';
    return control(`stack.${s}.healthy`, 'running/healthy', observed, observed === 'running/healthy');
  });
  if (spec.proxy.tls === 'internal') {
    const layout = stackLayout(spec);
    const copy = `install -m 0644 ${run(layout.proxyRootCa)} ${run(`${layout.releaseDir}/proxy-ca.crt`)}`;
    await session.check(copy, { label: 'copy the proxy CA root' });
  }
  // Independent checks over separate channels of the one session. A stack that just turned healthy may still be
  // warming up (the proxy's first upstream connection, a loaded host): the outside checks are retried until they
  // pass or VERIFY_WINDOW_MS is over, and the last result counts.
  const outside = async () => {
    const deadline = Date.now() + VERIFY_WINDOW_MS;
    for (;;) {
      tick();
      const [http, probe] = await Promise.all([
        httpControls(session, spec, address),
        probeControls(session, spec, address),
      ]);
      if ([...http, ...probe].every((c) => c.status === 'pass') || Date.now() > deadline) return { http, probe };
      await new Promise((r) => setTimeout(r, 3000));
    }
  };
  const [{ http, probe }, audit] = await Promise.all([outside(), auditControl(session, containers)]);
  return {
    controls: [...health, bindingControl(spec, containers), ...http, ...probe, audit.control],
    findings: audit.findings,
  };
}
