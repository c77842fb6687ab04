/**
 * The host firewall harden applies: nftables, default-deny ingress, Docker-published ports included.
 *
 * steward owns exactly one table, `inet steward` (IPv4 and IPv6 in one), in `/etc/nftables.conf`, which Debian's
 * nftables.service loads at boot before the network and Docker come up. The ruleset is never flushed: Docker's
 * tables (made through iptables-nft) and fail2ban's stay untouched. Ports Docker publishes cannot bypass it:
 * Docker DNATs them in prerouting, so they reach containers through the forward hook, never through input; a
 * forward chain here drops NEW connections from outside whose original destination port the spec does not allow.
 * In netfilter every base chain on a hook sees the packet and a drop in any of them is final, so Docker's own
 * accept rules cannot undo it.
 */
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { ControlResult } from '../../model/report';
import type { Spec } from '../../model/schema';
import { UnexpectedHostOutput } from '../host/errors';
import type { HostSession, ProbeResult } from '../host/session';
import { run } from '../host/shell';
import { digest, directoryResource, fileResource, type ObservedPath } from '../resources/files';
import type { Resource } from '../resources/resource';
import { serviceResource } from '../resources/system';

/** The file nftables.service loads at boot; steward owns it whole. */
export const NFTABLES_CONF = '/etc/nftables.conf';
/** Drop-in that stops `systemctl stop|restart nftables` from flushing every table (Debian's ExecStop does). */
export const NFTABLES_DROP_IN = '/etc/systemd/system/nftables.service.d/steward.conf';
/** Every file {@link firewallResources} may write: back these up before applying, restore them to revert. */
export const FIREWALL_FILES: readonly string[] = [NFTABLES_CONF, NFTABLES_DROP_IN];

/** First comment line of every ruleset steward renders; {@link FIREWALL_ACTIVATE} loads only files carrying it. */
const MARKER = '# Managed by steward (harden)';
const TABLE = 'steward';

/**
 * Rule comments, stored in the kernel with each rule (`nft list` shows them next to the counters):
 * {@link firewallControls} finds rules by them, and a rule without one of these is not steward's.
 */
const COMMENT = {
  loopback: 'loopback',
  neighbours: 'neighbour discovery',
  mld: 'multicast listener queries',
  established: 'established',
  invalid: 'invalid',
  icmp: 'icmp',
  icmpv6: 'icmpv6',
  dhcpv6: 'dhcpv6 replies',
  sshLimit: 'ssh rate limit',
  ssh: 'ssh',
  ingress: (o: Opening) => `ingress ${o.port}/${o.protocol}`,
  policy: 'dropped by policy',
  fromContainers: 'from containers',
  published: (o: Opening) => `published ${o.port}/${o.protocol}`,
  unpublished: 'published port not in ingress',
  direct: 'outside to containers',
} as const;

/** Interfaces Docker creates for its networks: the default bridge and one `br-<id>` per user network. */
const CONTAINER_BRIDGES = ['docker0', 'br-*'] as const;

// ---------------------------------------------------------------------------------------------------------------
// Addresses

/** An IPv4 or IPv6 network, host bits cleared. */
interface Cidr {
  readonly family: 4 | 6;
  readonly addr: bigint;
  readonly len: number;
}

const WIDTH = { 4: 32, 6: 128 } as const;

function parseIPv4(s: string): bigint | undefined {
  const parts = s.split('.');
  if (parts.length !== 4 || !parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255)) return undefined;
  return parts.reduce((acc, p) => (acc << 8n) | BigInt(p), 0n);
}

function parseIPv6(s: string): bigint | undefined {
  let text = s.toLowerCase();
  // A dotted IPv4 tail (::ffff:192.0.2.1) is two groups.
  const dotted = /^(.*:)([0-9]+\.[0-9]+\.[0-9]+\.[0-9]+)$/.exec(text);
  if (dotted) {
    const v4 = parseIPv4(dotted[2]!);
    if (v4 === undefined) return undefined;
    text = `${dotted[1]}${(v4 >> 16n).toString(16)}:${(v4 & 0xffffn).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const split = (h: string) => (h === '' ? [] : h.split(':'));
  const left = split(halves[0]!);
  const right = halves.length === 2 ? split(halves[1]!) : [];
  const missing = 8 - left.length - right.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const groups = [...left, ...Array<string>(missing).fill('0'), ...right];
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return undefined;
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(`0x${g}`), 0n);
}

/** Parses `192.0.2.0/24`, `192.0.2.7`, `2001:db8::/32`, `2001:db8::1`; undefined when it is none of these. */
function parseCidr(source: string): Cidr | undefined {
  const m = /^([0-9a-fA-F:.]+)(?:\/([0-9]{1,3}))?$/.exec(source.trim());
  if (!m) return undefined;
  const family = m[1]!.includes(':') ? 6 : 4;
  const addr = family === 4 ? parseIPv4(m[1]!) : parseIPv6(m[1]!);
  const width = WIDTH[family];
  const len = m[2] === undefined ? width : Number(m[2]);
  if (addr === undefined || len > width) return undefined;
  const hostBits = BigInt(width - len);
  return { family, addr: (addr >> hostBits) << hostBits, len };
}

function formatAddress(c: Cidr): string {
  if (c.family === 4) return [24n, 16n, 8n, 0n].map((shift) => String((c.addr >> shift) & 0xffn)).join('.');
  const groups = Array.from({ length: 8 }, (_, i) => Number((c.addr >> BigInt(112 - 16 * i)) & 0xffffn));
  // RFC 5952: compress the longest run of two or more zero groups (the first one on a tie).
  let best = { start: -1, len: 1 };
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.len) best = { start: i, len: j - i };
    i = j === i ? i + 1 : j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.start < 0) return hex.join(':');
  return `${hex.slice(0, best.start).join(':')}::${hex.slice(best.start + best.len).join(':')}`;
}

/** `192.0.2.0/24`; a single host without a prefix, as nft prints it. */
function formatCidr(c: Cidr): string {
  return c.len === WIDTH[c.family] ? formatAddress(c) : `${formatAddress(c)}/${c.len}`;
}

function covers(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || outer.len > inner.len) return false;
  const shift = BigInt(WIDTH[outer.family] - outer.len);
  return outer.addr >> shift === inner.addr >> shift;
}

/** Sources of one rule, split by family; each list minimal (no duplicates, nothing inside another) and sorted. */
interface Sources {
  readonly v4: readonly Cidr[];
  readonly v6: readonly Cidr[];
}

function minimal(cidrs: readonly Cidr[]): Cidr[] {
  const sorted = [...cidrs].sort((a, b) => a.len - b.len || (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0));
  const kept: Cidr[] = [];
  for (const c of sorted) if (!kept.some((k) => covers(k, c))) kept.push(c);
  return kept.sort((a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : a.len - b.len));
}

function toSources(cidrs: readonly Cidr[]): Sources {
  return { v4: minimal(cidrs.filter((c) => c.family === 4)), v6: minimal(cidrs.filter((c) => c.family === 6)) };
}

const isAny = (list: readonly Cidr[]) => list.length === 1 && list[0]!.len === 0;
const isEmpty = (s: Sources) => s.v4.length === 0 && s.v6.length === 0;

/** Operator wording: `anywhere`, or the networks (`0.0.0.0/0` for any IPv4 when IPv6 is restricted). */
function describeSources(s: Sources): string {
  if (isAny(s.v4) && isAny(s.v6)) return 'anywhere';
  const all = [...s.v4, ...s.v6].map(formatCidr);
  return all.length > 0 ? all.join(', ') : 'nowhere';
}

function invalidSpec(message: string): never {
  throw ApplicationFailure.nonRetryable(`firewall: ${message}`, 'InvalidSpec');
}

function specSources(sources: readonly string[], field: string): Sources {
  return toSources(
    sources.map((s) => parseCidr(s) ?? invalidSpec(`${field}: "${s}" is not an IP address or CIDR block`)),
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Rendering

/** One allowed port: spec ingress rules for the same port and protocol merged. */
interface Opening {
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
  readonly sources: Sources;
  readonly description: string;
}

function checkPort(port: unknown, field: string): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    invalidSpec(`${field}: ${String(port)} is not a port number`);
  }
  return port;
}

/** File comments carry operator text: one line of printable characters, so it can never end the comment. */
function commentText(text: string): string {
  return text
    .replace(/[\p{Cc}\p{Zl}\p{Zp}]+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

function openings(spec: Spec): Opening[] {
  const merged = new Map<string, { port: number; protocol: 'tcp' | 'udp'; sources: Cidr[]; descriptions: string[] }>();
  spec.firewall.ingress.forEach((rule, i) => {
    const port = checkPort(rule.port, `firewall.ingress[${i}].port`);
    if (rule.protocol !== 'tcp' && rule.protocol !== 'udp') {
      invalidSpec(`firewall.ingress[${i}].protocol: ${String(rule.protocol)} is not tcp or udp`);
    }
    const key = `${port}/${rule.protocol}`;
    const entry = merged.get(key) ?? { port, protocol: rule.protocol, sources: [], descriptions: [] };
    const sources = specSources(rule.sources, `firewall.ingress[${i}].sources`);
    entry.sources.push(...sources.v4, ...sources.v6);
    if (rule.description) entry.descriptions.push(commentText(rule.description));
    merged.set(key, entry);
  });
  return [...merged.values()].map((e) => ({
    port: e.port,
    protocol: e.protocol,
    sources: toSources(e.sources),
    description: e.descriptions.filter(Boolean).join('; '),
  }));
}

/**
 * Rule lines for `sources`: one rule when any address of both families may pass, else one per family that has
 * sources (a family without sources gets no rule: its traffic falls through to the drop).
 */
function bySource(prefix: string, sources: Sources, rest: string): string[] {
  const join = (...parts: string[]) => parts.filter(Boolean).join(' ');
  if (isAny(sources.v4) && isAny(sources.v6)) return [join(prefix, rest)];
  const match = (list: readonly Cidr[], family: 'ip' | 'ip6') => {
    if (isAny(list)) return `meta nfproto ${family === 'ip' ? 'ipv4' : 'ipv6'}`;
    const items = list.map(formatCidr);
    return `${family} saddr ${items.length === 1 ? items[0] : `{ ${items.join(', ')} }`}`;
  };
  return [
    ...(sources.v4.length > 0 ? [join(prefix, match(sources.v4, 'ip'), rest)] : []),
    ...(sources.v6.length > 0 ? [join(prefix, match(sources.v6, 'ip6'), rest)] : []),
  ];
}

const HEADER = [
  '#!/usr/sbin/nft -f',
  `${MARKER}: the host firewall. Local edits are reverted; change firewall: in steward.yaml instead.`,
  '#',
  "# Only steward's own table, inet steward (IPv4 and IPv6), is managed here. The ruleset is never flushed: Docker's",
  "# tables (ip filter, ip nat, made through iptables-nft) and fail2ban's stay as they are. Loading this file replaces",
  "# steward's table in one transaction, so it is safe to repeat:   nft -f /etc/nftables.conf",
  '# Inspect the live rules and their counters:                      nft list table inet steward',
];

/**
 * Renders `/etc/nftables.conf` for the spec. Pure and deterministic: the same spec gives the same bytes.
 * With `firewall.enabled: false` the file only removes steward's table.
 * @throws non-retryable ApplicationFailure `InvalidSpec` when a port or source is not valid (the schema should have
 *   refused it already; nothing is rendered from an unchecked value).
 */
export function renderRuleset(spec: Spec): string {
  const fw = spec.firewall;
  const drop = (then: string) => [
    `# Create the table if it is missing, so that deleting it never fails; then ${then}.`,
    `table inet ${TABLE}`,
    `delete table inet ${TABLE}`,
  ];
  if (!fw.enabled) {
    return `${[
      ...HEADER,
      '#',
      "# The firewall is DISABLED in steward.yaml (firewall.enabled: false): loading this file removes steward's table",
      '# and nothing else.',
      '',
      ...drop('leave it deleted'),
    ].join('\n')}\n`;
  }

  const sshPort = checkPort(spec.ssh.port, 'ssh.port');
  const rate = fw.sshRateLimit;
  if (!Number.isInteger(rate) || rate < 1)
    invalidSpec(`firewall.sshRateLimit: ${String(rate)} is not a positive whole number`);
  const ssh = specSources(fw.sshSources, 'firewall.sshSources');
  const open = openings(spec);
  const limit = `limit rate over ${rate}/minute burst ${rate} packets`;
  const c = (text: string) => ` comment "${text}"`;

  const sshRules = fw.ssh
    ? [
        `# SSH on port ${sshPort}: at most ${rate} new connections per minute per source address (IPv6: per /64 network),`,
        `# more are dropped; then accepted from: ${describeSources(ssh)}.`,
        ...(ssh.v4.length > 0
          ? [
              `meta nfproto ipv4 tcp dport ${sshPort} ct state new update @ssh_meter_v4 { ip saddr ${limit} } counter drop${c(COMMENT.sshLimit)}`,
            ]
          : []),
        ...(ssh.v6.length > 0
          ? [
              `meta nfproto ipv6 tcp dport ${sshPort} ct state new update @ssh_meter_v6 { ip6 saddr & ffff:ffff:ffff:ffff:: ${limit} } counter drop${c(COMMENT.sshLimit)}`,
            ]
          : []),
        ...bySource('', ssh, `tcp dport ${sshPort} accept${c(COMMENT.ssh)}`),
      ]
    : ['# SSH is NOT allowed through the firewall (firewall.ssh: false).'];

  const ingressRules = open.flatMap((o) => [
    `# ${o.port}/${o.protocol} from ${describeSources(o.sources)}${o.description ? `: ${o.description}` : ''}`,
    ...bySource('', o.sources, `${o.protocol} dport ${o.port} accept${c(COMMENT.ingress(o))}`),
  ]);

  const publishedRules = open.flatMap((o) =>
    bySource(
      'ct status dnat',
      o.sources,
      `meta l4proto ${o.protocol} ct original proto-dst ${o.port} accept${c(COMMENT.published(o))}`,
    ),
  );

  const input = [
    'type filter hook input priority filter; policy drop;',
    '',
    '# Loopback: local services talking to each other.',
    `iifname "lo" accept${c(COMMENT.loopback)}`,
    '# IPv6 neighbour discovery and router advertisements; hop limit 255 proves they come from the local link.',
    `icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert } ip6 hoplimit 255 accept${c(COMMENT.neighbours)}`,
    '# Multicast listener queries from the local router (switches stop sending neighbour discovery without them).',
    `ip6 saddr fe80::/10 icmpv6 type mld-listener-query accept${c(COMMENT.mld)}`,
    '# Replies to connections this host opened, and packets of connections already accepted.',
    `ct state established,related accept${c(COMMENT.established)}`,
    `ct state invalid drop${c(COMMENT.invalid)}`,
    '# ICMP that keeps networking healthy: ping, unreachable and packet too big (path MTU), time exceeded.',
    `icmp type { echo-request, destination-unreachable, time-exceeded, parameter-problem } accept${c(COMMENT.icmp)}`,
    `icmpv6 type { echo-request, destination-unreachable, packet-too-big, time-exceeded, parameter-problem } accept${c(COMMENT.icmpv6)}`,
    '# DHCPv6 replies from the local router (sent to a multicast request, so conntrack cannot match them).',
    `ip6 saddr fe80::/10 udp sport 547 udp dport 546 accept${c(COMMENT.dhcpv6)}`,
    '',
    ...sshRules,
    '',
    open.length > 0 ? '# Ingress from firewall.ingress:' : '# No other ingress (firewall.ingress is empty).',
    ...ingressRules,
    '',
    '# Everything else is dropped by the chain policy (counted here).',
    `counter${c(COMMENT.policy)}`,
  ];

  const forward = [
    "# Runs before Docker's own forward chains. A drop here is final whatever Docker's rules say; an accept only",
    "# ends this chain, so Docker's isolation rules still apply afterwards.",
    'type filter hook forward priority filter - 10; policy accept;',
    '',
    '# Replies and packets of connections already accepted, both ways.',
    `ct state established,related accept${c(COMMENT.established)}`,
    "# From containers: egress and container to container; Docker's rules decide. (Containers reaching the host's own",
    '# ports, published ones included, go through the input chain above.)',
    ...CONTAINER_BRIDGES.map((b) => `iifname "${b}" accept${c(COMMENT.fromContainers)}`),
    '# From outside to a port Docker publishes: Docker has rewritten the destination already (DNAT in prerouting),',
    "# so the port the client asked for is the connection's original one: ct original proto-dst. Only the",
    '# ports and sources of firewall.ingress pass.',
    ...publishedRules,
    `ct status dnat counter drop${c(COMMENT.unpublished)}`,
    '# From outside straight to a container address, not through a published port.',
    ...CONTAINER_BRIDGES.map((b) => `oifname "${b}" ct state new counter drop${c(COMMENT.direct)}`),
  ];

  const meter = (name: string, type: string) => `set ${name} { type ${type}; flags dynamic; timeout 1m; size 65536; }`;
  const indent = (lines: string[], depth: number) => lines.map((l) => (l ? `${'\t'.repeat(depth)}${l}` : ''));

  return `${[
    ...HEADER,
    '#',
    '# Inbound: dropped unless accepted below (established traffic, loopback, needed ICMP, SSH, firewall.ingress).',
    '# Forwarded: new connections from outside reach containers only through published ports that firewall.ingress',
    '# allows for that source. Outbound: not filtered.',
    '',
    ...drop('define it anew'),
    '',
    `table inet ${TABLE} {`,
    ...indent(['# Per-source counters of new SSH connections, for the rate limit.'], 1),
    ...indent([meter('ssh_meter_v4', 'ipv4_addr'), meter('ssh_meter_v6', 'ipv6_addr')], 1),
    '',
    '\tchain input {',
    ...indent(input, 2),
    '\t}',
    '',
    '\tchain forward {',
    ...indent(forward, 2),
    '\t}',
    '}',
  ].join('\n')}\n`;
}

// ---------------------------------------------------------------------------------------------------------------
// Resources and activation

const DROP_IN = [
  "# Managed by steward (harden). Debian's nftables.service flushes the WHOLE ruleset when stopped or restarted,",
  "# which would also remove Docker's and fail2ban's tables; stopping removes only steward's table instead.",
  '[Service]',
  'ExecStop=',
  `ExecStop=-/usr/sbin/nft delete table inet ${TABLE}`,
  '',
].join('\n');

/** A file resource that reloads systemd after writing, so a changed unit drop-in takes effect. */
function unitDropIn(resource: Resource<ObservedPath>): Resource<ObservedPath> {
  return {
    ...resource,
    apply: async (session, observed, changes) => {
      await resource.apply(session, observed, changes);
      await session.check('systemctl daemon-reload', { label: 'systemctl daemon-reload' });
    },
  };
}

/**
 * The firewall as resources, in apply order: the nftables.service drop-in (stopping or restarting the service
 * removes only steward's table instead of flushing Docker's and fail2ban's), `/etc/nftables.conf` (root:root 0600:
 * it names who may reach SSH, and only root can list the live rules anyway; checked with `nft -c -f` before it
 * replaces the old file), nftables.service enabled and active (starting it runs `nft -f /etc/nftables.conf`, so
 * the file loads at every boot, before Docker), and the live table itself, compared rule by rule with the spec and
 * reloaded from the file when it differs (a first apply, or someone changed the live rules).
 * Converging them changes the live firewall; run {@link FIREWALL_ACTIVATE} afterwards too when the file changed
 * (the commit-confirm wrapper does). Safe to repeat: a second converge changes nothing.
 * @throws non-retryable `InvalidSpec` from {@link renderRuleset}.
 */
export function firewallResources(spec: Spec, host: string): Resource[] {
  const root = { owner: 'root', group: 'root' };
  return [
    directoryResource({ path: '/etc/systemd/system/nftables.service.d', ...root, mode: '0755' }, host),
    unitDropIn(fileResource({ path: NFTABLES_DROP_IN, content: DROP_IN, ...root, mode: '0644' }, host)),
    fileResource(
      { path: NFTABLES_CONF, content: renderRuleset(spec), ...root, mode: '0600', validate: ['nft', '-c', '-f'] },
      host,
    ),
    serviceResource('nftables'),
    liveRulesetResource(spec, host),
  ];
}

/**
 * Makes `/etc/nftables.conf` live now: `nft -f`, which replaces steward's table atomically and leaves every other
 * table alone. A file steward did not write (Debian's default flushes the whole ruleset, Docker's too; or no file,
 * after a revert to a host without one) is not loaded: steward's table is removed instead, which is exactly the
 * state before steward's first apply. Safe to repeat. Exits non-zero when nft refuses the file.
 */
export const FIREWALL_ACTIVATE = [
  `if grep -qs ${run(`^${MARKER}`)} ${run(NFTABLES_CONF)}; then`,
  `  nft -f ${run(NFTABLES_CONF)}`,
  `elif nft list table inet ${TABLE} >/dev/null 2>&1; then`,
  `  nft delete table inet ${TABLE}`,
  'fi',
].join('\n');

// ---------------------------------------------------------------------------------------------------------------
// Controls: the live ruleset, read back

const ruleSchema = z.looseObject({
  chain: z.string(),
  comment: z.string().optional(),
  expr: z.array(z.unknown()),
});
const chainSchema = z.looseObject({
  name: z.string(),
  hook: z.string().optional(),
  policy: z.string().optional(),
});
const listingSchema = z.object({ nftables: z.array(z.record(z.string(), z.unknown())) });

interface Chain {
  readonly hook?: string;
  readonly policy?: string;
  readonly rules: readonly Rule[];
}

/** What steward needs to know of one rule, read from nft's JSON expression list. */
interface Rule {
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

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function numbers(right: unknown): number[] {
  if (typeof right === 'number') return [right];
  if (isRecord(right) && Array.isArray(right.set)) return right.set.filter((x): x is number => typeof x === 'number');
  return [];
}

/** Reads a rule's expressions: matches on ports, sources and ct status, its verdict and per-source limits. */
function readRule(comment: string | undefined, expr: readonly unknown[]): Rule {
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
function parseChain(host: string, name: string, out: string, code: number): Chain | undefined {
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
function describeRules(rules: readonly Rule[]): string {
  const cidrs = rules.flatMap((r) => r.sources.cidrs);
  const unreadable = rules.flatMap((r) => r.sources.unreadable);
  return [describeSources(toSources(cidrs)), ...unreadable].join(', ');
}

function ports(rules: readonly Rule[], pick: (r: Rule) => Rule['dport']): string {
  const found = new Set(rules.flatMap((r) => (pick(r)?.ports ?? []).map((p) => `${p}/${pick(r)?.protocol}`)));
  return [...found].join(', ') || 'no port';
}

/** Rule comments per chain of a rendered ruleset, in order. */
function renderedComments(ruleset: string): Record<'input' | 'forward', string[]> {
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
function describeRuleCounts(
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

function control(id: string, expected: string, observed: string, note?: string): ControlResult {
  return {
    control: id,
    expected,
    observed,
    status: expected === observed ? 'pass' : 'fail',
    ...(note ? { note } : {}),
  };
}

/** The SSH rules as a sentence: `22/tcp from anywhere, 15/minute per source`, or `closed`. */
function describeSsh(input: Chain): string {
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

function describeInputPolicy(chain: Chain | undefined): string {
  if (!chain) return 'no input chain';
  return chain.hook === 'input' ? (chain.policy ?? 'no policy') : `chain hooked on ${chain.hook ?? 'nothing'}`;
}

/** The forward chain as a sentence: `others dropped; allowed: 443/tcp from anywhere; …`. */
function describeForward(chain: Chain | undefined): string {
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
interface LiveRuleset {
  readonly loaded: boolean;
  readonly input?: Chain;
  readonly forward?: Chain;
}

/** One probe fragment for the live table: its presence and both chains as JSON, each followed by its exit code. */
const LIVE_PROBE = [
  run('nft', 'list', 'tables', 'inet'),
  'echo "--- $?"',
  run('nft', '-j', 'list', 'chain', 'inet', TABLE, 'input'),
  'echo "--- $?"',
  run('nft', '-j', 'list', 'chain', 'inet', TABLE, 'forward'),
  'echo "--- $?"',
].join('\n');

function parseLive(host: string, { out }: ProbeResult): LiveRuleset {
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
function assess(spec: Spec, live: LiveRuleset): ControlResult[] {
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
 * steward's table as loaded in the kernel, compared with the spec (see {@link assess}); apply reloads
 * `/etc/nftables.conf` with {@link FIREWALL_ACTIVATE}. This is what repairs a live ruleset someone changed while
 * the file stayed steward's, and what makes a first apply effective even when nftables.service was already active.
 */
function liveRulesetResource(spec: Spec, host: string): Resource<LiveRuleset> {
  const id = `nftables:inet ${TABLE}`;
  return {
    id,
    probe: LIVE_PROBE,
    parse: (r) => parseLive(host, r),
    diff: (live) => {
      const differs = assess(spec, live).filter((c) => c.status === 'fail');
      if (differs.length === 0) return [];
      const before = live.loaded ? `differs: ${differs.map((c) => c.control).join(', ')}` : 'not loaded';
      return [{ resource: id, action: 'update', before, after: `as ${NFTABLES_CONF}` }];
    },
    apply: async (session) => {
      await session.check(FIREWALL_ACTIVATE, { label: `nft -f ${NFTABLES_CONF}` });
    },
  };
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
