/**
 * Drift: every resource provision, harden and deploy manage, observed in one batched pass (one SSH round trip for
 * all of them), diffed against the spec with the operations' own resource definitions, and classified: intentional
 * when the spec section of the owning operation changed since it last applied on this host, corrective when the
 * host moved. The observed host is also judged by the policy (sshd, secret files, open ports, openclaw.json) and,
 * optionally, by OpenClaw's own `security audit`, reused while what it depends on is unchanged (deploy/audit.ts; its
 * inputs and cache are read in the same batch). Repair is not done here: the workflow re-runs the owning operations,
 * which converge exactly the drifted resources through the same apply code.
 */
import { createHash } from 'node:crypto';
import { evaluatePolicy, type HostFacts } from '../model/policy';
import type { Change, Finding } from '../model/report';
import { stackLayout } from '../model/render/stack';
import type { Spec } from '../model/schema';
import { APPLIED_OPERATIONS, specSection, type AppliedOperation } from '../model/sections';
import { activityStep, targetOf, type ActivityDeps, type StepInput } from './context';
import { catalogue, rendered as renderedStack, type CatalogueEntry } from './catalogue';
import { ageOf, auditInputsProbe, parseAuditInputs, stackAudit, type AuditOutcome } from './deploy/audit';
import { judgeRouting } from '../model/routing';
import { consumedSecrets, rememberExternalSecrets } from './deploy/secrets';
import type { HostSession, ProbeResult } from './host/session';
import { run } from './host/shell';
import { ROOTKIT_SCAN_PROBE, rootkitScanFinding } from './harden/auditing';
import { AIDE_CHECK_PROBE, integrityCheckFinding } from './harden/services';
import { opsUserKeys } from './provision/resources';
import { probeAll } from './resources/resource';

/** Where steward records, per operation, the digest of the spec section it last applied. */
export const APPLIED_RECORD = '/var/lib/steward/applied.json';

export type DriftKind = 'corrective' | 'intentional';

/** One drifted thing: the row of the plan table. */
export interface DriftItem extends Change {
  readonly drift: DriftKind;
  readonly operation: AppliedOperation;
}

export interface DriftResult {
  readonly changes: DriftItem[];
  readonly findings: Finding[];
  /** How many resources were checked. */
  readonly checks: number;
  /** Operations whose resources drifted, in apply order: what a repair re-runs. */
  readonly repair: AppliedOperation[];
}

type DriftCheck = Pick<CatalogueEntry, 'resource' | 'operation' | 'item'>;

/**
 * SHA-256 of each consumed external secret's value, read from its source on the worker now: what the host's file must
 * hold. A source that gives nothing usable leaves that secret compared by owner and mode only (a repair's deploy
 * reports the source itself).
 */
async function externalDigests(spec: Spec, host: string): Promise<Record<string, string>> {
  const values = await rememberExternalSecrets(spec, host);
  return Object.fromEntries(
    Object.entries(values).map(([name, v]) => [name, createHash('sha256').update(v).digest('hex')]),
  );
}

/** Everything provision, harden and deploy manage on `host`, each check once: the whole catalogue. */
export async function driftChecks(spec: Spec, host: string, identityFile?: string): Promise<DriftCheck[]> {
  const [keys, secretDigests] = await Promise.all([
    opsUserKeys(spec, identityFile ? { identityFile } : {}),
    externalDigests(spec, host),
  ]);
  return catalogue({ spec, host, keys, secretDigests });
}

/** Digest of each operation's spec section, as recorded after an apply. */
export function sectionDigests(spec: Spec): Record<AppliedOperation, string> {
  const digest = (v: unknown) => createHash('sha256').update(JSON.stringify(v)).digest('hex').slice(0, 16);
  return Object.fromEntries(APPLIED_OPERATIONS.map((op) => [op, digest(specSection(spec, op))])) as Record<
    AppliedOperation,
    string
  >;
}

/** Host facts the policy judges, probed in the same batch as the resources. */
function factProbes(spec: Spec): Record<string, string> {
  const layout = stackLayout(spec);
  const secretFiles = consumedSecrets(spec).map((n) => `${layout.secretsDir}/${n}`);
  const tokenFile = `${layout.secretsDir}/${spec.stack.gateway.tokenSecret}`;
  return {
    'fact:applied': `cat ${run(APPLIED_RECORD)} 2>/dev/null || echo '{}'`,
    'fact:openclaw': `cat ${run(layout.openclawJson)} 2>/dev/null || true`,
    'fact:secrets': secretFiles.length
      ? `stat -c '%n %a %U %G' ${secretFiles.map((f) => run(f)).join(' ')} 2>/dev/null || true`
      : 'true',
    'fact:token': `if [ -f ${run(tokenFile)} ]; then wc -c < ${run(tokenFile)}; fi`,
    ...(spec.harden.auditing ? { 'fact:rootkit': ROOTKIT_SCAN_PROBE } : {}),
    ...(spec.harden.integrity ? { 'fact:integrity': AIDE_CHECK_PROBE } : {}),
    // Accepting rules for new inbound connections; replies matched by source port (DHCPv6) are not listeners.
    'fact:ports': `nft list chain inet steward input 2>/dev/null | grep -E 'dport [0-9]+ .*accept' | grep -v ' sport ' || true`,
  };
}

function hostFacts(spec: Spec, facts: Record<string, ProbeResult>, sshd: unknown): HostFacts {
  const layout = stackLayout(spec);
  const secretFiles = facts['fact:secrets']!.out.trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const [path = '', mode = '', owner = '', group = ''] = l.split(' ');
      return { path, mode: mode.padStart(4, '0'), owner, group };
    });
  const openPorts = [...facts['fact:ports']!.out.matchAll(/(tcp|udp) dport (\d+)/g)].map((m) => ({
    port: Number(m[2]),
    protocol: m[1] as 'tcp' | 'udp',
  }));
  const tokenLength = Number(facts['fact:token']!.out.trim());
  const sshdMap =
    sshd instanceof Map ? Object.fromEntries([...sshd.entries()].map(([k, v]) => [k, (v as string[]).join(' ')])) : {};
  return {
    sshd: sshdMap,
    secretFiles,
    openPorts,
    ...(Number.isFinite(tokenLength) && tokenLength > 0
      ? { gatewayToken: { path: `${layout.secretsDir}/${spec.stack.gateway.tokenSecret}`, length: tokenLength } }
      : {}),
  };
}

/**
 * JSON key paths where two documents differ (values not reported). An object only one side has is named down its
 * single-key chain — the removed `mcp: {servers: {files: {…}}}` is `mcp.servers.files`, the thing a person removed.
 */
export function differingKeys(a: unknown, b: unknown, prefix = ''): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  const join = (k: string) => (prefix ? `${prefix}.${k}` : k);
  if (isObj(a) && isObj(b)) {
    return [...new Set([...Object.keys(a), ...Object.keys(b)])]
      .sort()
      .flatMap((k) => differingKeys(a[k], b[k], join(k)));
  }
  if ((a === undefined && isObj(b)) || (b === undefined && isObj(a))) {
    const present = (a ?? b) as Record<string, unknown>;
    const keys = Object.keys(present);
    // Down a chain of single-key objects only: `{enabled: true}` removed is its own path, not a changed `enabled`.
    if (keys.length === 1 && isObj(present[keys[0]!])) {
      return differingKeys(a && present[keys[0]!], b && present[keys[0]!], join(keys[0]!));
    }
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix || '(root)'];
}

/** How long drift reuses OpenClaw's audit of unchanged inputs unless told otherwise (audit.ts). */
export const AUDIT_MAX_AGE_MS = 24 * 3600_000;

/**
 * OpenClaw's security audit in the gateway container, as findings: reused from the host's cache while its inputs are
 * unchanged and it is at most `maxAgeMs` old (then an info finding says how old), else run now. No running gateway,
 * or an audit that does not answer (the container is restarting), is itself a finding: the drift plan still reports
 * everything else. `probed` is what {@link auditInputsProbe} printed in the drift batch.
 */
async function auditFindings(
  session: HostSession,
  spec: Spec,
  maxAgeMs: number,
  probed: ProbeResult,
): Promise<{ findings: Finding[]; routing?: AuditOutcome['routing'] }> {
  const unavailable = (why: string) => ({
    findings: [
      {
        id: 'openclaw.audit.unavailable',
        severity: 'medium' as const,
        message: `OpenClaw's security audit did not run: ${why}`,
      },
    ],
  });
  const observed = parseAuditInputs(probed.out);
  const container = observed.container;
  if (!container) return unavailable('no running gateway container');
  const audit = await stackAudit(session, spec, container, maxAgeMs, new Date(), observed);
  if ('error' in audit) return unavailable(audit.error);
  const reused: Finding[] = audit.cached
    ? [
        {
          id: 'openclaw.audit.cached',
          severity: 'info',
          message:
            `OpenClaw's security audit from ${ageOf(audit.at)} (${audit.at}) reused: the gateway, openclaw.json and ` +
            'the state permissions are unchanged since (`steward drift --audit` runs it now)',
        },
      ]
    : [];
  return { findings: [...reused, ...audit.findings], routing: audit.routing };
}

/**
 * The gateway's model routing against the spec's (model/routing.ts): each difference a deploy row, as a file's would
 * be, since a deploy renders the config and environment the routing comes from; a provider an auth profile in the
 * agent's state makes usable is a finding instead (no repair takes it away). Routing that could not be read is a
 * finding.
 */
function routingRows(
  spec: Spec,
  routing: AuditOutcome['routing'] | undefined,
): { rows: Change[]; findings: Finding[] } {
  if (!routing) return { rows: [], findings: [] };
  const { differences, findings } = judgeRouting(spec, routing);
  const rows = differences.map((d): Change => ({
    resource: d.resource,
    action: d.expected === undefined ? 'delete' : d.observed === undefined ? 'create' : 'update',
    before: d.observed,
    after: d.expected,
  }));
  return { rows, findings };
}

/** Observes, diffs and classifies every managed resource of the host in one batch. Changes nothing. */
export async function observeDrift(
  session: HostSession,
  spec: Spec,
  checks: readonly DriftCheck[],
  audit: boolean,
  auditMaxAgeMs: number = AUDIT_MAX_AGE_MS,
): Promise<DriftResult> {
  // The audit's inputs first: two docker commands, the longest of the facts.
  const extra: Record<string, string> = {
    ...(audit ? { 'fact:audit': auditInputsProbe(spec) } : {}),
    ...factProbes(spec),
  };
  const { results, extra: facts } = await probeAll(
    session,
    checks.map((c) => c.resource),
    extra,
  );
  // The audit's inputs and cache came with the batch: a second round trip only when the audit must run now.
  const auditResult = audit ? await auditFindings(session, spec, auditMaxAgeMs, facts['fact:audit']!) : undefined;
  const routed = routingRows(spec, auditResult?.routing);

  let applied: Partial<Record<AppliedOperation, string>> = {};
  try {
    applied = JSON.parse(facts['fact:applied']!.out) as typeof applied;
  } catch {
    applied = {};
  }
  const current = sectionDigests(spec);
  const kind = (op: AppliedOperation): DriftKind => (applied[op] === current[op] ? 'corrective' : 'intentional');
  // Only what steward applied here can have drifted: a host that was provisioned but never deployed has a deploy to
  // do, not deploy drift. A host with no record at all is compared with everything.
  const recorded = APPLIED_OPERATIONS.filter((op) => applied[op] !== undefined);
  const compared = recorded.length > 0 ? recorded : APPLIED_OPERATIONS;
  const notApplied = APPLIED_OPERATIONS.filter((op) => !compared.includes(op));

  const layout = stackLayout(spec);
  const rendered = renderedStack(spec);
  const rows = new Map<string, DriftItem>();
  let sshd: unknown;
  checks.forEach((c, i) => {
    const observed = c.resource.parse(results[i]!);
    if (c.resource.id === 'sshd:effective') sshd = observed;
    if (!compared.includes(c.operation)) return;
    for (const change of c.resource.diff(observed)) {
      // A foreign file that overrides a managed setting is a row of its own, named by its path.
      const key = change.resource.startsWith('override:') ? change.resource : (c.item ?? change.resource);
      let before = change.before;
      if (change.resource === `file:${layout.openclawJson}` && change.action === 'update') {
        const live = facts['fact:openclaw']!.out;
        const want = rendered.files.find((f) => f.path === layout.openclawJson)!.content;
        try {
          before = { ...(change.before as object), keys: differingKeys(JSON.parse(want), JSON.parse(live)) };
        } catch {
          before = { ...(change.before as object), keys: ['(not JSON)'] };
        }
      }
      const prev = rows.get(key);
      rows.set(key, {
        resource: key,
        action: prev && prev.action !== change.action ? 'update' : change.action,
        before: prev ? { ...(prev.before as object), ...(before as object) } : before,
        after: prev ? { ...(prev.after as object), ...(change.after as object) } : change.after,
        drift: kind(c.operation),
        operation: c.operation,
      });
    }
  });

  if (compared.includes('deploy')) {
    for (const row of routed.rows) rows.set(row.resource, { ...row, drift: kind('deploy'), operation: 'deploy' });
  }

  let openclaw: unknown;
  try {
    openclaw = facts['fact:openclaw']!.out.trim() ? JSON.parse(facts['fact:openclaw']!.out) : undefined;
  } catch {
    openclaw = undefined;
  }
  const policy: Finding[] = evaluatePolicy(
    { spec, host: hostFacts(spec, facts, sshd), ...(openclaw !== undefined ? { openclaw } : {}) },
    spec.policy,
  ).map((f) => ({ id: f.id, severity: f.severity, message: `${f.message} (${f.path})`, resource: f.subject }));

  const changes = [...rows.values()];
  const repair = APPLIED_OPERATIONS.filter((op) => changes.some((c) => c.operation === op));
  const checked: Finding = {
    id: 'drift.checked',
    severity: 'info',
    message: `${checks.length} resources checked in one batch${audit ? ", plus OpenClaw's security audit and model routing" : ''}`,
  };
  const skipped: Finding[] = notApplied.length
    ? [
        {
          id: 'drift.not-applied',
          severity: 'info',
          message: `${notApplied.join(' and ')} never applied on this host (${APPLIED_RECORD}): not compared`,
        },
      ]
    : [];
  // The last rootkit scan's warnings, once harden has put the scanner in place.
  const rootkit =
    facts['fact:rootkit'] && compared.includes('harden')
      ? [rootkitScanFinding(facts['fact:rootkit'].out, Date.now())]
      : [];
  const integrity =
    facts['fact:integrity'] && compared.includes('harden')
      ? [integrityCheckFinding(facts['fact:integrity'].out, Date.now())]
      : [];
  return {
    changes,
    findings: [
      checked,
      ...skipped,
      ...policy,
      ...rootkit,
      ...integrity,
      ...(auditResult?.findings ?? []),
      ...routed.findings,
    ],
    checks: checks.length,
    repair,
  };
}

export function createDriftActivities({ pool }: ActivityDeps) {
  return {
    /** Plans drift for the host: every managed resource, the policy on the observed host, optionally the audit. */
    async observeDrift(input: StepInput & { audit?: boolean; auditMaxAgeMs?: number }): Promise<DriftResult> {
      return activityStep(async () => {
        const target = targetOf(input);
        const s = await pool.get(target);
        const checks = await driftChecks(input.spec, input.host, target.identityFile);
        return observeDrift(s, input.spec, checks, input.audit ?? true, input.auditMaxAgeMs ?? AUDIT_MAX_AGE_MS);
      });
    },

    /** Records the digest of the spec section an operation just applied (drift's intentional/corrective line). */
    async recordApplied(input: StepInput & { operation: AppliedOperation }): Promise<void> {
      return activityStep(async () => {
        const s = await pool.get(targetOf(input));
        const r = await s.script(`cat ${run(APPLIED_RECORD)} 2>/dev/null || echo '{}'`);
        let record: Record<string, string> = {};
        try {
          record = JSON.parse(r.stdout) as Record<string, string>;
        } catch {
          record = {};
        }
        const digest = sectionDigests(input.spec)[input.operation];
        if (record[input.operation] === digest) return;
        const next = `${JSON.stringify({ ...record, [input.operation]: digest }, null, 2)}\n`;
        await s.writeFile(APPLIED_RECORD, next, 'root:root', '0600');
      });
    },
  };
}
