/**
 * Verification of a deployed stack from the outside in: TLS through Caddy at the host's own outside address (checked
 * against the proxy's CA), the canvas path, the HTTP→HTTPS redirect, WebSocket handshakes at the public URL with the
 * token, a wrong token and none, the gateway port unreachable from anywhere but the host's loopback, OpenClaw's
 * own security audit and model routing, its model catalogue as `models.mode` asks, each enabled MCP server reached through the gateway's MCP client, the
 * Telegram bot's channel running with its token accepted, the plugin that uses the Google OAuth client loaded, and
 * one agent turn answered by a model of the spec's chain. The token is read inside a throwaway probe container from the
 * secret file; it never leaves the host.
 */
import {
  expectedChain,
  judgeAgentTurn,
  judgeToolCalls,
  parseAgentTurn,
  toolChecks,
  turnMessage,
  type AgentTurn,
} from '../../model/agent-turn';
import { judgeTelegram, parseChannelsStatus, type ChannelsStatus } from '../../model/channels';
import { enabledMcpServers, judgeMcp, parseMcpProbe, type McpProbe } from '../../model/mcp';
import { judgeCatalogue, parseModelsList } from '../../model/model-catalogue';
import { judgeGoogleOAuth, parsePluginList } from '../../model/plugins';
import type { ControlResult, Finding } from '../../model/report';
import { GATEWAY_SERVICE, PROXY_SERVICE, secretDeliveries, stackLayout } from '../../model/render/stack';
import type { Spec } from '../../model/schema';
import { UnexpectedHostOutput } from '../host/errors';
import type { HostSession } from '../host/session';
import { run, sh } from '../host/shell';
import { openclawIn, ranOutOfTime, readOpenclaw, readRouting, stackAudit } from './audit';
import {
  describeChain,
  expectedRouting,
  judgeRouting,
  type ExpectedRouting,
  type Routing,
  type RoutingDifference,
} from '../../model/routing';
import type { ObservedContainer } from './stack';

/**
 * Runs in the probe container (Node 24: global WebSocket). Prints one JSON line: the outcome of an OpenClaw `connect`
 * for each label — a token read from /run/steward-probe/<label>, or `wrong` (a random token) or `none` (no token) —
 * and, when ports are given, TCP connects to the gateway's host port and to 443 at the host's outside address (the
 * second proves the probe reaches the host at all).
 */
const PROBE_JS = String.raw`
import net from 'node:net';
import { readFileSync } from 'node:fs';
const [url, address, closedPort, openPort, labels] = process.argv.slice(2);
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
const token = (label) => label === 'none' ? undefined : label === 'wrong' ? wrong
  : readFileSync('/run/steward-probe/' + label, 'utf8').trim();
const names = labels.split(',').filter(Boolean);
const outcomes = await Promise.all(names.map((l) => connect(token(l))));
const [closed, open] = closedPort ? await Promise.all([tcp(closedPort), tcp(openPort)]) : [];
console.log(JSON.stringify({ tokens: Object.fromEntries(names.map((l, i) => [l, outcomes[i]])), closed, open }));
`;

/** What one WebSocket `connect` came to: `accepted`, `refused` (with OpenClaw's code), `closed`, `error`, `timeout`. */
export interface ProbeOutcome {
  outcome: string;
  code?: string;
  message?: string;
}

/** Outcomes per label, and the port reachability when asked for. */
export interface AuthProbeResult {
  readonly tokens: Record<string, ProbeOutcome>;
  readonly closed?: string;
  readonly open?: string;
}

/** How to probe: token files on the host by label, whether to try a wrong token and none, and the port checks. */
export interface AuthProbeRequest {
  /** label → path of a file on the host holding the token (mounted read-only into the probe). */
  readonly tokens: Readonly<Record<string, string>>;
  readonly wrong?: boolean;
  readonly none?: boolean;
  readonly ports?: boolean;
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
export async function outsideAddress(session: HostSession): Promise<string> {
  const r = await session.check(
    `dev=$(ip -4 route show default | awk '{for(i=1;i<NF;i++) if ($i=="dev") {print $(i+1); exit}}'); ip -4 -o addr show dev "$dev" | awk '{print $4; exit}' | cut -d/ -f1`,
    { label: 'outside address' },
  );
  const ip = r.stdout.trim();
  if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(ip))
    throw new UnexpectedHostOutput(session.target.name, `no IPv4 address on the default route (${JSON.stringify(ip)})`);
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

/**
 * The shell command that runs the WebSocket probe in a throwaway container on the host (default bridge network, read
 * only, no capabilities, the gateway's uid), connecting to the public URL at the host's outside address. Token files
 * are mounted read-only; no token is ever on a command line or leaves the host.
 */
export function authProbeScript(spec: Spec, address: string, req: AuthProbeRequest): string {
  const layout = stackLayout(spec);
  const ca = `${layout.releaseDir}/proxy-ca.crt`;
  const url = `wss://${spec.proxy.domain}${spec.proxy.websocketPath}`;
  const labels = Object.keys(req.tokens);
  const bad = labels.find((l) => !/^[a-z][a-z0-9-]{0,31}$/.test(l) || l === 'wrong' || l === 'none');
  if (bad !== undefined) throw new Error(`probe label ${bad} must be a lowercase name other than wrong and none`);
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
    ...Object.entries(req.tokens).flatMap(([label, path]) => ['-v', `${path}:/run/steward-probe/${label}:ro`]),
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
    req.ports ? String(spec.stack.gateway.hostPort) : '',
    req.ports ? '443' : '',
    [...labels, ...(req.wrong ? ['wrong'] : []), ...(req.none ? ['none'] : [])].join(','),
  ];
  return `${sh(argv)} <<'STEWARD_PROBE'\n${PROBE_JS}\nSTEWARD_PROBE`;
}

/**
 * OpenClaw WebSocket `connect`s at the public URL with each token file (and a wrong token or none, if asked), from a
 * throwaway container on the host. Changes nothing.
 * @throws UnexpectedHostOutput when the probe prints no result.
 */
export async function probeGatewayAuth(
  session: HostSession,
  spec: Spec,
  address: string,
  req: AuthProbeRequest,
): Promise<AuthProbeResult> {
  const r = await session.script(authProbeScript(spec, address, req), { timeoutMs: 90_000 });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    const doc = JSON.parse(line) as AuthProbeResult;
    if (doc && typeof doc.tokens === 'object') return doc;
  } catch {
    // reported below
  }
  throw new UnexpectedHostOutput(
    session.target.name,
    `WebSocket probe failed (exit ${r.code}): ${r.stderr.trim().slice(-300)}`,
  );
}

/** An outcome as a control's observed value: `refused (AUTH_TOKEN_MISMATCH)`, `error: …`, `accepted`. */
export function describeOutcome(o: ProbeOutcome | undefined): string {
  if (!o) return 'no result';
  return o.code ? `${o.outcome} (${o.code})` : o.message ? `${o.outcome}: ${o.message}` : o.outcome;
}

/** WebSocket handshakes and port reachability from a throwaway container outside the host's network namespace. */
async function probeControls(session: HostSession, spec: Spec, address: string): Promise<ControlResult[]> {
  const layout = stackLayout(spec);
  const token = secretDeliveries(spec).find((d) => d.secret === spec.stack.gateway.tokenSecret)!;
  const url = `wss://${spec.proxy.domain}${spec.proxy.websocketPath}`;
  const p = await probeGatewayAuth(session, spec, address, {
    tokens: { token: `${layout.secretsDir}/${token.secret}` },
    wrong: true,
    none: true,
    ports: true,
  });
  const withToken = p.tokens.token ?? { outcome: 'no result' };
  const withWrong = p.tokens.wrong ?? { outcome: 'no result' };
  const without = p.tokens.none ?? { outcome: 'no result' };
  const show = describeOutcome;
  const hostPort = spec.stack.gateway.hostPort;
  return [
    control('gateway.ws-token', `accepted at ${url}`, show(withToken), withToken.outcome === 'accepted'),
    control(
      'gateway.ws-wrong-token',
      'refused (AUTH_TOKEN_MISMATCH)',
      show(withWrong),
      withWrong.outcome === 'refused' && withWrong.code === 'AUTH_TOKEN_MISMATCH',
    ),
    control(
      'gateway.ws-no-token',
      'refused',
      show(without),
      without.outcome === 'refused',
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

/** Reads of the audit, the routing or the MCP probe a verification makes before it takes an unread one as the answer. */
const READS = 3;

/**
 * `read()` again, 5 s apart, up to {@link READS} reads in all, while its answer is an error that is not a timeout: a
 * gateway that just turned healthy may still be loading, and a verification must not roll back a good release over
 * one unanswered read.
 */
async function reread<T extends object>(first: T | { error: string }, read: () => Promise<T | { error: string }>) {
  let answer = first;
  for (let n = 2; n <= READS && 'error' in answer && !ranOutOfTime(answer.error); n++) {
    await new Promise((r) => setTimeout(r, 5000));
    answer = await read();
  }
  return answer;
}

/** The audit and routing of `container` run now: the audit read again whole while unread, then the routing alone. */
async function freshAudit(session: HostSession, spec: Spec, container: string): ReturnType<typeof stackAudit> {
  const runNow = () => stackAudit(session, spec, container, 0);
  const audit = await reread(await runNow(), runNow);
  if ('error' in audit) return audit;
  return { ...audit, routing: await reread(audit.routing, () => readRouting(session, container)) };
}

/**
 * `openclaw security audit --json` inside the gateway, run now (never reused), which refreshes the host's audit
 * cache for drift (audit.ts): no critical finding; its findings join the report.
 */
async function auditControl(
  session: HostSession,
  spec: Spec,
  containers: Map<string, ObservedContainer>,
): Promise<{ controls: ControlResult[]; findings: Finding[] }> {
  const id = containers.get(GATEWAY_SERVICE)?.id;
  const expected = expectedRouting(spec);
  const routingExpected = describeExpectedRouting(expected);
  if (!id)
    return {
      controls: [
        control('gateway.security-audit', 'no critical finding', 'no gateway container', false),
        control('gateway.model-routing', routingExpected, 'no gateway container', false),
      ],
      findings: [],
    };
  const audit = await freshAudit(session, spec, id);
  if ('error' in audit) throw new UnexpectedHostOutput(session.target.name, `openclaw security audit: ${audit.error}`);
  // Routing that could not be read is not known to be wrong: not applicable, and a finding says why.
  const judged = judgeRouting(spec, audit.routing);
  const routing =
    'error' in audit.routing
      ? {
          ...control('gateway.model-routing', routingExpected, `not read: ${audit.routing.error}`, false),
          status: 'not-applicable' as const,
        }
      : routingControl(routingExpected, audit.routing, judged.differences);
  return {
    controls: [
      control(
        'gateway.security-audit',
        'no critical finding',
        `${audit.critical} critical, ${audit.warn} warn`,
        audit.critical === 0,
      ),
      routing,
    ],
    findings: [...audit.findings, ...judged.findings],
  };
}

function describeExpectedRouting(e: ExpectedRouting): string {
  const chain = describeChain(e.primary, e.fallbacks);
  const providers = e.providers.length ? `providers ${e.providers.join(', ')} only` : 'no provider configured';
  return chain ? `${chain}; ${providers}` : providers;
}

/**
 * The routing OpenClaw resolved, against the spec's: what a person needs to see that the chain is the one asked for.
 * `failing` are the differences a deploy renders away ({@link judgeRouting}); a provider an auth profile in the
 * agent's state makes usable is a finding there, not a failure.
 */
function routingControl(expectedText: string, observed: Routing, failing: readonly RoutingDifference[]): ControlResult {
  const usable = observed.providers.filter((p) => p.kind !== 'missing').map((p) => p.id);
  const seen = `${describeChain(observed.primary, observed.fallbacks) ?? 'no default model'}; usable providers: ${usable.join(', ') || 'none'}`;
  return control(
    'gateway.model-routing',
    expectedText,
    failing.length === 0 ? seen : `${seen} (${failing.map((d) => d.message).join('; ')})`,
    failing.length === 0,
  );
}

/** `openclaw mcp probe --json` in `container`: every configured MCP server started or reached, its tools listed. */
function probeMcp(session: HostSession, container: string): Promise<McpProbe | { error: string }> {
  return readOpenclaw(session, container, ['mcp', 'probe', '--json'], parseMcpProbe);
}

/**
 * One control per enabled MCP server of the spec (none when it names none): connected through the running gateway's
 * own MCP client, and at least one tool listed. A probe that printed nothing readable is read again, as the audit is.
 */
async function mcpControls(
  session: HostSession,
  spec: Spec,
  containers: Map<string, ObservedContainer>,
): Promise<ControlResult[]> {
  if (enabledMcpServers(spec).length === 0) return [];
  const id = containers.get(GATEWAY_SERVICE)?.id;
  const probe = id
    ? await reread(await probeMcp(session, id), () => probeMcp(session, id))
    : { error: 'no gateway container' };
  return judgeMcp(spec, probe).map((j) => control(j.control, j.expected, j.observed, j.pass));
}

/** `openclaw channels status --probe --json` in `container`: each channel running, its credentials probed. */
function probeChannels(session: HostSession, container: string): Promise<ChannelsStatus | { error: string }> {
  return readOpenclaw(session, container, ['channels', 'status', '--probe', '--json'], parseChannelsStatus);
}

/**
 * `integrations.telegram` when the spec enables the Telegram bot: the channel running in the gateway and its token
 * accepted by the Bot API (`getMe`). A channel still starting, or a probe that printed nothing readable, is read
 * again, as the audit is.
 */
export async function channelControls(
  session: HostSession,
  spec: Spec,
  containers: Map<string, ObservedContainer>,
): Promise<ControlResult[]> {
  if (!spec.stack.integrations.telegram?.enabled) return [];
  const id = containers.get(GATEWAY_SERVICE)?.id;
  const read = async () => {
    if (!id) return { error: 'no gateway container' };
    const status = await probeChannels(session, id);
    const failing = judgeTelegram(spec, status).find((j) => !j.pass);
    return failing && !('error' in status) ? { ...status, error: failing.observed } : status;
  };
  const status = await reread(await read(), read);
  return judgeTelegram(spec, 'channels' in status ? { channels: status.channels } : status).map((j) =>
    control(j.control, j.expected, j.observed, j.pass),
  );
}

/**
 * `providers.catalogue`: OpenClaw's model catalogue for the gateway's config and agent directory (`openclaw models
 * list --all --json` in its container) is the one `models.mode` asks for (model/model-catalogue.ts).
 */
async function catalogueControls(
  session: HostSession,
  spec: Spec,
  containers: Map<string, ObservedContainer>,
): Promise<ControlResult[]> {
  const id = containers.get(GATEWAY_SERVICE)?.id;
  const read = async () =>
    id
      ? readOpenclaw(session, id, ['models', 'list', '--all', '--json'], parseModelsList)
      : { error: 'no gateway container' };
  const j = judgeCatalogue(spec, await reread(await read(), read));
  return [control(j.control, j.expected, j.observed, j.pass)];
}

/**
 * `integrations.google-oauth` when the spec configures the Google OAuth client: the plugin that consumes it loaded
 * in the gateway (`openclaw plugins list --json`).
 */
async function pluginControls(
  session: HostSession,
  spec: Spec,
  containers: Map<string, ObservedContainer>,
): Promise<ControlResult[]> {
  if (!spec.stack.integrations.googleOAuth) return [];
  const id = containers.get(GATEWAY_SERVICE)?.id;
  const read = async () =>
    id ? readOpenclaw(session, id, ['plugins', 'list', '--json'], parsePluginList) : { error: 'no gateway container' };
  const list = await reread(await read(), read);
  return judgeGoogleOAuth(spec, list).map((j) => control(j.control, j.expected, j.observed, j.pass));
}

/**
 * The session steward's verification turn runs in. `cron` in its key marks it as automation: memory plugins neither
 * recall into it nor capture it (mem0 skips such sessions), so a verification leaves nothing in the agent's memory;
 * the session itself is deleted after each turn.
 */
export const VERIFY_SESSION = 'agent:main:cron:steward-verify';
/** How long a turn may take: OpenClaw retries a failing model for about a minute before it asks the next one. */
const TURN_SECONDS = 300;

/**
 * One turn of the default agent through the running gateway (`openclaw agent`, which reaches the gateway over its
 * WebSocket with the token from openclaw.json), then its session deleted, whatever the turn came to.
 */
async function agentTurn(
  session: HostSession,
  container: string,
  message: string,
): Promise<AgentTurn | { error: string; printedNothing?: true }> {
  const args = ['agent', '--session-key', VERIFY_SESSION, '--message', message, '--json'];
  let r;
  try {
    r = await openclawIn(session, container, [...args, '--timeout', String(TURN_SECONDS - 20)], TURN_SECONDS);
  } finally {
    await openclawIn(session, container, ['sessions', 'delete', VERIFY_SESSION, '--yes', '--json'], 60);
  }
  try {
    return parseAgentTurn(r.stdout);
  } catch (err) {
    const error = `openclaw agent (exit ${r.code}): ${err instanceof Error ? err.message : String(err)}`;
    // No document at all: the command never reached a model (a gateway still loading). Anything else may have.
    // Killed (124, 137, 143) or anything printed: it may have reached a model, and is not repeated.
    return r.stdout.includes('{') || [124, 137, 143].includes(r.code ?? -1)
      ? { error }
      : { error, printedNothing: true };
  }
}

/**
 * `providers.agent-turn` when the spec names a primary model (and `verifyTurn` is not false): which model of the
 * chain answered, and a finding when it was a fallback; and `mcp.servers.<name>.call` for each server's `verifyTool`,
 * which the turn asks the agent to call. A turn that printed nothing at all is tried once more 5 s later (it reached
 * no model); one that printed anything is never repeated (it may have been a model call). `soft` names the controls
 * a failing provider or a model's choice decides rather than the release: every tool call, and the turn when every
 * model failed on the provider's side.
 */
async function turnControls(
  session: HostSession,
  spec: Spec,
  containers: Map<string, ObservedContainer>,
): Promise<{ controls: ControlResult[]; findings: Finding[]; soft: string[] }> {
  const tools = (turn: Parameters<typeof judgeToolCalls>[1]) =>
    judgeToolCalls(spec, turn).map((j) => ({ ...control(j.control, j.expected, j.observed, false), status: j.status }));
  if (!spec.stack.providers.verifyTurn) {
    return { controls: tools({ skipped: 'stack.providers.verifyTurn is false' }), findings: [], soft: [] };
  }
  if (expectedChain(spec).length === 0) {
    return { controls: tools({ skipped: 'the spec names no primary model' }), findings: [], soft: [] };
  }
  const id = containers.get(GATEWAY_SERVICE)?.id;
  const message = turnMessage(toolChecks(spec));
  let turn: AgentTurn | { error: string; printedNothing?: true } = { error: 'no gateway container' };
  if (id) {
    turn = await agentTurn(session, id, message);
    if ('printedNothing' in turn) {
      await new Promise((r) => setTimeout(r, 5000));
      turn = await agentTurn(session, id, message);
    }
  }
  const j = judgeAgentTurn(spec, turn);
  const calls = tools(turn);
  return {
    controls: [control('providers.agent-turn', j.expected, j.observed, j.pass), ...calls],
    findings: [...j.findings],
    // Soft: every model failing on the provider's side (then the tool calls too), or a model that skipped a tool.
    soft: [
      ...(j.providerSide ? ['providers.agent-turn', ...calls.map((c) => c.control)] : []),
      ...judgeToolCalls(spec, turn)
        .filter((c) => c.skippedByModel)
        .map((c) => c.control),
    ],
  };
}

/**
 * In a deploy's verification (and an upgrade's, a reboot's), the soft controls' failures are findings instead: a
 * provider's outage, a model that ignored the instruction to call a tool, or an integration the image cannot run
 * are not what the release changed, and must not roll it back. `steward verify` keeps them as failures.
 */
export function softened(
  controls: readonly ControlResult[],
  soft: ReadonlySet<string>,
): { controls: ControlResult[]; findings: Finding[] } {
  const findings: Finding[] = [];
  const out = controls.map((c) => {
    if (c.status !== 'fail' || !soft.has(c.control)) return c;
    findings.push({
      id: `verify.${c.control}`,
      severity: c.control.startsWith('mcp.') ? 'medium' : 'high',
      message: `${c.control}: ${c.observed} (not held against the release; \`steward verify\` fails on it)`,
    });
    return { ...c, status: 'not-applicable' as const, note: 'not held against the release: see the finding' };
  });
  return { controls: out, findings };
}

/**
 * Every verification control, and the audit's findings. Changes nothing on the host but a copy of the public CA
 * cert (the agent turn is a real turn: the model's answer, and a tool it is asked to call). `strict` (`steward
 * verify`): every failing control counts; else (a deploy's gate) the soft ones are findings ({@link softened}).
 */
export async function verifyStack(
  session: HostSession,
  spec: Spec,
  containers: Map<string, ObservedContainer>,
  tick: () => void = () => {},
  strict = false,
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
  const [{ http, probe }, audit, mcp, channels, plugins, catalogue, turn] = await Promise.all([
    outside(),
    auditControl(session, spec, containers),
    mcpControls(session, spec, containers),
    channelControls(session, spec, containers),
    pluginControls(session, spec, containers),
    catalogueControls(session, spec, containers),
    turnControls(session, spec, containers),
  ]);
  const controls = [
    ...health,
    bindingControl(spec, containers),
    ...http,
    ...probe,
    ...audit.controls,
    ...mcp,
    ...channels,
    ...plugins,
    ...catalogue,
    ...turn.controls,
  ];
  const findings = [...audit.findings, ...turn.findings];
  if (strict) return { controls, findings };
  const soft = softened(controls, new Set([...turn.soft, 'integrations.google-oauth']));
  return { controls: soft.controls, findings: [...findings, ...soft.findings] };
}
