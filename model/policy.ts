/**
 * Governance: rules that keep bad states from existing. Each rule has a stable id, a severity and a message, and
 * reads parts of a policy subject — the spec, an openclaw.json, facts observed on a host — so the same rules run on
 * the spec before anything is applied (with the openclaw.json steward will render) and on what drift observes.
 * A rule whose parts are absent is skipped, not passed.
 *
 * Findings name the offending path and the value observed there, never a secret: a short token is reported by its
 * length, and a user rule pointed at a secret-looking key reports `(redacted)`. Pure and free of zod (its schemas
 * are in policy-schema.ts): workflows import it.
 *
 * OpenClaw paths and `auditCheckId`s come from OpenClaw's configuration and `openclaw security audit` docs.
 */
import type { HostFacts, Matcher, PolicyConfig, PolicySeverity, UserRule } from './policy-schema';
import type { Spec } from './schema';
import { formatPath } from './validate';

export type { HostFacts, PolicyConfig, PolicyConfigInput, PolicySeverity } from './policy-schema';

// ---------------------------------------------------------------------------------------------------------------
// Subjects and findings

/** Lower sorts first. */
const RANK: Record<PolicySeverity, number> = { critical: 0, high: 1, medium: 2, low: 3 };

/** Shorter gateway tokens are refused; OpenClaw's own audit warns below 24. */
export const MIN_GATEWAY_TOKEN_LENGTH = 32;

/** What rules are evaluated over. */
export interface PolicySubject {
  readonly spec?: Spec;
  /** An openclaw.json document: the one steward renders, or the one found on a host. */
  readonly openclaw?: unknown;
  readonly host?: HostFacts;
}

/** A part of the subject a rule reads: a top-level part or one host fact. */
export type SubjectPart = 'spec' | 'openclaw' | 'host' | `host.${keyof HostFacts & string}`;

/** A value as findings report it: scalars only; objects and arrays are described, secrets redacted. */
export type Observed = string | number | boolean | null;

export interface PolicyFinding {
  /** The rule's id. With `severity` and `message` this is a report `Finding`. */
  readonly id: string;
  readonly severity: PolicySeverity;
  readonly message: string;
  /** What `path` points into: steward.yaml, openclaw.json or the host. */
  readonly subject: 'spec' | 'openclaw' | 'host';
  /** `gateway.bind`, `agents.list[0].sandbox.docker.dangerouslyAllowExternalBindSources`; on hosts
   * `sshd.<keyword>`, a file path, or `<port>/<protocol>`. */
  readonly path: string;
  /** The value found at `path`; absent when the rule found the path missing. Never a secret. */
  readonly observed?: Observed;
}

/** One place a rule found violated. */
export interface Violation {
  readonly path: string;
  readonly observed?: Observed;
}

export interface PolicyRule {
  readonly id: string;
  readonly severity: PolicySeverity;
  readonly message: string;
  /** Parts the rule reads; it is skipped when any is absent. Its findings point into the first. */
  readonly needs: readonly [SubjectPart, ...SubjectPart[]];
  /** The `openclaw security audit` check covering the same ground, for operators who know that name. */
  readonly auditCheckId?: string;
  readonly evaluate: (subject: PolicySubject) => Violation[];
}

// ---------------------------------------------------------------------------------------------------------------
// Paths: `gateway.bind`, `agents.list[*].sandbox`, `hooks.**.allowUnsafeExternalContent`

type Segment = string | number;

interface Match {
  readonly path: readonly Segment[];
  readonly value: unknown;
}

/** `agents.list[*].sandbox` → `['agents', 'list', '*', 'sandbox']`. */
function segments(path: string): string[] {
  return path.replace(/\[([^\]]*)\]/g, '.$1').split('.');
}

function children(value: unknown): [Segment, unknown][] {
  if (Array.isArray(value)) return value.map((v, i) => [i, v]);
  if (typeof value === 'object' && value !== null) return Object.entries(value);
  return [];
}

/** Whether a path segment matches a key: `*` matches any key or index, `dangerouslyAllow*` any key so prefixed. */
function segmentMatches(pattern: string, key: Segment): boolean {
  if (!pattern.includes('*')) return pattern === String(key);
  const escaped = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`^${escaped.join('.*')}$`).test(String(key));
}

function selectFrom(value: unknown, pattern: readonly string[], at: readonly Segment[]): Match[] {
  if (value === undefined) return [];
  const [head, ...rest] = pattern;
  if (head === undefined) return [{ path: at, value }];
  if (head === '**') {
    // Zero levels, or one level deeper with `**` still to match.
    const deeper = children(value).flatMap(([key, child]) => selectFrom(child, pattern, [...at, key]));
    return [...selectFrom(value, rest, at), ...deeper];
  }
  return children(value)
    .filter(([key]) => segmentMatches(head, key))
    .flatMap(([key, child]) => selectFrom(child, rest, [...at, key]));
}

/** Every value at `path` in `root`: `*` matches one key or index (or part of a key), `**` any depth. */
function select(root: unknown, path: string): Match[] {
  return selectFrom(root, segments(path), []);
}

function get(root: unknown, path: string): unknown {
  return select(root, path)[0]?.value;
}

/** Matches `token`, `botToken`, `password`, `apiKey`, `clientSecret`, `credentials`, `privateKey`. */
const SECRET_KEY = /token|passw|secret|credential|api_?key|private_?key/i;

/** A found value as a finding may show it. */
function observed({ path, value }: Match): Observed {
  if (Array.isArray(value)) return '(array)';
  if (typeof value === 'object' && value !== null) return '(object)';
  if (typeof value === 'string' && path.some((s) => typeof s === 'string' && SECRET_KEY.test(s))) return '(redacted)';
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  return null;
}

const violation = (match: Match): Violation => ({ path: formatPath(match.path), observed: observed(match) });

// ---------------------------------------------------------------------------------------------------------------
// Built-in rules

type RuleInfo = Pick<PolicyRule, 'id' | 'severity' | 'message' | 'auditCheckId'>;

/** A rule over openclaw.json: every value at `paths` that `bad` holds for is a violation. */
function openclawRule(rule: RuleInfo & { paths: readonly string[]; bad: (value: unknown) => boolean }): PolicyRule {
  const { paths, bad, ...info } = rule;
  return {
    ...info,
    needs: ['openclaw'],
    evaluate: ({ openclaw }) =>
      paths
        .flatMap((p) => select(openclaw, p))
        .filter((m) => bad(m.value))
        .map(violation),
  };
}

const isTrue = (v: unknown) => v === true;

/** Global exec tool settings and their per-agent overrides (keyed `agents.entries`, legacy `agents.list`). */
const EXEC_SCOPES = ['tools.exec', 'agents.entries.*.tools.exec', 'agents.list[*].tools.exec'];
const SANDBOX_SCOPES = ['agents.defaults.sandbox', 'agents.entries.*.sandbox', 'agents.list[*].sandbox'];

/** Whether a `gateway.auth.token`/`password` is set: a literal string or a SecretRef object. */
const isSet = (v: unknown) => (typeof v === 'string' && v.length > 0) || (typeof v === 'object' && v !== null);

/** A whole value of env substitutions such as `${OPENCLAW_GATEWAY_TOKEN}`: not a literal, its length unknown here. */
const isEnvReference = (s: string) => /^(\$\{[A-Z_][A-Z0-9_]*\})+$/.test(s);

const OPENCLAW_RULES: readonly PolicyRule[] = [
  openclawRule({
    id: 'openclaw.control-ui.insecure-auth',
    severity: 'critical',
    message: 'The Control UI accepts token-only auth over insecure HTTP',
    auditCheckId: 'config.insecure_or_dangerous_flags',
    paths: ['gateway.controlUi.allowInsecureAuth'],
    bad: isTrue,
  }),
  openclawRule({
    id: 'openclaw.control-ui.device-auth-disabled',
    severity: 'critical',
    message: 'Control UI device identity checks are disabled',
    auditCheckId: 'config.insecure_or_dangerous_flags',
    paths: ['gateway.controlUi.dangerouslyDisableDeviceAuth'],
    bad: isTrue,
  }),
  openclawRule({
    id: 'openclaw.control-ui.host-header-origin-fallback',
    severity: 'high',
    message: 'The Control UI trusts the Host header as origin (weakens DNS-rebinding protection)',
    auditCheckId: 'gateway.control_ui.host_header_origin_fallback',
    paths: ['gateway.controlUi.dangerouslyAllowHostHeaderOriginFallback'],
    bad: isTrue,
  }),
  openclawRule({
    id: 'openclaw.hooks.unsafe-external-content',
    severity: 'high',
    message: 'A hook passes external content to agents without the safety wrapping',
    auditCheckId: 'config.insecure_or_dangerous_flags',
    paths: ['hooks.**.allowUnsafeExternalContent'],
    bad: isTrue,
  }),
  openclawRule({
    id: 'openclaw.tools.apply-patch-outside-workspace',
    severity: 'high',
    message: 'apply_patch may write and delete outside the agent workspace',
    auditCheckId: 'config.insecure_or_dangerous_flags',
    paths: EXEC_SCOPES.map((s) => `${s}.applyPatch.workspaceOnly`),
    bad: (v) => v === false,
  }),
  openclawRule({
    id: 'openclaw.sandbox.dangerous-allow',
    severity: 'critical',
    message: 'A sandbox break-glass option (dangerouslyAllow*) is on',
    paths: SANDBOX_SCOPES.map((s) => `${s}.**.dangerouslyAllow*`),
    bad: isTrue,
  }),
  openclawRule({
    id: 'openclaw.browser.private-network',
    severity: 'high',
    message: 'The browser may navigate to private and internal network addresses',
    paths: ['browser.ssrfPolicy.dangerouslyAllowPrivateNetwork', 'browser.ssrfPolicy.allowPrivateNetwork'],
    bad: isTrue,
  }),
  openclawRule({
    id: 'openclaw.gateway.auth-none',
    severity: 'critical',
    message: 'Gateway authentication is off',
    auditCheckId: 'gateway.http.no_auth',
    paths: ['gateway.auth.mode'],
    bad: (v) => v === 'none',
  }),
  {
    id: 'openclaw.gateway.bind-no-auth',
    severity: 'critical',
    message: 'The gateway listens beyond loopback without token, password or trusted-proxy auth',
    auditCheckId: 'gateway.bind_no_auth',
    needs: ['openclaw'],
    evaluate: ({ openclaw }) => {
      const bind = get(openclaw, 'gateway.bind');
      if (bind === undefined || bind === 'loopback') return [];
      const mode = get(openclaw, 'gateway.auth.mode');
      const secured =
        mode === undefined
          ? isSet(get(openclaw, 'gateway.auth.token')) || isSet(get(openclaw, 'gateway.auth.password'))
          : mode === 'token' || mode === 'password' || mode === 'trusted-proxy';
      return secured ? [] : select(openclaw, 'gateway.bind').map(violation);
    },
  },
  {
    id: 'openclaw.gateway.token-too-short',
    severity: 'high',
    message: `The gateway token is shorter than ${MIN_GATEWAY_TOKEN_LENGTH} characters (observed: its length)`,
    auditCheckId: 'gateway.token_too_short',
    needs: ['openclaw'],
    evaluate: ({ openclaw }) => {
      const token = get(openclaw, 'gateway.auth.token');
      if (typeof token !== 'string' || isEnvReference(token) || token.length >= MIN_GATEWAY_TOKEN_LENGTH) return [];
      return [{ path: 'gateway.auth.token', observed: token.length }];
    },
  },
  openclawRule({
    id: 'openclaw.tools.exec-security-full',
    severity: 'medium',
    message: 'Host exec runs any command without approval (security "full")',
    auditCheckId: 'tools.exec.security_full_configured',
    paths: EXEC_SCOPES.flatMap((s) => [`${s}.security`, `${s}.mode`]),
    bad: (v) => v === 'full',
  }),
  openclawRule({
    id: 'openclaw.channels.dm-open',
    severity: 'critical',
    message: 'Anyone can message the agent directly (DM policy "open")',
    auditCheckId: 'channels.<provider>.dm.open',
    paths: ['channels.**.dmPolicy', 'channels.**.dm.policy'],
    bad: (v) => v === 'open',
  }),
  openclawRule({
    id: 'openclaw.channels.group-open',
    severity: 'high',
    message: 'Any group can reach the agent (group policy "open")',
    auditCheckId: 'security.exposure.open_groups_with_runtime_or_fs',
    paths: ['channels.**.groupPolicy'],
    bad: (v) => v === 'open',
  }),
];

const SPEC_RULES: readonly PolicyRule[] = [
  {
    id: 'steward.ssh.ops-user-not-allowed',
    severity: 'critical',
    message: 'ssh.allowUsers leaves out the ops user: hardening SSH would lock steward out',
    needs: ['spec'],
    evaluate: ({ spec }) => {
      const allowUsers = spec?.ssh.allowUsers;
      if (!spec || !allowUsers || allowUsers.includes(spec.ssh.opsUser)) return [];
      return [{ path: 'ssh.allowUsers', observed: allowUsers.join(' ') }];
    },
  },
];

/** Mode bits of an octal mode string. */
const modeBits = (mode: string) => Number.parseInt(mode, 8);

const HOST_RULES: readonly PolicyRule[] = [
  {
    id: 'host.ssh.password-authentication',
    severity: 'high',
    message: 'sshd accepts password logins',
    needs: ['host.sshd'],
    evaluate: ({ host }) =>
      host?.sshd?.passwordauthentication === 'yes' ? [{ path: 'sshd.passwordauthentication', observed: 'yes' }] : [],
  },
  {
    id: 'host.ssh.root-login',
    severity: 'high',
    message: 'sshd lets root log in',
    needs: ['host.sshd'],
    evaluate: ({ host, spec }) => {
      const value = host?.sshd?.permitrootlogin;
      // `sshd -T` prints prohibit-password as without-password; a spec that chose it allows either spelling.
      const allowed =
        spec?.ssh.permitRootLogin === 'prohibit-password' ? ['no', 'prohibit-password', 'without-password'] : ['no'];
      return value === undefined || allowed.includes(value) ? [] : [{ path: 'sshd.permitrootlogin', observed: value }];
    },
  },
  {
    id: 'host.firewall.port-not-in-spec',
    severity: 'high',
    message: 'The firewall accepts a port the spec does not list',
    needs: ['host.openPorts', 'spec'],
    evaluate: ({ host, spec }) => {
      if (!spec?.firewall.enabled) return [];
      const listed = new Set([`${spec.ssh.port}/tcp`, ...spec.firewall.ingress.map((r) => `${r.port}/${r.protocol}`)]);
      return (host?.openPorts ?? [])
        .map((p) => `${p.port}/${p.protocol}`)
        .filter((p) => !listed.has(p))
        .map((p) => ({ path: p, observed: 'open' }));
    },
  },
  {
    id: 'host.secret-file.world-readable',
    severity: 'critical',
    message: 'A secret file is readable by every user on the host',
    auditCheckId: 'fs.config.perms_world_readable',
    needs: ['host.secretFiles'],
    evaluate: ({ host }) =>
      (host?.secretFiles ?? [])
        .filter((f) => (modeBits(f.mode) & 0o004) !== 0)
        .map((f) => ({ path: f.path, observed: f.mode })),
  },
  {
    id: 'host.secret-file.group-readable',
    severity: 'medium',
    message: "A secret file is readable by its group's members",
    auditCheckId: 'fs.config.perms_group_readable',
    needs: ['host.secretFiles'],
    evaluate: ({ host }) =>
      (host?.secretFiles ?? [])
        .filter((f) => (modeBits(f.mode) & 0o040) !== 0)
        .map((f) => ({ path: f.path, observed: f.mode })),
  },
  {
    id: 'host.gateway-token.too-short',
    severity: 'high',
    message: `The gateway token file holds fewer than ${MIN_GATEWAY_TOKEN_LENGTH} characters (observed: its length)`,
    auditCheckId: 'gateway.token_too_short',
    needs: ['host.gatewayToken'],
    evaluate: ({ host }) => {
      const token = host?.gatewayToken;
      return token && token.length < MIN_GATEWAY_TOKEN_LENGTH ? [{ path: token.path, observed: token.length }] : [];
    },
  },
];

export const BUILT_IN_RULES: readonly PolicyRule[] = [...OPENCLAW_RULES, ...SPEC_RULES, ...HOST_RULES];

export const BUILT_IN_IDS: ReadonlySet<string> = new Set(BUILT_IN_RULES.map((r) => r.id));

function holds(when: Matcher, value: unknown): boolean {
  if (when.exists !== undefined) return true;
  if (when.equals !== undefined) return value === when.equals;
  if (when.notEquals !== undefined) return value !== when.notEquals;
  if (when.in) return when.in.some((v) => v === value);
  if (when.notIn) return !when.notIn.some((v) => v === value);
  const text = typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
  return when.matches !== undefined && text && new RegExp(when.matches).test(String(value));
}

/** A user rule as a rule: a finding wherever its matcher holds; `exists: false` finds the path missing. */
function userRule(rule: UserRule): PolicyRule {
  const { when } = rule;
  return {
    id: rule.id,
    severity: rule.severity,
    message: rule.message,
    needs: [rule.subject],
    evaluate: (subject) => {
      const found = select(subject[rule.subject], when.path);
      if (when.exists === false) return found.length === 0 ? [{ path: when.path }] : [];
      return found.filter((m) => holds(when, m.value)).map(violation);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Evaluation

/** Findings below it are not reported: the default of `policy.severityThreshold`, and of a spec without a policy. */
export const DEFAULT_SEVERITY_THRESHOLD = 'low' satisfies PolicySeverity;

const DEFAULT_POLICY: PolicyConfig = { rules: [], disable: [], severityThreshold: DEFAULT_SEVERITY_THRESHOLD };

function enabledRules(config: PolicyConfig): PolicyRule[] {
  return [...BUILT_IN_RULES.filter((r) => !config.disable.includes(r.id)), ...config.rules.map(userRule)];
}

const applies = (rule: PolicyRule, subject: PolicySubject) => rule.needs.every((p) => get(subject, p) !== undefined);

const subjectOf = (part: SubjectPart): PolicyFinding['subject'] =>
  part === 'spec' || part === 'openclaw' ? part : 'host';

const compare = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Evaluates the built-in rules not disabled and the user rules over `subject`. Pure and deterministic: findings
 * are sorted by severity (critical first), rule id, subject and path, each reported once. Rules below
 * `severityThreshold` are not evaluated; rules whose parts are absent are skipped (see {@link skippedRules}).
 */
export function evaluatePolicy(subject: PolicySubject, config: PolicyConfig = DEFAULT_POLICY): PolicyFinding[] {
  const threshold = RANK[config.severityThreshold];
  const findings = enabledRules(config)
    .filter((rule) => RANK[rule.severity] <= threshold && applies(rule, subject))
    .flatMap((rule) =>
      rule.evaluate(subject).map((v): PolicyFinding => ({
        id: rule.id,
        severity: rule.severity,
        message: rule.message,
        subject: subjectOf(rule.needs[0]),
        ...v,
      })),
    );
  const unique = new Map(findings.map((f) => [`${f.id}\0${f.subject}\0${f.path}`, f]));
  return [...unique.values()].sort(
    (a, b) =>
      RANK[a.severity] - RANK[b.severity] ||
      compare(a.id, b.id) ||
      compare(a.subject, b.subject) ||
      compare(a.path, b.path),
  );
}

/** Ids of the enabled rules (at or above the threshold) that `subject` lacks the parts for, in rule order. */
export function skippedRules(subject: PolicySubject, config: PolicyConfig = DEFAULT_POLICY): string[] {
  const threshold = RANK[config.severityThreshold];
  return enabledRules(config)
    .filter((rule) => RANK[rule.severity] <= threshold && !applies(rule, subject))
    .map((rule) => rule.id);
}

const SUBJECT_NAMES: Record<PolicyFinding['subject'], string> = {
  spec: 'steward.yaml',
  openclaw: 'openclaw.json',
  host: 'host',
};

/** The message a refused spec fails with: every finding on a line, led by the rule ids. For a non-empty list. */
export function refusalMessage(findings: readonly PolicyFinding[]): string {
  const ids = [...new Set(findings.map((f) => f.id))];
  const lines = findings.map((f) => {
    const value = f.observed === undefined ? 'missing' : `observed: ${JSON.stringify(f.observed)}`;
    return `  - ${f.id} (${f.severity}): ${f.message} — ${SUBJECT_NAMES[f.subject]} ${f.path} (${value})`;
  });
  return [
    `The spec violates policy (${ids.join(', ')}); nothing was applied:`,
    ...lines,
    'Change the spec, or turn a built-in rule off under policy.disable.',
  ].join('\n');
}
