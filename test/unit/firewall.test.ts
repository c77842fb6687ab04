/**
 * The nftables firewall: the rendered /etc/nftables.conf, and the controls read back from nft's JSON. The JSON here
 * is real `nft -j` output (nftables 1.0.6, Debian 12) captured from a simulator that loaded the ruleset rendered for
 * FIXTURE_SPEC. That nft accepts every rendered variant is proven in test/integration/firewall.test.ts.
 */
import { describe, expect, it } from 'vitest';
import {
  FIREWALL_ACTIVATE,
  FIREWALL_FILES,
  firewallControls,
  firewallResources,
  renderRuleset,
} from '../../activities/harden/firewall';
import { UnexpectedHostOutput } from '../../activities/host/errors';
import type { HostSession, ProbeResult } from '../../activities/host/session';
import { digest } from '../../activities/resources/files';
import type { ControlResult } from '../../model/report';
import { specSchema, type Spec, type SpecInput } from '../../model/schema';
import { validate } from '../../model/validate';

const spec = (extra: Partial<SpecInput> = {}): Spec =>
  validate(specSchema, { version: 1, hosts: [{ name: 'vps1', address: '127.0.0.1' }], ...extra }, 'test');

/** Rule lines of a rendered ruleset (comments and blank lines dropped), trimmed. */
const rules = (text: string) =>
  text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

describe('renderRuleset', () => {
  const text = renderRuleset(spec());

  it("manages only steward's table and never flushes the ruleset", () => {
    expect(rules(text).filter((l) => /flush/.test(l))).toEqual([]);
    expect(rules(text).slice(0, 3)).toEqual([
      'table inet steward',
      'delete table inet steward',
      'table inet steward {',
    ]);
    expect(rules(text).filter((l) => /\btable\b/.test(l) && !l.includes('table inet steward'))).toEqual([]);
    expect(text).toMatch(/^#!\/usr\/sbin\/nft -f\n# Managed by steward \(harden\)/);
  });

  it('drops inbound by default and lets in what keeps the host working', () => {
    const lines = rules(text);
    expect(lines).toContain('type filter hook input priority filter; policy drop;');
    expect(lines).toContain('ct state established,related accept comment "established"');
    expect(lines).toContain('iifname "lo" accept comment "loopback"');
    expect(text).toMatch(/icmpv6 type \{[^}]*nd-neighbor-solicit, nd-neighbor-advert[^}]*\} ip6 hoplimit 255 accept/);
    expect(text).toMatch(/icmpv6 type \{[^}]*packet-too-big[^}]*\} accept/);
    expect(text).toMatch(/icmp type \{[^}]*destination-unreachable[^}]*\} accept/);
  });

  it('allows SSH on the spec port, rate-limited per source (IPv6 per /64)', () => {
    const lines = rules(renderRuleset(spec({ ssh: { port: 2222 }, firewall: { sshRateLimit: 6 } })));
    expect(lines).toContain(
      'meta nfproto ipv4 tcp dport 2222 ct state new update @ssh_meter_v4 { ip saddr limit rate over 6/minute burst 6 packets } counter drop comment "ssh rate limit"',
    );
    expect(lines).toContain(
      'meta nfproto ipv6 tcp dport 2222 ct state new update @ssh_meter_v6 { ip6 saddr & ffff:ffff:ffff:ffff:: limit rate over 6/minute burst 6 packets } counter drop comment "ssh rate limit"',
    );
    expect(lines).toContain('tcp dport 2222 accept comment "ssh"');
    expect(lines.findIndex((l) => l.includes('"ssh rate limit"'))).toBeLessThan(
      lines.indexOf('tcp dport 2222 accept comment "ssh"'),
    );
    expect(text).not.toMatch(/dport 2222/);
  });

  it('opens the spec ingress in the input chain and for published ports in the forward chain', () => {
    const lines = rules(text);
    expect(lines).toContain('tcp dport 80 accept comment "ingress 80/tcp"');
    expect(lines).toContain('tcp dport 443 accept comment "ingress 443/tcp"');
    expect(lines).toContain('type filter hook forward priority filter - 10; policy accept;');
    expect(lines).toContain(
      'ct status dnat meta l4proto tcp ct original proto-dst 443 accept comment "published 443/tcp"',
    );
    const forward = lines.slice(lines.indexOf('chain forward {'));
    const lastAllowed = forward.findIndex((l) => l.includes('"published 443/tcp"'));
    const dropRest = forward.indexOf('ct status dnat counter drop comment "published port not in ingress"');
    expect(lastAllowed).toBeGreaterThan(forward.indexOf('iifname "br-*" accept comment "from containers"'));
    expect(dropRest).toBeGreaterThan(lastAllowed);
    expect(forward).toContain('oifname "docker0" ct state new counter drop comment "outside to containers"');
  });

  it('splits sources by family, masks host bits and drops networks inside others', () => {
    const lines = rules(
      renderRuleset(
        spec({
          firewall: {
            ingress: [
              { port: 8080, sources: ['10.1.0.0/16', '10.0.0.1/8', '192.0.2.7', '2001:DB8:0:1:5::/64'] },
              { port: 8080, sources: ['192.0.2.7/32'], description: 'again' },
              { port: 51820, protocol: 'udp', sources: ['::/0'] },
            ],
            sshSources: ['0.0.0.0/0'],
          },
        }),
      ),
    );
    expect(lines).toContain('ip saddr { 10.0.0.0/8, 192.0.2.7 } tcp dport 8080 accept comment "ingress 8080/tcp"');
    expect(lines).toContain('ip6 saddr 2001:db8:0:1::/64 tcp dport 8080 accept comment "ingress 8080/tcp"');
    expect(lines).toContain('meta nfproto ipv6 udp dport 51820 accept comment "ingress 51820/udp"');
    expect(lines).toContain(
      'ct status dnat ip saddr { 10.0.0.0/8, 192.0.2.7 } meta l4proto tcp ct original proto-dst 8080 accept comment "published 8080/tcp"',
    );
    expect(lines).toContain('meta nfproto ipv4 tcp dport 22 accept comment "ssh"');
    expect(lines.filter((l) => l.includes('"ssh rate limit"'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('"ingress 8080/tcp"'))).toHaveLength(2);
  });

  it('closes SSH when firewall.ssh is false and renders no ingress when there is none', () => {
    const lines = rules(renderRuleset(spec({ firewall: { ssh: false, ingress: [] } })));
    expect(lines.filter((l) => /dport 22|"ssh/.test(l))).toEqual([]);
    expect(lines.filter((l) => /"(ingress|published) \d/.test(l))).toEqual([]);
    expect(lines).toContain('ct status dnat counter drop comment "published port not in ingress"');
  });

  it('refuses an ingress rule without sources in the spec, naming it', () => {
    const result = specSchema.safeParse({
      version: 1,
      hosts: [{ name: 'h', address: '127.0.0.1' }],
      firewall: { ingress: [{ port: 8080, sources: [] }] },
    });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(['firewall', 'ingress', 0, 'sources']);
  });

  it('only removes its table when the firewall is disabled', () => {
    expect(rules(renderRuleset(spec({ firewall: { enabled: false } })))).toEqual([
      'table inet steward',
      'delete table inet steward',
    ]);
  });

  it('keeps a description on one comment line, so it cannot add rules', () => {
    const evil = renderRuleset(
      spec({ firewall: { ingress: [{ port: 443, description: 'x\ntable inet evil { }\r\u2028flush ruleset' }] } }),
    );
    expect(evil).not.toMatch(/^\s*(table inet evil|flush)/m);
    expect(evil).toContain('# 443/tcp from anywhere: x table inet evil { } flush ruleset');
  });

  it('is deterministic', () => {
    expect(renderRuleset(spec())).toBe(text);
  });

  it('refuses values the schema should have refused, naming the field', () => {
    const base = spec();
    const bad =
      (firewall: Partial<Spec['firewall']>, ssh: Partial<Spec['ssh']> = {}) =>
      () =>
        renderRuleset({ ...base, ssh: { ...base.ssh, ...ssh }, firewall: { ...base.firewall, ...firewall } });
    expect(bad({ sshSources: ['999.1.1.1'] })).toThrow(/firewall.sshSources: "999.1.1.1" is not an IP/);
    expect(bad({ sshSources: ['10.0.0.0/33'] })).toThrow(/not an IP address/);
    expect(bad({ sshSources: ['2001:db8::1::1'] })).toThrow(/not an IP address/);
    expect(bad({ sshSources: ['1:2:3'] })).toThrow(/not an IP address/);
    expect(bad({ sshSources: ['010.0.0.1'] })).toThrow(/not an IP address/);
    expect(bad({ ingress: [{ port: 70000, protocol: 'tcp', sources: ['::/0'] }] })).toThrow(
      /firewall.ingress\[0\].port: 70000 is not a port number/,
    );
    expect(bad({ ingress: [{ port: 80, protocol: 'sctp' as 'tcp', sources: ['::/0'] }] })).toThrow(/not tcp or udp/);
    expect(bad({}, { port: 0 })).toThrow(/ssh.port/);
    expect(bad({ sshRateLimit: 1.5 })).toThrow(/sshRateLimit/);
    try {
      bad({ sshSources: ['x'] })();
    } catch (err) {
      expect(err).toMatchObject({ type: 'InvalidSpec', nonRetryable: true });
    }
  });
});

describe('firewallResources and FIREWALL_ACTIVATE', () => {
  it('writes the drop-in and a validated 0600 ruleset, then keeps the service and the live table in line', () => {
    const resources = firewallResources(spec(), 'vps1');
    expect(resources.map((r) => r.id)).toEqual([
      'dir:/etc/systemd/system/nftables.service.d',
      'file:/etc/systemd/system/nftables.service.d/steward.conf',
      'file:/etc/nftables.conf',
      'overrides:nftables',
      'service:nftables',
      'nftables:inet steward',
    ]);
    expect(FIREWALL_FILES).toEqual(['/etc/nftables.conf', '/etc/systemd/system/nftables.service.d/steward.conf']);
  });

  it('loads only a file steward wrote; otherwise it removes just its own table', () => {
    expect(FIREWALL_ACTIVATE).toContain("grep -qs '^# Managed by steward (harden)' /etc/nftables.conf");
    expect(FIREWALL_ACTIVATE).toContain('nft -f /etc/nftables.conf');
    expect(FIREWALL_ACTIVATE).toContain('nft delete table inet steward');
    expect(FIREWALL_ACTIVATE).not.toMatch(/flush/);
    expect(renderRuleset(spec()).split('\n')[1]).toMatch(/^# Managed by steward \(harden\)/);
    expect(renderRuleset(spec({ firewall: { enabled: false } })).split('\n')[1]).toMatch(/^# Managed by steward/);
  });
});

/** The spec whose rendered ruleset produced LIVE below. */
const FIXTURE_SPEC: Partial<SpecInput> = {
  firewall: {
    sshSources: ['203.0.113.0/24', '2001:db8::/32'],
    ingress: [{ port: 443 }, { port: 8080, sources: ['198.51.100.7'] }],
  },
};

/** LIVE_PROBE output on the simulator: `nft list tables inet`, then both chains as JSON, each with its exit code. */
const LIVE = `table inet steward
--- 0
{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"chain": {"family": "inet", "table": "steward", "name": "input", "handle": 1, "type": "filter", "hook": "input", "prio": 0, "policy": "drop"}}, {"rule": {"family": "inet", "table": "steward", "chain": "input", "handle": 5, "comment": "loopback", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "lo"}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "input", "handle": 7, "comment": "neighbour discovery", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "icmpv6", "field": "type"}}, "right": {"set": ["nd-router-solicit", "nd-router-advert", "nd-neighbor-solicit", "nd-neighbor-advert"]}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "hoplimit"}}, "right": 255}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "input", "handle": 8, "comment": "multicast listener queries", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": {"prefix": {"addr": "fe80::", "len": 10}}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "icmpv6", "field": "type"}}, "right": "mld-listener-query"}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "input", "handle": 9, "comment": "established", "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "input", "handle": 10, "comment": "invalid", "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "invalid"}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "input", "handle": 12, "comment": "icmp", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "icmp", "field": "type"}}, "right": {"set": ["destination-unreachable", "echo-request", "time-exceeded", "parameter-problem"]}}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "input", "handle": 14, "comment": "icmpv6", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "icmpv6", "field": "type"}}, "right": {"set": ["destination-unreachable", "packet-too-big", "time-exceeded", "parameter-problem", "echo-request"]}}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "input", "handle": 15, "comment": "dhcpv6 replies", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": {"prefix": {"addr": "fe80::", "len": 10}}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "sport"}}, "right": 547}}, {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}}, "right": 546}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "input", "handle": 16, "comment": "ssh rate limit", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}}, {"set": {"op": "update", "elem": {"payload": {"protocol": "ip", "field": "saddr"}}, "set": "@ssh_meter_v4", "stmt": [{"limit": {"rate": 15, "burst": 15, "per": "minute", "inv": true}}]}}, {"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "input", "handle": 17, "comment": "ssh rate limit", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}}, {"set": {"op": "update", "elem": {"&": [{"payload": {"protocol": "ip6", "field": "saddr"}}, "ffff:ffff:ffff:ffff::"]}, "set": "@ssh_meter_v6", "stmt": [{"limit": {"rate": 15, "burst": 15, "per": "minute", "inv": true}}]}}, {"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "input", "handle": 18, "comment": "ssh", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": {"prefix": {"addr": "203.0.113.0", "len": 24}}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "input", "handle": 19, "comment": "ssh", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip6", "field": "saddr"}}, "right": {"prefix": {"addr": "2001:db8::", "len": 32}}}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 22}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "input", "handle": 20, "comment": "ingress 443/tcp", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 443}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "input", "handle": 21, "comment": "ingress 8080/tcp", "expr": [{"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "198.51.100.7"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "input", "handle": 22, "comment": "dropped by policy", "expr": [{"counter": {"packets": 0, "bytes": 0}}]}}]}
--- 0
{"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"chain": {"family": "inet", "table": "steward", "name": "forward", "handle": 2, "type": "filter", "hook": "forward", "prio": -10, "policy": "accept"}}, {"rule": {"family": "inet", "table": "steward", "chain": "forward", "handle": 23, "comment": "established", "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "forward", "handle": 24, "comment": "from containers", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "docker0"}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "forward", "handle": 25, "comment": "from containers", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "br-*"}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "forward", "handle": 26, "comment": "published 443/tcp", "expr": [{"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}, {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}, {"match": {"op": "==", "left": {"ct": {"key": "proto-dst", "dir": "original"}}, "right": 443}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "forward", "handle": 27, "comment": "published 8080/tcp", "expr": [{"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}, {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}}, "right": "198.51.100.7"}}, {"match": {"op": "==", "left": {"meta": {"key": "l4proto"}}, "right": "tcp"}}, {"match": {"op": "==", "left": {"ct": {"key": "proto-dst", "dir": "original"}}, "right": 8080}}, {"accept": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "forward", "handle": 28, "comment": "published port not in ingress", "expr": [{"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}, {"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "forward", "handle": 29, "comment": "outside to containers", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "docker0"}}, {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}}, {"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]}}, {"rule": {"family": "inet", "table": "steward", "chain": "forward", "handle": 30, "comment": "outside to containers", "expr": [{"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "br-*"}}, {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}}, {"counter": {"packets": 0, "bytes": 0}}, {"drop": null}]}}]}
--- 0
`;

const ABSENT = [
  '--- 0',
  'Error: No such file or directory',
  'list chain inet steward input',
  '                ^^^^^^^',
  '--- 1',
  'Error: No such file or directory',
  '--- 1',
  '',
].join('\n');

/** A session whose probe answers with canned host output, like HostSession.probe does. */
function fakeSession(live: string, s: Spec, enabled = 'enabled'): HostSession {
  const outputs: Record<string, ProbeResult> = {
    live: { out: live, code: 0 },
    enabled: { out: `${enabled}\n`, code: 0 },
    conf: { out: `${digest(renderRuleset(s))}\n`, code: 0 },
  };
  return {
    target: { name: 'vps1' },
    probe: (probes: Record<string, string>) =>
      Promise.resolve(Object.fromEntries(Object.keys(probes).map((k) => [k, outputs[k]]))),
  } as unknown as HostSession;
}

const byId = (results: ControlResult[]) => Object.fromEntries(results.map((r) => [r.control, r]));

describe('firewallControls', () => {
  it('passes every control when the live ruleset is the rendered one', async () => {
    const s = spec(FIXTURE_SPEC);
    const results = await firewallControls(fakeSession(LIVE, s), s);
    expect(results.filter((r) => r.status !== 'pass')).toEqual([]);
    expect(byId(results)).toMatchObject({
      'firewall.input-policy': { expected: 'drop', observed: 'drop' },
      'firewall.ssh': { observed: '22/tcp from 203.0.113.0/24, 2001:db8::/32, 15/minute per source' },
      'firewall.ingress.443/tcp': { observed: 'from anywhere' },
      'firewall.ingress.8080/tcp': { observed: 'from 198.51.100.7' },
      'firewall.forward-published-ports': {
        observed: 'others dropped; allowed: 443/tcp from anywhere; 8080/tcp from 198.51.100.7',
      },
      'firewall.rules': { observed: 'input 15 rules, forward 8 rules' },
    });
  });

  it('fails what differs from another spec, including ports the spec does not open', async () => {
    const s = spec({ firewall: { sshRateLimit: 10, ingress: [{ port: 443 }, { port: 80 }] } });
    const results = byId(await firewallControls(fakeSession(LIVE, spec(FIXTURE_SPEC)), s));
    expect(results['firewall.ssh']).toMatchObject({
      status: 'fail',
      expected: '22/tcp from anywhere, 10/minute per source',
    });
    expect(results['firewall.ingress.80/tcp']).toMatchObject({ status: 'fail', observed: 'closed' });
    expect(results['firewall.ingress.8080/tcp']).toMatchObject({
      status: 'fail',
      expected: 'closed',
      observed: 'from 198.51.100.7',
    });
    expect(results['firewall.persisted']?.status).toBe('fail');
  });

  it('notices a policy changed to accept, a foreign rule and a missing drop', async () => {
    const s = spec(FIXTURE_SPEC);
    const tampered = LIVE.replace('"policy": "drop"', '"policy": "accept"')
      .replace(', "comment": "published port not in ingress"', '')
      .replace('"comment": "icmp", ', '');
    const results = byId(await firewallControls(fakeSession(tampered, s), s));
    expect(results['firewall.input-policy']).toMatchObject({ status: 'fail', observed: 'accept' });
    expect(results['firewall.rules']?.observed).toBe(
      'input 15 rules (not steward\'s: "no comment"; missing: "icmp"), forward 8 rules (not steward\'s: "no comment"; missing: "published port not in ingress")',
    );
    expect(results['firewall.forward-published-ports']?.status).toBe('pass');
  });

  it('reports a missing table, and passes it when the firewall is disabled', async () => {
    const on = spec();
    const results = byId(await firewallControls(fakeSession(ABSENT, on, 'disabled'), on));
    expect(results['firewall.input-policy']).toMatchObject({ status: 'fail', observed: 'no input chain' });
    expect(results['firewall.forward-published-ports']).toMatchObject({ status: 'fail', observed: 'no forward chain' });
    expect(results['firewall.persisted']).toMatchObject({ status: 'fail' });
    const off = spec({ firewall: { enabled: false } });
    expect(await firewallControls(fakeSession(ABSENT, off), off)).toEqual([
      {
        control: 'firewall.disabled',
        expected: 'no table inet steward',
        observed: 'no table inet steward',
        status: 'pass',
      },
      expect.objectContaining({ control: 'firewall.persisted', status: 'pass' }),
    ]);
    expect(byId(await firewallControls(fakeSession(LIVE, off), off))['firewall.disabled']?.status).toBe('fail');
  });

  it('throws UnexpectedHostOutput on output it cannot read', async () => {
    const s = spec();
    const broken = [
      'sh: 1: nft: not found\n',
      LIVE.replace('{"nftables": [', '{"nftables": ['.slice(0, 5)),
      LIVE.replace('"name": "input"', '"name": 42'),
      'table inet steward\n--- 0\nError: Operation not permitted\n--- 1\n--- 1\n',
    ];
    for (const out of broken) {
      await expect(firewallControls(fakeSession(out, s), s)).rejects.toBeInstanceOf(UnexpectedHostOutput);
    }
  });
});

describe('the live table resource', () => {
  const live = (s: Spec) => firewallResources(s, 'vps1').at(-1)!;

  it('is satisfied by the rendered ruleset and reloads the file when the live table differs', () => {
    const s = spec(FIXTURE_SPEC);
    expect(live(s).diff(live(s).parse({ out: LIVE, code: 0 }))).toEqual([]);
    expect(live(s).diff(live(s).parse({ out: ABSENT, code: 0 }))).toEqual([
      { resource: 'nftables:inet steward', action: 'update', before: 'not loaded', after: 'as /etc/nftables.conf' },
    ]);
    const other = spec();
    expect(live(other).diff(live(other).parse({ out: LIVE, code: 0 }))).toEqual([
      expect.objectContaining({ before: expect.stringMatching(/^differs: firewall\.ssh, /) }),
    ]);
  });
});
