/**
 * OpenClaw's own security audit (`openclaw security audit --json` inside the gateway), and its cache on the host.
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
import { GATEWAY_SERVICE, stackLayout } from '../../model/render/stack';
import type { Spec } from '../../model/schema';
import type { HostSession } from '../host/session';
import { sh } from '../host/shell';

export const AUDIT_CACHE = '/var/lib/steward/openclaw-audit.json';

const SEVERITY: Record<string, Severity> = { critical: 'critical', warn: 'medium' };

/** One audit's outcome: its findings (info ones left out), its counts, when it ran, and whether it was reused. */
export interface AuditOutcome {
  readonly findings: Finding[];
  readonly critical: number;
  readonly warn: number;
  /** ISO time the audit ran. */
  readonly at: string;
  /** Reused from the cache (inputs unchanged), not run now. */
  readonly cached: boolean;
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
});

/** Runs the audit in `container` now. */
export async function runAudit(session: HostSession, container: string): Promise<AuditOutcome | { error: string }> {
  const at = new Date().toISOString();
  const r = await session.script(sh(['docker', 'exec', container, 'openclaw', 'security', 'audit', '--json']), {
    timeoutMs: 120_000,
  });
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
  };
}

/** Digest of what the audit in `container` depends on, and the cached result (undefined when absent or unusable). */
async function inputsAndCache(
  session: HostSession,
  spec: Spec,
  container: string,
): Promise<{ inputs: string; cache?: z.infer<typeof cacheSchema> }> {
  const layout = stackLayout(spec);
  const state = spec.stack.volumes.find((v) => v.name === 'state')!.path;
  const script = [
    'c=$1 json=$2 state=$3 cache=$4',
    `docker inspect -f '{{.Id}} {{.Image}} {{.State.StartedAt}}' "$c" 2>&1`,
    'sha256sum "$json" 2>&1',
    `find "$state" -maxdepth 2 -printf '%m %U %G %y %P\\n' 2>&1 | LC_ALL=C sort`,
    'echo "--- cache"',
    'cat "$cache" 2>/dev/null || true',
  ].join('\n');
  const r = await session.script(sh(['sh', '-c', script, 'sh', container, layout.openclawJson, state, AUDIT_CACHE]));
  const at = r.stdout.indexOf('\n--- cache\n');
  const inputs = createHash('sha256')
    .update(at === -1 ? r.stdout : r.stdout.slice(0, at))
    .digest('hex');
  if (at === -1) return { inputs };
  let cache: z.infer<typeof cacheSchema> | undefined;
  try {
    const parsed = cacheSchema.safeParse(JSON.parse(r.stdout.slice(at + '\n--- cache\n'.length)));
    cache = parsed.success ? parsed.data : undefined;
  } catch {
    cache = undefined;
  }
  return cache ? { inputs, cache } : { inputs };
}

async function writeCache(session: HostSession, inputs: string, outcome: AuditOutcome): Promise<void> {
  const { findings, critical, warn, at } = outcome;
  await session.writeFile(
    AUDIT_CACHE,
    `${JSON.stringify({ inputs, at, critical, warn, findings })}\n`,
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
): Promise<AuditOutcome | { error: string }> {
  const { inputs, cache } = await inputsAndCache(session, spec, container);
  const age = cache ? now.getTime() - Date.parse(cache.at) : Infinity;
  if (cache && cache.inputs === inputs && age >= 0 && age <= maxAgeMs) {
    return { findings: cache.findings, critical: cache.critical, warn: cache.warn, at: cache.at, cached: true };
  }
  const outcome = await runAudit(session, container);
  if ('error' in outcome) return outcome;
  // Inputs read after the run: a restart or an edit while it ran must not be cached as audited.
  const after = await inputsAndCache(session, spec, container);
  if (after.inputs === inputs) await writeCache(session, inputs, outcome).catch(() => undefined);
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
