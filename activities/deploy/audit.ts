/**
 * OpenClaw's own security audit (`openclaw security audit --json` inside the gateway), and its cache on the host.
 * The model routing the gateway resolved (`openclaw models status --json`, model/routing.ts) is read beside it and
 * cached with it: it depends on the same inputs, and costs the same kind of Node process.
 *
 * The audit is a Node process in the container and costs seconds of CPU, so its result is kept on the host
 * ({@link AUDIT_CACHE}, root only, outside every container's mounts) with a digest of what it depends on: the
 * gateway container (id, image, start time: a new image, a new env or a restart), the bytes of openclaw.json, and the
 * mode and owner of everything in the state directory down to two levels. Drift reuses a cached result while that
 * digest is unchanged and the result is younger than its maximum age; deploy verification always runs it and
 * refreshes the cache. The cache is parsed as untrusted input: anything unexpected in it is a miss.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { Finding, Severity } from '../../model/report';
import { COMPOSE_PROJECT, GATEWAY_SERVICE, stackLayout } from '../../model/render/stack';
import type { Spec } from '../../model/schema';
import { parseModelsStatus, routingSchema, type Routing } from '../../model/routing';
import type { HostSession } from '../host/session';
import { run, sh } from '../host/shell';
import { DOCKER_SOCKET } from './stack';

export const AUDIT_CACHE = '/var/lib/steward/openclaw-audit.json';

const SEVERITY: Record<string, Severity> = { critical: 'critical', warn: 'medium' };

/**
 * One audit's outcome: its findings (info ones left out), its counts, when it ran, and whether it was reused; with it,
 * the model routing the gateway resolved (`openclaw models status`: the same inputs decide it, so it is run and cached
 * together), or why that could not be read.
 */
export interface AuditOutcome {
  readonly findings: Finding[];
  readonly critical: number;
  readonly warn: number;
  /** ISO time the audit ran. */
  readonly at: string;
  /** Reused from the cache (inputs unchanged), not run now. */
  readonly cached: boolean;
  readonly routing: Routing | { readonly error: string };
}

const findingSchema = z.object({
  id: z.string().max(200),
  severity: z.enum(['critical', 'medium']),
  message: z.string().max(1000),
  resource: z.string().max(200).optional(),
});
const cacheSchema = z.object({
  inputs: z.string().regex(/^[0-9a-f]{64}$/),
  at: z.iso.datetime(),
  critical: z.number().int().nonnegative(),
  warn: z.number().int().nonnegative(),
  findings: z.array(findingSchema).max(500),
  routing: z.union([routingSchema, z.strictObject({ error: z.string().max(500) })]),
});

/** How long one OpenClaw command may run in the gateway container. */
const OPENCLAW_SECONDS = 100;

/**
 * `openclaw <args…>` in `container`, under a timeout of its own there (a `docker exec` client that is killed leaves
 * its process running in the container); exit 124 says it ran out of time ({@link ranOutOfTime}).
 */
export function openclawIn(
  session: HostSession,
  container: string,
  args: readonly string[],
  seconds: number = OPENCLAW_SECONDS,
) {
  const command = ['docker', 'exec', container, 'timeout', '-k', '5', String(seconds), 'openclaw', ...args];
  // Labelled by its subcommand words (those before the first option): never an option's value.
  const firstOption = args.findIndex((a) => a.startsWith('-'));
  const words = (firstOption === -1 ? args : args.slice(0, firstOption)).slice(0, 2);
  return session.script(sh(command), { timeoutMs: (seconds + 20) * 1000, label: ['openclaw', ...words].join(' ') });
}

/** Whether a read's error says its command ran out of time: reading again would only wait as long again. */
export const ranOutOfTime = (error: string) => error.includes('(exit 124)');

/**
 * `openclaw <args…> --json` in `container`, its document read by `parse` (untrusted host output); what could not be
 * read is `{error}` naming the command, its exit code and the fault — never a throw, so a caller can read again.
 */
export async function readOpenclaw<T>(
  session: HostSession,
  container: string,
  args: readonly string[],
  parse: (stdout: string) => T,
): Promise<T | { error: string }> {
  const r = await openclawIn(session, container, args);
  try {
    return parse(r.stdout);
  } catch (err) {
    const command = args.filter((a) => !a.startsWith('--')).join(' ');
    return { error: `openclaw ${command} (exit ${r.code}): ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** The gateway's model routing, read in `container` now. */
export function readRouting(session: HostSession, container: string): Promise<AuditOutcome['routing']> {
  return readOpenclaw(session, container, ['models', 'status', '--json'], parseModelsStatus);
}

/** Runs the audit in `container` now, and reads the model routing beside it. */
export async function runAudit(session: HostSession, container: string): Promise<AuditOutcome | { error: string }> {
  const at = new Date().toISOString();
  const [r, routing] = await Promise.all([
    openclawIn(session, container, ['security', 'audit', '--json']),
    readRouting(session, container),
  ]);
  let doc: {
    summary?: { critical?: number; warn?: number };
    findings?: { checkId?: unknown; severity?: unknown; title?: unknown }[];
  };
  try {
    doc = JSON.parse(r.stdout.slice(r.stdout.indexOf('{'))) as typeof doc;
  } catch {
    return { error: `it printed no JSON (exit ${r.code})` };
  }
  const findings: Finding[] = (Array.isArray(doc.findings) ? doc.findings : [])
    .filter((f) => f.severity !== 'info')
    .map((f) => ({
      id: `openclaw.audit.${String(f.checkId)}`,
      severity: SEVERITY[String(f.severity)] ?? 'medium',
      message: String(f.title),
      resource: `container:${GATEWAY_SERVICE}`,
    }));
  const count = (n: unknown, fallback: number) => (typeof n === 'number' && n >= 0 ? Math.floor(n) : fallback);
  return {
    findings,
    critical: count(doc.summary?.critical, findings.filter((f) => f.severity === 'critical').length),
    warn: count(doc.summary?.warn, findings.filter((f) => f.severity === 'medium').length),
    at,
    cached: false,
    routing,
  };
}

/** What {@link auditInputsProbe} observed: the container, the digest of what its audit depends on, the cache. */
export interface AuditInputs {
  /** The gateway container's id; undefined when none is running (or the host printed no id). */
  readonly container?: string;
  readonly inputs: string;
  readonly cache?: z.infer<typeof cacheSchema>;
}

const INPUTS_MARK = '--- inputs\n';
const CACHE_MARK = '\n--- cache\n';

/**
 * A probe printing what the audit of `container` depends on (or of the running gateway, looked up by its compose
 * labels, when no container is given) and the cached result: one round trip, so drift runs it in its own batch.
 * The container's id, image and start time come from the engine's API through `socket` with curl (a curl process
 * costs a third of a docker CLI one), else from the docker CLI; a host answers the same way each time, so deploy's
 * digest and drift's agree.
 */
export function auditInputsProbe(spec: Spec, container?: string, socket: string = DOCKER_SOCKET): string {
  const layout = stackLayout(spec);
  const state = spec.stack.volumes.find((v) => v.name === 'state')!.path;
  const labels = [`com.docker.compose.project=${COMPOSE_PROJECT}`, `com.docker.compose.service=${GATEWAY_SERVICE}`];
  const filters = encodeURIComponent(JSON.stringify({ label: labels, status: ['running'] }));
  const api = (path: string) => `curl -sf --unix-socket ${run(socket)} ${path}`;
  const field = (re: string) => `grep -o ${run(re)} | head -n 1 | cut -d'"' -f4`;
  const c = '"$steward_audit_c"';
  const viaApi = [
    `  steward_audit_c=${container === undefined ? `$(${api(run(`http://docker/containers/json?filters=${filters}`))} | ${field('"Id":"[0-9a-f]*"')})` : run(container)}`,
    `  printf '%s\\n' ${c}`,
    `  if [ -n ${c} ]; then`,
    `    echo ${run(INPUTS_MARK.trim())}`,
    `    steward_audit_j=$(${api(`"http://docker/containers/$steward_audit_c/json"`)})`,
    `    printf '%s %s %s\\n' "$(printf '%s' "$steward_audit_j" | ${field('"Id":"[0-9a-f]*"')})" "$(printf '%s' "$steward_audit_j" | ${field('"Image":"sha256:[0-9a-f]*"')})" "$(printf '%s' "$steward_audit_j" | ${field('"StartedAt":"[^"]*"')})"`,
    '  fi',
  ];
  const viaCli = [
    `  steward_audit_c=${container === undefined ? `$(docker ps -q ${labels.map((l) => `--filter ${run(`label=${l}`)}`).join(' ')} --filter status=running | head -n 1)` : run(container)}`,
    `  printf '%s\\n' ${c}`,
    `  if [ -n ${c} ]; then`,
    `    echo ${run(INPUTS_MARK.trim())}`,
    `    docker inspect -f '{{.Id}} {{.Image}} {{.State.StartedAt}}' ${c} 2>&1`,
    '  fi',
  ];
  return [
    `if command -v curl >/dev/null && [ -S ${run(socket)} ]; then`,
    ...viaApi,
    'else',
    ...viaCli,
    'fi',
    `if [ -n ${c} ]; then`,
    `  sha256sum ${run(layout.openclawJson)} 2>&1`,
    `  find ${run(state)} -maxdepth 2 -printf '%m %U %G %y %P\\n' 2>&1 | LC_ALL=C sort`,
    `  echo ${run(CACHE_MARK.trim())}`,
    `  cat ${run(AUDIT_CACHE)} 2>/dev/null || true`,
    'fi',
  ].join('\n');
}

/**
 * Parses {@link auditInputsProbe}'s output, as untrusted input: a cache that does not parse, or fit, is no cache. The
 * state directory's listing holds names the agent's container chose (a newline and a forged cache mark included), so
 * the cache is what follows the last mark: the cache file itself is one line of JSON.
 */
export function parseAuditInputs(out: string): AuditInputs {
  const newline = out.indexOf('\n');
  const id = newline === -1 ? '' : out.slice(0, newline);
  const container = /^[0-9a-f]{12,64}$/.test(id) ? id : undefined;
  const from = out.indexOf(INPUTS_MARK);
  const body = from === -1 ? '' : out.slice(from + INPUTS_MARK.length);
  const at = body.lastIndexOf(CACHE_MARK);
  const inputs = createHash('sha256')
    .update(at === -1 ? body : body.slice(0, at))
    .digest('hex');
  if (!container || from === -1 || at === -1) return container ? { container, inputs } : { inputs };
  let cache: z.infer<typeof cacheSchema> | undefined;
  try {
    const parsed = cacheSchema.safeParse(JSON.parse(body.slice(at + CACHE_MARK.length)));
    cache = parsed.success ? parsed.data : undefined;
  } catch {
    cache = undefined;
  }
  return cache ? { container, inputs, cache } : { container, inputs };
}

async function inputsAndCache(session: HostSession, spec: Spec, container: string): Promise<AuditInputs> {
  const r = await session.script(auditInputsProbe(spec, container));
  return parseAuditInputs(r.stdout);
}

async function writeCache(session: HostSession, inputs: string, outcome: AuditOutcome): Promise<void> {
  const { findings, critical, warn, at, routing } = outcome;
  await session.writeFile(
    AUDIT_CACHE,
    `${JSON.stringify({ inputs, at, critical, warn, findings, routing })}\n`,
    'root:root',
    '0600',
  );
}

/**
 * The audit of `container`: the cached one when its inputs are unchanged and it is at most `maxAgeMs` old (0: never
 * reuse), else a fresh run, which then replaces the cache. A cache that cannot be written only costs the next run.
 */
export async function stackAudit(
  session: HostSession,
  spec: Spec,
  container: string,
  maxAgeMs: number,
  now: Date = new Date(),
  observed?: AuditInputs,
): Promise<AuditOutcome | { error: string }> {
  const { inputs, cache } =
    observed?.container === container ? observed : await inputsAndCache(session, spec, container);
  const age = cache ? now.getTime() - Date.parse(cache.at) : Infinity;
  if (cache && cache.inputs === inputs && age >= 0 && age <= maxAgeMs) {
    const { findings, critical, warn, at, routing } = cache;
    return { findings, critical, warn, at, cached: true, routing };
  }
  const outcome = await runAudit(session, container);
  if ('error' in outcome) return outcome;
  // Inputs read after the run: a restart or an edit while it ran must not be cached as audited.
  const after = await inputsAndCache(session, spec, container);
  // A routing that could not be read is not kept for a day: the next drift tries again.
  if (after.inputs === inputs && !('error' in outcome.routing)) {
    await writeCache(session, inputs, outcome).catch(() => undefined);
  }
  return outcome;
}

/** "12 min ago", "3 h ago": how old a reused audit is. */
export function ageOf(at: string, now: Date = new Date()): string {
  const s = Math.max(0, Math.round((now.getTime() - Date.parse(at)) / 1000));
  if (s < 90) return `${s} s ago`;
  if (s < 90 * 60) return `${Math.round(s / 60)} min ago`;
  if (s < 48 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}
