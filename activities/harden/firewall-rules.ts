/** The ruleset harden renders into /etc/nftables.conf, from the spec's ingress rules and SSH settings. */
import type { Spec } from '../../model/schema';
import {
  describeSources,
  formatCidr,
  invalidSpec,
  isAny,
  specSources,
  toSources,
  type Cidr,
  type Sources,
} from './firewall-addresses';

/** The file nftables.service loads at boot; steward owns it whole. */
export const NFTABLES_CONF = '/etc/nftables.conf';
/** Drop-in that stops `systemctl stop|restart nftables` from flushing every table (Debian's ExecStop does). */
export const NFTABLES_DROP_IN = '/etc/systemd/system/nftables.service.d/steward.conf';
/** Every file {@link firewallResources} may write: back these up before applying, restore them to revert. */
export const FIREWALL_FILES: readonly string[] = [NFTABLES_CONF, NFTABLES_DROP_IN];

/** First comment line of every ruleset steward renders; {@link FIREWALL_ACTIVATE} loads only files carrying it. */
export const MARKER = '# Managed by steward (harden)';
export const TABLE = 'steward';

/**
 * Rule comments, stored in the kernel with each rule (`nft list` shows them next to the counters):
 * {@link firewallControls} finds rules by them, and a rule without one of these is not steward's.
 */
export const COMMENT = {
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
export const CONTAINER_BRIDGES = ['docker0', 'br-*'] as const;

/** One allowed port: spec ingress rules for the same port and protocol merged. */
export interface Opening {
  readonly port: number;
  readonly protocol: 'tcp' | 'udp';
  readonly sources: Sources;
  readonly description: string;
}

/** `port` as a port number, or an invalid-spec error naming `field`. */
export function portField(port: unknown, field: string): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    invalidSpec(`${field}: ${String(port)} is not a port number`);
  }
  return port;
}

/** File comments carry operator text: one line of printable characters, so it can never end the comment. */
export function commentText(text: string): string {
  return text
    .replace(/[\p{Cc}\p{Zl}\p{Zp}]+/gu, ' ')
    .replace(/\s+/g, ' ')
    .trim();
}

export function openings(spec: Spec): Opening[] {
  const merged = new Map<string, { port: number; protocol: 'tcp' | 'udp'; sources: Cidr[]; descriptions: string[] }>();
  spec.firewall.ingress.forEach((rule, i) => {
    const port = portField(rule.port, `firewall.ingress[${i}].port`);
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
export function bySource(prefix: string, sources: Sources, rest: string): string[] {
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

export const HEADER = [
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

  const sshPort = portField(spec.ssh.port, 'ssh.port');
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
