/**
 * Remote log shipping (`harden.logShipping`): every message the host logs — the journal reaches rsyslog through its
 * syslog socket — forwarded by rsyslog to the collector the spec names, over TCP, UDP or TLS (the collector's
 * certificate checked against the spec's CA and its name). While the collector is unreachable messages queue on
 * disk and are retried without end, so an outage of the collector loses nothing the disk can hold. Unset, steward's
 * forwarding is removed and rsyslog (if another need installed it) left alone.
 */
import type { ControlResult } from '../../model/report';
import type { Spec } from '../../model/schema';
import type { HostSession } from '../host/session';
import { run } from '../host/shell';
import { fileResource } from '../resources/files';
import type { Resource } from '../resources/resource';
import { retiredResource } from '../resources/retired';
import { serviceResource } from '../resources/system';

export const FORWARD_CONF = '/etc/rsyslog.d/60-steward-forward.conf';
export const COLLECTOR_CA = '/etc/ssl/steward/log-collector-ca.pem';

/** What the forwarding needs installed. */
export function loggingPackages(spec: Spec): string[] {
  const l = spec.harden.logShipping;
  return l ? ['rsyslog', ...(l.protocol === 'tls' ? ['rsyslog-gnutls'] : [])] : [];
}

/**
 * The rsyslog drop-in. Spec values are constrained by the schema (a host name or address, a port, an enum) and
 * contain no quote, so they are safe inside RainerScript's double-quoted strings.
 */
export function forwardConfig(spec: Spec): string {
  const l = spec.harden.logShipping!;
  const tls =
    l.protocol === 'tls'
      ? [
          'StreamDriver="gtls"',
          'StreamDriverMode="1"',
          'StreamDriverAuthMode="x509/name"',
          `StreamDriverPermittedPeers="${l.collector}"`,
          `StreamDriver.CAFile="${COLLECTOR_CA}"`,
        ]
      : [];
  return [
    '# Managed by steward (harden): remote log shipping. Change steward.yaml instead of editing here.',
    '# Everything to the collector, queued on disk while it is unreachable and retried without end.',
    '*.* action(',
    ...[
      'type="omfwd"',
      `target="${l.collector}"`,
      `port="${l.port}"`,
      `protocol="${l.protocol === 'udp' ? 'udp' : 'tcp'}"`,
      ...tls,
      'queue.type="LinkedList"',
      'queue.filename="steward_forward"',
      'queue.maxDiskSpace="256m"',
      'queue.saveOnShutdown="on"',
      'action.resumeRetryCount="-1"',
      'action.resumeInterval="10"',
    ].map((p) => `  ${p}`),
    ')',
    '',
  ].join('\n');
}

export function loggingResources(spec: Spec, host: string): Resource[] {
  const l = spec.harden.logShipping;
  if (!l) return [retiredResource('logging:forward', [FORWARD_CONF, COLLECTOR_CA], { after: RESTART_IF_INSTALLED })];
  const root = { owner: 'root', group: 'root', mode: '0644' };
  return [
    ...(l.caCertificate
      ? [fileResource({ path: COLLECTOR_CA, content: `${l.caCertificate.trim()}\n`, ...root }, host)]
      : [retiredResource('logging:collector-ca', [COLLECTOR_CA])]),
    // rsyslogd checks the drop-in on its own before it replaces the old one.
    fileResource(
      { path: FORWARD_CONF, content: forwardConfig(spec), ...root, validate: ['rsyslogd', '-N1', '-f'] },
      host,
    ),
  ];
}

export function loggingServiceResources(spec: Spec): Resource[] {
  return spec.harden.logShipping ? [serviceResource('rsyslog')] : [];
}

const RESTART_IF_INSTALLED = 'if systemctl cat rsyslog.service >/dev/null 2>&1; then systemctl try-restart rsyslog; fi';

/** After the forwarding changed: rsyslog reads its configuration only when it starts. */
export const LOGGING_ACTIVATE = RESTART_IF_INSTALLED;

/**
 * Whether the host ships its logs: rsyslog running with steward's forwarding, and over TCP or TLS a connection to
 * the collector's port established (UDP has none to see).
 */
export async function loggingControls(session: HostSession, spec: Spec): Promise<ControlResult[]> {
  const l = spec.harden.logShipping;
  if (!l) return [];
  const p = await session.probe({
    active: 'systemctl is-active rsyslog 2>/dev/null; true',
    conf: `test -s ${run(FORWARD_CONF)}`,
    // Connections take a moment after a restart: look for up to 10 s.
    established:
      l.protocol === 'udp'
        ? 'true'
        : `for i in 1 2 3 4 5 6 7 8 9 10; do n=$(ss -Htn state established ${run(`( dport = :${l.port} )`)} | wc -l); [ "$n" -gt 0 ] && break; sleep 1; done; echo "$n"`,
  });
  const active = p.active.out.trim();
  const connections = Number(p.established.out.trim()) || 0;
  const ok = active === 'active' && p.conf.code === 0 && (l.protocol === 'udp' || connections > 0);
  return [
    {
      control: 'logging.remote',
      expected: `rsyslog forwarding to ${l.collector}:${l.port} over ${l.protocol}${l.protocol === 'udp' ? '' : ', connected'}`,
      observed: `rsyslog ${active || 'unknown'}, forwarding ${p.conf.code === 0 ? 'configured' : 'absent'}${l.protocol === 'udp' ? '' : `, ${connections} connection(s)`}`,
      status: ok ? 'pass' : 'fail',
    },
  ];
}
