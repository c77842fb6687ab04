/** The live ruleset read back from the kernel (`nft -j`), and the firewall's controls judged from it. */
import { z } from 'zod';
import type { ControlResult } from '../../model/report';
import type { Spec } from '../../model/schema';
import { UnexpectedHostOutput } from '../host/errors';
import type { HostSession, ProbeResult } from '../host/session';
import { run } from '../host/shell';
import { digest } from '../resources/files';
import { describeSources, isEmpty, parseCidr, specSources, toSources, type Cidr } from './firewall-addresses';
import { COMMENT, NFTABLES_CONF, TABLE, openings, renderRuleset } from './firewall-rules';

export const ruleSchema = z.looseObject({
  chain: z.string(),
  comment: z.string().optional(),
  expr: z.array(z.unknown()),
});
export const chainSchema = z.looseObject({
  name: z.string(),
  hook: z.string().optional(),
  policy: z.string().optional(),
});
export const listingSchema = z.object({ nftables: z.array(z.record(z.string(), z.unknown())) });

export interface Chain {
  readonly hook?: string;
  readonly policy?: string;
  readonly rules: readonly Rule[];
}

/** What steward needs to know of one rule, read from nft's JSON expression list. */
export interface Rule {
  readonly comment?: string;
  readonly verdict?: string;
  /** `tcp dport 443` → tcp, [443]. */
  readonly dport?: { readonly protocol: string; readonly ports: readonly number[] };
  /** `meta l4proto tcp ct original proto-dst 443` → tcp, [443]. */
  readonly originalDport?: { readonly protocol: string; readonly ports: readonly number[] };
  readonly ctStatusDnat: boolean;
  /** Sources this rule matches; values nft printed that steward cannot read are kept as text. */
  readonly sources: { readonly cidrs: readonly Cidr[]; readonly unreadable: readonly string[] };
  readonly limits: readonly { readonly rate: number; readonly per: string; readonly family: 4 | 6 }[];
}

export const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export function numbers(right: unknown): number[] {
  if (typeof right === 'number') return [right];
  if (isRecord(right) && Array.isArray(right.set)) return right.set.filter((x): x is number => typeof x === 'number');
  return [];
}

/** Reads a rule's expressions: matches on ports, sources and ct status, its verdict and per-source limits. */
export function readRule(comment: string | undefined, expr: readonly unknown[]): Rule {
  let verdict: string | undefined;
  let dport: Rule['dport'];
  let originalDport: Rule['originalDport'];
  let l4proto: string | undefined;
  let nfproto: 4 | 6 | undefined;
  let ctStatusDnat = false;
  const saddr: { family: 4 | 6; right: unknown }[] = [];
  const limits: Rule['limits'][number][] = [];

  for (const e of expr) {
    if (!isRecord(e)) continue;
    for (const v of ['accept', 'drop', 'reject', 'jump', 'goto', 'return']) if (v in e) verdict = v;
    const set = e.set;
    if (isRecord(set) && Array.isArray(set.stmt)) {
      const family = JSON.stringify(set.elem ?? '').includes('"ip6"') ? 6 : 4;
      for (const s of set.stmt) {
        const l = isRecord(s) && isRecord(s.limit) ? s.limit : undefined;
        // `limit rate over …` (inv): the rule matches, and drops, only above the rate.
        if (l && l.inv === true && typeof l.rate === 'number' && typeof l.per === 'string')
          limits.push({ rate: l.rate, per: l.per, family });
      }
    }
    const match = e.match;
    if (!isRecord(match) || !isRecord(match.left)) continue;
    const { left, right, op } = match as { left: Record<string, unknown>; right: unknown; op?: string };
    const payload = isRecord(left.payload) ? left.payload : undefined;
    const meta = isRecord(left.meta) ? left.meta : undefined;
    const ct = isRecord(left.ct) ? left.ct : undefined;
    if (op === '!=') continue;
    if (payload?.field === 'dport' && typeof payload.protocol === 'string') {
      dport = { protocol: payload.protocol, ports: numbers(right) };
    } else if (payload?.field === 'saddr' && (payload.protocol === 'ip' || payload.protocol === 'ip6')) {
      saddr.push({ family: payload.protocol === 'ip' ? 4 : 6, right });
    } else if (meta?.key === 'l4proto' && typeof right === 'string') {
      l4proto = right;
    } else if (meta?.key === 'nfproto' && (right === 'ipv4' || right === 'ipv6')) {
      nfproto = right === 'ipv4' ? 4 : 6;
    } else if (ct?.key === 'status' && (right === 'dnat' || (Array.isArray(right) && right.includes('dnat')))) {
      ctStatusDnat = true;
    } else if (ct?.key === 'proto-dst' && ct.dir === 'original') {
      originalDport = { protocol: l4proto ?? '?', ports: numbers(right) };
    }
  }

  const cidrs: Cidr[] = [];
  const unreadable: string[] = [];
  if (saddr.length === 0) {
    if (nfproto !== 6) cidrs.push({ family: 4, addr: 0n, len: 0 });
    if (nfproto !== 4) cidrs.push({ family: 6, addr: 0n, len: 0 });
  }
  for (const { family, right } of saddr) {
    const items = isRecord(right) && Array.isArray(right.set) ? right.set : [right];
    for (const item of items) {
      const text =
        typeof item === 'string'
          ? item
          : isRecord(item) && isRecord(item.prefix)
            ? `${String(item.prefix.addr)}/${String(item.prefix.len)}`
            : undefined;
      const cidr = text === undefined ? undefined : parseCidr(text);
      if (cidr && cidr.family === family) cidrs.push(cidr);
      else unreadable.push(JSON.stringify(item));
    }
  }
  return {
    ...(comment === undefined ? {} : { comment }),
    ...(verdict === undefined ? {} : { verdict }),
    ...(dport === undefined ? {} : { dport }),
    ...(originalDport === undefined ? {} : { originalDport }),
    ctStatusDnat,
    sources: { cidrs, unreadable },
    limits,
  };
}

/** Parses `nft -j list chain inet steward <name>`; undefined when the table or chain does not exist. */
export function parseChain(host: string, name: string, out: string, code: number): Chain | undefined {
  if (code !== 0) {
    if (/No such file or directory/.test(out)) return undefined;
    throw new UnexpectedHostOutput(
      host,
      `nft -j list chain inet ${TABLE} ${name} exited ${code}: ${out.trim().slice(0, 300)}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(out);
  } catch {
    throw new UnexpectedHostOutput(
      host,
      `nft -j list chain inet ${TABLE} ${name} printed no JSON: ${JSON.stringify(out.slice(0, 200))}`,
    );
  }
  const listing = listingSchema.safeParse(json);
  if (!listing.success) throw new UnexpectedHostOutput(host, `unexpected nft JSON: ${z.prettifyError(listing.error)}`);
  let chain: z.infer<typeof chainSchema> | undefined;
  const rules: Rule[] = [];
  for (const item of listing.data.nftables) {
    if ('chain' in item) {
      const c = chainSchema.safeParse(item.chain);
      if (!c.success) throw new UnexpectedHostOutput(host, `unexpected nft chain JSON: ${z.prettifyError(c.error)}`);
      if (c.data.name === name) chain = c.data;
    } else if ('rule' in item) {
      const r = ruleSchema.safeParse(item.rule);
      if (!r.success) throw new UnexpectedHostOutput(host, `unexpected nft rule JSON: ${z.prettifyError(r.error)}`);
      if (r.data.chain === name) rules.push(readRule(r.data.comment, r.data.expr));
    }
  }
  if (!chain) throw new UnexpectedHostOutput(host, `nft listed no chain ${name} in table inet ${TABLE}`);
  return { ...(chain.hook ? { hook: chain.hook } : {}), ...(chain.policy ? { policy: chain.policy } : {}), rules };
}

/** Sources of all rules together, as the operator reads them; unreadable values are shown as nft printed them. */
export function describeRules(rules: readonly Rule[]): string {
  const cidrs = rules.flatMap((r) => r.sources.cidrs);
  const unreadable = rules.flatMap((r) => r.sources.unreadable);
  return [describeSources(toSources(cidrs)), ...unreadable].join(', ');
}

export function ports(rules: readonly Rule[], pick: (r: Rule) => Rule['dport']): string {
  const found = new Set(rules.flatMap((r) => (pick(r)?.ports ?? []).map((p) => `${p}/${pick(r)?.protocol}`)));
  return [...found].join(', ') || 'no port';
}

/** Rule comments per chain of a rendered ruleset, in order. */
export function renderedComments(ruleset: string): Record<'input' | 'forward', string[]> {
  const out = { input: [] as string[], forward: [] as string[] };
  let chain: 'input' | 'forward' | undefined;
  for (const line of ruleset.split('\n')) {
    const opened = /^\s*chain (input|forward) \{$/.exec(line);
    if (opened) chain = opened[1] as 'input' | 'forward';
    else if (/^\s*\}$/.test(line)) chain = undefined;
    else if (chain && !line.trim().startsWith('#')) {
      const m = / comment "([^"]*)"$/.exec(line);
      if (m) out[chain].push(m[1]!);
    }
  }
  return out;
}

/**
 * `input 17 rules, forward 9 rules`, plus for each chain the rules that differ from `expected` by comment: extra
 * ones (an operator's own rule has no steward comment) and missing ones.
 */
export function describeRuleCounts(
  observed: Record<'input' | 'forward', readonly (string | undefined)[]>,
  expected?: Record<'input' | 'forward', readonly string[]>,
): string {
  const parts = (['input', 'forward'] as const).map((chain) => {
    const base = `${chain} ${observed[chain].length} rules`;
    if (!expected) return base;
    const left = new Map<string, number>();
    for (const e of expected[chain]) left.set(e, (left.get(e) ?? 0) + 1);
    const extra: string[] = [];
    for (const o of observed[chain]) {
      const key = o ?? 'no comment';
      const n = left.get(key) ?? 0;
      if (n > 0) left.set(key, n - 1);
      else extra.push(key);
    }
    const missing = [...left].flatMap(([k, n]) => Array<string>(n).fill(k));
    const diff = [
      ...(extra.length > 0 ? [`not steward's: ${extra.map((e) => JSON.stringify(e)).join(', ')}`] : []),
      ...(missing.length > 0 ? [`missing: ${missing.map((m) => JSON.stringify(m)).join(', ')}`] : []),
    ];
    return diff.length > 0 ? `${base} (${diff.join('; ')})` : base;
  });
  return parts.join(', ');
}

export function control(id: string, expected: string, observed: string, note?: string): ControlResult {
  return {
    control: id,
    expected,
    observed,
    status: expected === observed ? 'pass' : 'fail',
    ...(note ? { note } : {}),
  };
}

/** The SSH rules as a sentence: `22/tcp from anywhere, 15/minute per source`, or `closed`. */
export function describeSsh(input: Chain): string {
  const accept = input.rules.filter((r) => r.comment === COMMENT.ssh && r.verdict === 'accept');
  if (accept.length === 0) return 'closed';
  const families = new Set(accept.flatMap((r) => r.sources.cidrs.map((c) => c.family)));
  const sshPorts = new Set(accept.flatMap((r) => r.dport?.ports ?? []));
  const limited = input.rules.filter(
    (r) => r.comment === COMMENT.sshLimit && r.verdict === 'drop' && r.dport?.ports.some((p) => sshPorts.has(p)),
  );
  const rates = new Set(
    limited.flatMap((r) => r.limits.filter((l) => families.has(l.family)).map((l) => `${l.rate}/${l.per}`)),
  );
  const limitedFamilies = new Set(limited.flatMap((r) => r.limits.map((l) => l.family)));
  const complete = [...families].every((f) => limitedFamilies.has(f));
  const limit = rates.size === 1 && complete ? `${[...rates][0]} per source` : 'not rate-limited for every source';
  return `${ports(accept, (r) => r.dport)} from ${describeRules(accept)}, ${limit}`;
}

export function describeInputPolicy(chain: Chain | undefined): string {
  if (!chain) return 'no input chain';
  return chain.hook === 'input' ? (chain.policy ?? 'no policy') : `chain hooked on ${chain.hook ?? 'nothing'}`;
}

/** The forward chain as a sentence: `others dropped; allowed: 443/tcp from anywhere; …`. */
export function describeForward(chain: Chain | undefined): string {
  if (!chain) return 'no forward chain';
  if (chain.hook !== 'forward') return `chain hooked on ${chain.hook ?? 'nothing'}`;
  const published = chain.rules.filter((r) => r.ctStatusDnat && r.verdict === 'accept' && r.originalDport);
  const byPort = new Map<string, Rule[]>();
  for (const r of published) {
    for (const port of r.originalDport!.ports) {
      const key = `${port}/${r.originalDport!.protocol}`;
      byPort.set(key, [...(byPort.get(key) ?? []), r]);
    }
  }
  const allowed = [...byPort].map(([key, rules]) => `${key} from ${describeRules(rules)}`);
  const catchAll = chain.rules.some(
    (r) =>
      r.ctStatusDnat &&
      r.verdict === 'drop' &&
      !r.originalDport &&
      r.sources.cidrs.length === 2 &&
      r.sources.cidrs.every((c) => c.len === 0),
  );
  return `${catchAll ? 'others dropped' : 'others NOT dropped'}; allowed: ${allowed.join('; ') || 'none'}`;
}

/** steward's table as loaded in the kernel. */
export interface LiveRuleset {
  readonly loaded: boolean;
  readonly input?: Chain;
  readonly forward?: Chain;
}

/** One probe fragment for the live table: its presence and both chains as JSON, each followed by its exit code. */
export const LIVE_PROBE = [
  run('nft', 'list', 'tables', 'inet'),
  'echo "--- $?"',
  run('nft', '-j', 'list', 'chain', 'inet', TABLE, 'input'),
  'echo "--- $?"',
  run('nft', '-j', 'list', 'chain', 'inet', TABLE, 'forward'),
  'echo "--- $?"',
].join('\n');

export function parseLive(host: string, { out }: ProbeResult): LiveRuleset {
  const m = /^([\s\S]*?)--- (\d+)\n([\s\S]*?)--- (\d+)\n([\s\S]*?)--- (\d+)\n?$/.exec(out);
  if (!m)
    throw new UnexpectedHostOutput(
      host,
      `unexpected output listing table inet ${TABLE}: ${JSON.stringify(out.slice(0, 300))}`,
    );
  const [tables = '', tablesCode, inputOut = '', inputCode, forwardOut = '', forwardCode] = m.slice(1);
  if (tablesCode !== '0' || !/^(table inet \S+\n)*$/.test(tables)) {
    throw new UnexpectedHostOutput(host, `nft list tables inet: ${JSON.stringify(tables.trim().slice(0, 300))}`);
  }
  if (!tables.split('\n').includes(`table inet ${TABLE}`)) return { loaded: false };
  const input = parseChain(host, 'input', inputOut, Number(inputCode));
  const forward = parseChain(host, 'forward', forwardOut, Number(forwardCode));
  return { loaded: true, ...(input ? { input } : {}), ...(forward ? { forward } : {}) };
}

/**
 * Pure: how the live table compares with the spec, as controls. Enabled: input policy, SSH, every ingress port
 * (and any other port the live table opens, expected closed), published ports, and the rule inventory. Disabled:
 * that steward's table is gone.
 */
export function assess(spec: Spec, live: LiveRuleset): ControlResult[] {
  if (!spec.firewall.enabled) {
    const observed = live.loaded ? `table inet ${TABLE} loaded` : `no table inet ${TABLE}`;
    return [control('firewall.disabled', `no table inet ${TABLE}`, observed)];
  }
  const { input, forward } = live;
  const open = openings(spec);
  const results: ControlResult[] = [control('firewall.input-policy', 'drop', describeInputPolicy(input))];

  const ssh = specSources(spec.firewall.sshSources, 'firewall.sshSources');
  const rate = `${spec.firewall.sshRateLimit}/minute per source`;
  results.push(
    control(
      'firewall.ssh',
      spec.firewall.ssh && !isEmpty(ssh) ? `${spec.ssh.port}/tcp from ${describeSources(ssh)}, ${rate}` : 'closed',
      input ? describeSsh(input) : 'no input chain',
      spec.firewall.ssh ? undefined : 'firewall.ssh is false: steward cannot reach the host over SSH',
    ),
  );

  const ingressRules = input?.rules.filter((r) => r.comment?.startsWith('ingress ') && r.verdict === 'accept') ?? [];
  for (const o of open) {
    const rules = ingressRules.filter((r) => r.dport?.protocol === o.protocol && r.dport.ports.includes(o.port));
    const observed = !input ? 'no input chain' : rules.length > 0 ? `from ${describeRules(rules)}` : 'closed';
    const expected = isEmpty(o.sources) ? 'closed' : `from ${describeSources(o.sources)}`;
    results.push(control(`firewall.ingress.${o.port}/${o.protocol}`, expected, observed));
  }
  const wanted = new Set(open.map((o) => `${o.port}/${o.protocol}`));
  const extra = new Map<string, Rule[]>();
  for (const r of ingressRules) {
    for (const port of r.dport?.ports ?? []) {
      const key = `${port}/${r.dport?.protocol}`;
      if (!wanted.has(key)) extra.set(key, [...(extra.get(key) ?? []), r]);
    }
  }
  for (const [key, rules] of extra) {
    results.push(
      control(`firewall.ingress.${key}`, 'closed', `from ${describeRules(rules)}`, 'not in firewall.ingress'),
    );
  }

  const allowed = open
    .filter((o) => !isEmpty(o.sources))
    .map((o) => `${o.port}/${o.protocol} from ${describeSources(o.sources)}`);
  results.push(
    control(
      'firewall.forward-published-ports',
      `others dropped; allowed: ${allowed.join('; ') || 'none'}`,
      describeForward(forward),
    ),
  );
  const rendered = renderedComments(renderRuleset(spec));
  const rules = {
    input: input?.rules.map((r) => r.comment) ?? [],
    forward: forward?.rules.map((r) => r.comment) ?? [],
  };
  results.push(control('firewall.rules', describeRuleCounts(rendered), describeRuleCounts(rules, rendered)));
  return results;
}

/**
 * The firewall's controls, read from the live ruleset and the service in one round trip (read-only):
 * `firewall.input-policy`, `firewall.ssh`, `firewall.ingress.<port>/<proto>` (the spec's, plus any other port the
 * live ruleset opens, expected closed), `firewall.forward-published-ports`, `firewall.rules` (no rule added or
 * missing), `firewall.persisted`; with the firewall disabled, `firewall.disabled` and `firewall.persisted`.
 * @throws UnexpectedHostOutput when nft or systemctl print something steward cannot read; non-retryable `InvalidSpec`
 *   as {@link renderRuleset}.
 */
export async function firewallControls(session: HostSession, spec: Spec): Promise<ControlResult[]> {
  const host = session.target.name;
  const p = await session.probe({
    live: LIVE_PROBE,
    enabled: `${run('systemctl', 'is-enabled', 'nftables')} 2>/dev/null; true`,
    conf: `if [ -f ${run(NFTABLES_CONF)} ]; then ${run('sha256sum', NFTABLES_CONF)} | cut -c1-64; else echo absent; fi`,
  });
  const enabled = p.enabled.out.trim().split('\n')[0] || 'unknown';
  const conf = p.conf.out.trim();
  if (!/^([0-9a-f]{64}|absent)$/.test(conf)) {
    throw new UnexpectedHostOutput(host, `unexpected sha256sum output for ${NFTABLES_CONF}: ${JSON.stringify(conf)}`);
  }
  const file = (sha: string) => (sha === 'absent' ? 'absent' : `sha256:${sha.slice(0, 12)}`);
  return [
    ...assess(spec, parseLive(host, p.live)),
    control(
      'firewall.persisted',
      `nftables.service enabled, ${NFTABLES_CONF} ${file(digest(renderRuleset(spec)))}`,
      `nftables.service ${enabled}, ${NFTABLES_CONF} ${file(conf)}`,
    ),
  ];
}
