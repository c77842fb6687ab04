/**
 * The compose stack on a host: the files deploy renders, the containers as the engine reports them and as they must
 * be, bringing them up and waiting for health, and validating a config with OpenClaw itself before it goes live.
 */
import { stringify } from 'yaml';
import type { Change } from '../../model/report';
import {
  composeProject,
  COMPOSE_PROJECT,
  DEFINITION_LABEL,
  GATEWAY_SERVICE,
  PROXY_SERVICE,
  PROXY_UID,
  renderCaddyfile,
  renderOpenclawJson,
  secretDeliveries,
  stackLayout,
  type StackLayout,
} from '../../model/render/stack';
import type { Spec } from '../../model/schema';
import { HostError, UnexpectedHostOutput } from '../host/errors';
import type { HostSession } from '../host/session';
import { run, sh } from '../host/shell';
import { digest, directoryResource, type FileSpec } from '../resources/files';
import type { Resource } from '../resources/resource';
import { shortId } from './images';
import { endProgress, reportProgress } from '../context';

/** OpenClaw refused the rendered config. Nothing live changed; the spec must change. */
export class ConfigRejected extends HostError {
  override readonly name = 'ConfigRejected';
  readonly retryable = false;
  constructor(
    host: string,
    readonly issues: readonly { path: string; message: string }[],
  ) {
    super(
      host,
      `OpenClaw rejects the rendered openclaw.json: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`,
    );
  }
}

/** A container of the new release did not become healthy in time. The workflow rolls back. */
export class StackUnhealthy extends HostError {
  override readonly name = 'StackUnhealthy';
  readonly retryable = false;
}

export interface RenderedStack {
  readonly layout: StackLayout;
  readonly files: FileSpec[];
  /** The digests of each service's compose definition, which its container carries as a label. */
  readonly digests: { readonly gateway: string; readonly proxy: string };
}

/** A service definition's digest: its JSON's SHA-256, shortened. */
const definitionDigest = (definition: unknown) => digest(JSON.stringify(definition)).slice(0, 16);

/** compose.yaml: the project as YAML, headed by a note that edits on the host are drift. */
export function renderCompose(spec: Spec): string {
  return `# Rendered by steward from steward.yaml; changes here are drift.\n${stringify(composeProject(spec, definitionDigest), { lineWidth: 0 })}`;
}

/** Renders every file deploy owns, with owners and modes. */
export function renderStack(spec: Spec): RenderedStack {
  const layout = stackLayout(spec);
  const openclawJson = renderOpenclawJson(spec);
  const caddyfile = renderCaddyfile(spec);
  const services = composeProject(spec, definitionDigest).services as Record<
    string,
    { labels: Record<string, string> }
  >;
  const digests = {
    gateway: services[GATEWAY_SERVICE]!.labels[DEFINITION_LABEL]!,
    proxy: services[PROXY_SERVICE]!.labels[DEFINITION_LABEL]!,
  };
  const { uid, gid } = spec.stack;
  return {
    layout,
    digests,
    files: [
      { path: layout.openclawJson, content: openclawJson, owner: uid, group: gid, mode: '0600' },
      { path: layout.caddyfile, content: caddyfile, owner: 0, group: 0, mode: '0644' },
      { path: layout.composeFile, content: renderCompose(spec), owner: 0, group: 0, mode: '0600' },
    ],
  };
}

/** Directories the stack needs besides the volumes (which provision creates and deploy keeps in shape). */
export function stackDirectories(spec: Spec, host: string): Resource[] {
  const layout = stackLayout(spec);
  const owner = (o: 'container' | 'ops' | 'root') =>
    o === 'container' ? [spec.stack.uid, spec.stack.gid] : o === 'ops' ? [spec.ssh.opsUser, spec.ssh.opsUser] : [0, 0];
  return [
    ...spec.stack.volumes.map((v) => {
      const [u, g] = owner(v.owner);
      return directoryResource({ path: v.path, owner: u!, group: g!, mode: v.mode }, host);
    }),
    directoryResource({ path: layout.proxyDir, owner: 0, group: 0, mode: '0755' }, host),
    directoryResource({ path: layout.proxyData, owner: PROXY_UID, group: PROXY_UID, mode: '0700' }, host),
    directoryResource({ path: layout.proxyConfig, owner: PROXY_UID, group: PROXY_UID, mode: '0700' }, host),
    directoryResource({ path: layout.releaseDir, owner: 0, group: 0, mode: '0700' }, host),
  ];
}

// ---------------------------------------------------------------------------------------------------------------
// Containers

export interface ObservedContainer {
  readonly service: string;
  readonly id: string;
  readonly image: string;
  readonly imageRef: string;
  readonly config?: string;
  readonly status: string;
  readonly health?: string;
  /** The latest health check the engine ran: when it started (engine clock) and its exit code. */
  readonly lastCheck?: { readonly start: string; readonly exit: number };
  readonly restarts: number;
  readonly exitCode: number;
  readonly portBindings: Record<string, { HostIp: string; HostPort: string }[] | null>;
  /** `NAME=value` entries of the container's environment. Values may be secrets: never reported, only names. */
  readonly env: readonly string[];
  readonly restartPolicy: string;
}

/**
 * The engine is read through its API socket with curl where the host has both (a curl process costs a third of a
 * docker CLI one, and drift reads the stack on every host each run); otherwise with the docker CLI. Both print the
 * engine's own inspect JSON.
 */
/** The engine's API socket (the audit's inputs are read through it too: audit.ts). */
export const DOCKER_SOCKET = '/var/run/docker.sock';
const VIA_API = `command -v curl >/dev/null && [ -S ${DOCKER_SOCKET} ]`;
const api = (path: string) => `curl -sf --unix-socket ${DOCKER_SOCKET} ${run(`http://docker${path}`)}`;
const PROJECT_FILTER = encodeURIComponent(JSON.stringify({ label: [`com.docker.compose.project=${COMPOSE_PROJECT}`] }));

/** Prints a JSON array of the stack's containers as `docker inspect` does (`[]` for none, or no engine). */
const INSPECT_CONTAINERS = [
  `if ${VIA_API}; then`,
  // A container list entry's only "Id" key is its own; a label value cannot hold an unescaped quote.
  `  ids=$(${api(`/containers/json?all=1&filters=${PROJECT_FILTER}`)} | grep -o '"Id":"[0-9a-f]*"' | cut -d'"' -f4)`,
  `  sep=; printf '['`,
  `  for id in $ids; do c=$(curl -sf --unix-socket ${DOCKER_SOCKET} "http://docker/containers/$id/json") && { printf '%s%s' "$sep" "$c"; sep=,; }; done`,
  `  printf ']\n'`,
  'else',
  `  ids=$(docker ps -aq --filter ${run(`label=com.docker.compose.project=${COMPOSE_PROJECT}`)}); if [ -n "$ids" ]; then docker inspect $ids; else echo '[]'; fi`,
  'fi',
].join('\n');

/** The fields of `docker inspect` steward reads. */
interface InspectedContainer {
  Id?: string;
  Image?: string;
  RestartCount?: number;
  Config?: { Image?: string; Labels?: Record<string, string>; Env?: string[] };
  State?: {
    Status?: string;
    ExitCode?: number;
    Health?: { Status?: string; Log?: { Start?: string; ExitCode?: number }[] };
  };
  HostConfig?: { PortBindings?: ObservedContainer['portBindings']; RestartPolicy?: { Name?: string } };
}

/** The stack's containers as the engine reports them, by compose service. */
export async function observeContainers(session: HostSession): Promise<Map<string, ObservedContainer>> {
  const r = await session.check(INSPECT_CONTAINERS, { label: 'docker inspect stack' });
  return parseContainers(session.target.name, r.stdout);
}

function parseContainers(host: string, stdout: string): Map<string, ObservedContainer> {
  let raw: unknown;
  try {
    raw = JSON.parse(stdout);
  } catch {
    throw new UnexpectedHostOutput(host, 'docker inspect printed no JSON');
  }
  const out = new Map<string, ObservedContainer>();
  for (const c of raw as InspectedContainer[]) {
    const labels = (c.Config?.Labels ?? {}) as Record<string, string>;
    const service = labels['com.docker.compose.service'];
    if (!service) continue;
    out.set(service, {
      service,
      id: String(c.Id),
      image: String(c.Image),
      imageRef: String(c.Config?.Image ?? ''),
      ...(labels[DEFINITION_LABEL] ? { config: labels[DEFINITION_LABEL] } : {}),
      status: String(c.State?.Status ?? 'unknown'),
      ...(c.State?.Health?.Status ? { health: String(c.State.Health.Status) } : {}),
      ...lastCheck(c.State?.Health?.Log),
      restarts: Number(c.RestartCount ?? 0),
      exitCode: Number(c.State?.ExitCode ?? 0),
      portBindings: (c.HostConfig?.PortBindings ?? {}) as ObservedContainer['portBindings'],
      env: c.Config?.Env ?? [],
      restartPolicy: c.HostConfig?.RestartPolicy?.Name ?? '',
    });
  }
  return out;
}

function lastCheck(log: { Start?: string; ExitCode?: number }[] | undefined): Pick<ObservedContainer, 'lastCheck'> {
  const last = Array.isArray(log) ? log[log.length - 1] : undefined;
  return typeof last?.Start === 'string' ? { lastCheck: { start: last.Start, exit: Number(last.ExitCode ?? -1) } } : {};
}

/** Milliseconds since the epoch of an engine timestamp (RFC 3339, nanoseconds cut to milliseconds); NaN if none. */
export function engineTime(t: string): number {
  return Date.parse(t.replace(/(\.\d{3})\d+/, '$1'));
}

/** An image on the host: its ID (`''` when absent) and its default environment. */
export interface HostImage {
  readonly id: string;
  readonly env: readonly string[];
}

/** Prints the image's inspect JSON on one line, or nothing when the host lacks it. */
const imageProbe = (ref: string) =>
  `{ if ${VIA_API}; then ${api(`/images/${ref}/json`)}; else docker image inspect -f '{{json .}}' ${run(ref)} 2>/dev/null; fi; } || true`;

function parseImage(host: string, out: string): HostImage {
  const line = out.trim();
  if (!line) return { id: '', env: [] };
  let doc: { Id?: string; Config?: { Env?: string[] | null } };
  try {
    doc = JSON.parse(line) as typeof doc;
  } catch {
    throw new UnexpectedHostOutput(host, `image inspect printed no JSON: ${JSON.stringify(line.slice(0, 80))}`);
  }
  return { id: String(doc.Id ?? ''), env: doc.Config?.Env ?? [] };
}

/** Images of references on the host. */
export async function hostImages(session: HostSession, refs: readonly string[]): Promise<HostImage[]> {
  const res = await session.probe(Object.fromEntries(refs.map((ref, i) => [`i${i}`, imageProbe(ref)])));
  return refs.map((_, i) => parseImage(session.target.name, res[`i${i}`]!.out));
}

/** What a service's container must be. */
interface WantedContainer {
  readonly service: string;
  readonly ref: string;
  readonly image: HostImage;
  readonly config: string;
  readonly ports: readonly string[];
  /** Variables with known values (image defaults, compose `environment`), and names whose values are secret. */
  readonly env: Readonly<Record<string, string>>;
  readonly secretEnv: readonly string[];
}

function wantedContainers(
  spec: Spec,
  rendered: RenderedStack,
  images: { gateway: HostImage; proxy: HostImage },
): WantedContainer[] {
  const vars = (entries: readonly string[]) =>
    Object.fromEntries(entries.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  const { gateway } = spec.stack;
  return [
    {
      service: GATEWAY_SERVICE,
      ref: spec.stack.image,
      image: images.gateway,
      config: rendered.digests.gateway,
      ports: [`127.0.0.1:${gateway.hostPort}->${gateway.port}/tcp`],
      env: {
        ...vars(images.gateway.env),
        ...(gateway.port !== 18789 ? { OPENCLAW_GATEWAY_PORT: String(gateway.port) } : {}),
      },
      secretEnv: secretDeliveries(spec).flatMap((d) => (d.kind === 'env' ? [d.variable] : [])),
    },
    {
      service: PROXY_SERVICE,
      ref: spec.proxy.image,
      image: images.proxy,
      config: rendered.digests.proxy,
      ports: ['0.0.0.0:443->443/tcp', '0.0.0.0:80->80/tcp'],
      env: vars(images.proxy.env),
      secretEnv: [],
    },
  ];
}

function publishedPorts(o: ObservedContainer): string[] {
  return Object.entries(o.portBindings)
    .flatMap(([port, bs]) => (bs ?? []).map((b) => `${b.HostIp || '0.0.0.0'}:${b.HostPort}->${port}`))
    .sort();
}

/**
 * What the containers must be: each service running the host's image for its ref, with the rendered config digest,
 * the published ports, restart policy and environment compose gives it. An extra or changed variable is drift
 * (it can flip a provider's auto-detection); only names are reported, values may be secrets.
 */
export function containerChanges(
  spec: Spec,
  rendered: RenderedStack,
  observed: Map<string, ObservedContainer>,
  images: { gateway: HostImage; proxy: HostImage },
): Change[] {
  return wantedContainers(spec, rendered, images).flatMap((w): Change[] => {
    const o = observed.get(w.service);
    const resource = `container:${w.service}`;
    const after = { image: `${w.ref} (${shortId(w.image.id)})`, config: w.config };
    if (!o) return [{ resource, action: 'create', after }];
    const before: Record<string, string> = {};
    const want: Record<string, string> = {};
    if (o.image !== w.image.id) before.image = `${o.imageRef} (${shortId(o.image)})`;
    if (o.config !== w.config) before.config = o.config ?? '(none)';
    if (o.status !== 'running') before.status = o.status;
    if (o.restartPolicy !== 'unless-stopped') {
      before.restart = o.restartPolicy || '(none)';
      want.restart = 'unless-stopped';
    }
    const ports = publishedPorts(o).join(', ');
    if (ports !== [...w.ports].sort().join(', ')) {
      before.ports = ports || '(none)';
      want.ports = [...w.ports].sort().join(', ');
    }
    const env = new Map(o.env.map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
    const known = new Set([...Object.keys(w.env), ...w.secretEnv]);
    const extra = [...env.keys()].filter((k) => !known.has(k)).sort();
    const missing = [...known].filter((k) => !env.has(k)).sort();
    const changed = Object.entries(w.env)
      .filter(([k, v]) => env.has(k) && env.get(k) !== v)
      .map(([k]) => k)
      .sort();
    if (extra.length + missing.length + changed.length > 0) {
      before.env = [...extra.map((k) => `+${k}`), ...missing.map((k) => `-${k}`), ...changed.map((k) => `~${k}`)].join(
        ' ',
      );
      want.env = 'as compose sets it';
    }
    return Object.keys(before).length > 0 ? [{ resource, action: 'update', before, after: { ...after, ...want } }] : [];
  });
}

/**
 * The stack's containers as one resource, observed in the same batch as everything else: applying runs
 * `docker-compose up -d` (recreating what differs) and waits for health.
 */
export function containersResource(
  spec: Spec,
  host: string,
  rendered: RenderedStack,
  tick: () => void = () => {},
): Resource {
  const refs = stackImageRefs(spec);
  return {
    id: 'containers:stack',
    probe: [
      INSPECT_CONTAINERS,
      `echo '${CONTAINER_SPLIT}'`,
      ...refs.map((r) => `i=$(${imageProbe(r)}); printf '%s\\n' "$i"`),
    ].join('\n'),
    parse: (r) => {
      const [containers = '[]', images = ''] = r.out.split(`${CONTAINER_SPLIT}\n`);
      const [gateway = '', proxy = ''] = images.split('\n');
      return {
        containers: parseContainers(host, containers),
        images: { gateway: parseImage(host, gateway), proxy: parseImage(host, proxy) },
      };
    },
    diff: (o) => {
      const { containers, images } = o as {
        containers: Map<string, ObservedContainer>;
        images: { gateway: HostImage; proxy: HostImage };
      };
      return containerChanges(spec, rendered, containers, images);
    },
    apply: async (session) => {
      await composeUp(session, rendered.layout);
      await waitHealthy(session, [GATEWAY_SERVICE, PROXY_SERVICE], spec.stack.healthTimeoutSeconds, tick);
    },
  };
}

const CONTAINER_SPLIT = '--steward-images--';

function stackImageRefs(spec: Spec): [string, string] {
  return [spec.stack.image, spec.proxy.image];
}

export const compose = (layout: StackLayout, ...args: string[]) =>
  sh(['docker-compose', '--no-ansi', '-p', COMPOSE_PROJECT, '-f', layout.composeFile, ...args]);

/** `docker-compose up -d`: recreates exactly the services whose config or image changed. */
export async function composeUp(session: HostSession, layout: StackLayout): Promise<void> {
  await session.check(compose(layout, 'up', '-d', '--remove-orphans'), {
    label: 'docker-compose up',
    timeoutMs: 300_000,
  });
}

/** Recreates one service's container from the compose file, whatever it holds. */
export async function forceRecreate(
  session: HostSession,
  layout: StackLayout,
  service: string,
  tick: () => void = () => {},
): Promise<void> {
  await session.check(compose(layout, 'up', '-d', '--no-deps', '--force-recreate', service), {
    label: `docker-compose recreate ${service}`,
    timeoutMs: 300_000,
    onOutput: tick,
  });
}

/** Seconds a gateway may take to begin its in-place restart: it drains running work first. */
const DRAIN_SECONDS = 60;
/** Failed `/readyz` polls in a row (0.1 s apart) that mean the gateway went down, not one slow answer. */
const DOWN_POLLS = 3;

/** How an in-place restart went: done, the signal not taken (or not sent), or down and not back in time. */
export type InPlaceRestart = 'restarted' | 'not-taken' | 'not-back';

/**
 * Restarts the gateway inside its container: SIGUSR2 makes OpenClaw drain and start again in the same process, in a
 * few seconds instead of a container's cold start. Waits on the host until its published `/readyz` stops answering
 * ({@link DOWN_POLLS} failures in a row) and answers again. The caller restarts it another way unless `restarted`.
 */
export async function restartInPlace(
  session: HostSession,
  spec: Spec,
  gateway: ObservedContainer,
  timeoutSeconds: number,
  tick: () => void = () => {},
): Promise<InPlaceRestart> {
  const url = `http://127.0.0.1:${spec.stack.gateway.hostPort}/readyz`;
  const script = [
    `docker kill -s USR2 ${run(gateway.id)} >/dev/null || { echo not-taken; exit 0; }`,
    'start=$(date +%s); down=0; failed=0; n=0',
    'while :; do',
    '  now=$(date +%s); n=$((n + 1)); [ $((n % 10)) -ne 0 ] || echo waiting',
    `  if curl -fsS --max-time 1 -o /dev/null ${run(url)}; then`,
    '    failed=0',
    '    if [ $down -eq 1 ]; then echo restarted; exit 0; fi',
    `    if [ $((now - start)) -ge ${DRAIN_SECONDS} ]; then echo not-taken; exit 0; fi`,
    '  else',
    '    failed=$((failed + 1))',
    `    if [ $down -eq 0 ] && [ $failed -ge ${DOWN_POLLS} ]; then down=1; start=$now; fi`,
    `    if [ $down -eq 1 ] && [ $((now - start)) -ge ${Math.max(1, Math.round(timeoutSeconds))} ]; then echo not-back; exit 0; fi`,
    `    if [ $down -eq 0 ] && [ $((now - start)) -ge ${DRAIN_SECONDS} ]; then echo not-taken; exit 0; fi`,
    '  fi',
    '  sleep 0.1',
    'done',
  ].join('\n');
  const r = await session.check(script, {
    label: 'restart the gateway in place',
    timeoutMs: (DRAIN_SECONDS + timeoutSeconds + 30) * 1000,
    onOutput: tick,
  });
  const outcome = r.stdout.trim().split('\n').at(-1);
  return outcome === 'restarted' || outcome === 'not-back' ? outcome : 'not-taken';
}

/** Restarts within one wait that mean a crash loop rather than a slow start. */
const CRASH_LOOP_RESTARTS = 3;

/**
 * Waits until every service of the stack is running and healthy.
 *
 * By default a container that is unhealthy after its start period, or has restarted {@link CRASH_LOOP_RESTARTS}
 * times, ends the wait at once. `patient` (a running stack restarted onto a new secret, on a host that may be busy)
 * waits out an `unhealthy` state and counts only the restarts seen during this wait.
 * @throws StackUnhealthy after `timeoutSeconds`, or when a container keeps failing, naming each service's state
 * and the tail of its log.
 */
export async function waitHealthy(
  session: HostSession,
  services: readonly string[],
  timeoutSeconds: number,
  tick: () => void = () => {},
  opts: {
    patient?: boolean;
    /**
     * service → an engine timestamp: that service counts as healthy only once a health check started after it has
     * passed (a reload changes nothing the engine's health status would show until the next check).
     */
    checkedAfter?: Readonly<Record<string, string>>;
  } = {},
): Promise<Map<string, ObservedContainer>> {
  const started = Date.now();
  const deadline = started + timeoutSeconds * 1000;
  const restartsBefore = new Map<string, number>();
  const stale = (s: string, c: ObservedContainer) => {
    const after = opts.checkedAfter?.[s];
    if (after === undefined || c.health === undefined) return false;
    return !c.lastCheck || c.lastCheck.exit !== 0 || !(engineTime(c.lastCheck.start) > engineTime(after));
  };
  for (;;) {
    tick();
    const observed = await observeContainers(session);
    if (opts.patient) for (const [s, c] of observed) if (!restartsBefore.has(s)) restartsBefore.set(s, c.restarts);
    const bad = services.filter((s) => {
      const c = observed.get(s);
      return !c || c.status !== 'running' || (c.health !== undefined && c.health !== 'healthy') || stale(s, c);
    });
    if (bad.length === 0) {
      endProgress();
      return observed;
    }
    reportProgress({
      doing: `waiting for ${bad.map((b) => `${b} (${containerState(observed, b)})`).join(', ')} to be healthy`,
      waited: (Date.now() - started) / 1000,
      limit: timeoutSeconds,
    });
    // Restarting over and over, or (unless patient) unhealthy after its start period: waiting longer will not help.
    const crashing = bad.filter((s) => {
      const c = observed.get(s);
      const restarts = (c?.restarts ?? 0) - (restartsBefore.get(s) ?? 0);
      return restarts >= CRASH_LOOP_RESTARTS || (!opts.patient && c?.status === 'running' && c.health === 'unhealthy');
    });
    if (crashing.length > 0 || Date.now() > deadline) {
      const detail = await Promise.all(
        bad.map(async (s) => {
          const c = observed.get(s);
          if (!c) return `${s}: no container`;
          const logs = await session.script(`docker logs --tail 5 ${run(c.id)} 2>&1 | cut -c1-300`);
          const tail = logs.stdout.trim().split('\n').slice(-3).join(' | ');
          const unchecked = c.health === 'healthy' && stale(s, c) ? ' (no passing health check since the reload)' : '';
          return `${s}: ${containerState(observed, s)}${unchecked}, ${c.restarts} restarts, exit ${c.exitCode}${tail ? `; log: ${tail}` : ''}`;
        }),
      );
      endProgress();
      const why = crashing.length > 0 ? 'failing' : `not healthy after ${timeoutSeconds} s`;
      throw new StackUnhealthy(session.target.name, `${why}: ${detail.join('; ')}`);
    }
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/** A service's state as a control value: `running/healthy`, `absent`, … */
export function containerState(containers: Map<string, ObservedContainer>, service: string): string {
  const c = containers.get(service);
  return c ? `${c.status}${c.health ? `/${c.health}` : ''}` : 'absent';
}

// ---------------------------------------------------------------------------------------------------------------
// Validation

/**
 * Runs `openclaw config validate --json` on the candidate config in a throwaway container of the new image, with no
 * network and the stack's secrets mounted as the gateway would see them.
 * @throws ConfigRejected naming each field OpenClaw rejects.
 */
export async function validateConfig(
  session: HostSession,
  spec: Spec,
  rendered: RenderedStack,
  secrets: readonly string[],
): Promise<void> {
  const { layout } = rendered;
  const candidate = `${layout.releaseDir}/candidate/openclaw.json`;
  const config = rendered.files.find((f) => f.path === layout.openclawJson)!;
  await session.writeFile(candidate, config.content, `${spec.stack.uid}:${spec.stack.gid}`, '0600');
  const mounts = secrets.flatMap((s) => ['-v', `${layout.secretsDir}/${s}:/run/secrets/${s}:ro`]);
  const envFile = await session.script(`[ -e ${run(layout.gatewayEnv)} ] && echo yes || true`);
  const argv = [
    'docker',
    'run',
    '--rm',
    '--network',
    'none',
    '--read-only',
    '--user',
    `${spec.stack.uid}:${spec.stack.gid}`,
    '--tmpfs',
    `/tmp:uid=${spec.stack.uid},gid=${spec.stack.gid},mode=0700`,
    '--tmpfs',
    `/home/node:uid=${spec.stack.uid},gid=${spec.stack.gid},mode=0700`,
    '-v',
    `${candidate}:/home/node/.openclaw/openclaw.json:ro`,
    ...mounts,
    ...(envFile.stdout.trim() === 'yes' ? ['--env-file', layout.gatewayEnv] : []),
    spec.stack.image,
    'openclaw',
    'config',
    'validate',
    '--json',
  ];
  const r = await session.script(sh(argv), { timeoutMs: 120_000 });
  let doc: { valid?: boolean; issues?: { path?: string; message?: string }[] };
  try {
    doc = JSON.parse(r.stdout.slice(r.stdout.indexOf('{')));
  } catch {
    throw new UnexpectedHostOutput(
      session.target.name,
      `openclaw config validate printed no JSON (exit ${r.code}): ${r.stderr.trim().slice(-300)}`,
    );
  }
  if (doc.valid === true) return;
  const issues = (doc.issues ?? []).map((i) => ({
    path: String(i.path ?? ''),
    message: String(i.message ?? 'invalid'),
  }));
  throw new ConfigRejected(session.target.name, issues.length > 0 ? issues : [{ path: '', message: 'invalid' }]);
}
