/**
 * Security services: unattended security upgrades (with the security repository present), fail2ban banning
 * repeated failed SSH logins through nftables, Debian's AIDE setup with its daily check, and process accounting.
 */
import type { ControlResult, Finding } from '../../model/report';
import type { Spec } from '../../model/schema';
import { durationMs } from '../../model/units';
import type { HostSession } from '../host/session';
import { lastRun, printable } from '../host/text';
import { fileResource } from '../resources/files';
import { settingLineResource } from '../resources/lines';
import { retiredResource } from '../resources/retired';
import type { Resource } from '../resources/resource';
import { AUDITING_PACKAGES } from './auditing';
import { loggingPackages } from './logging';
import { fail2banOverrides, FAIL2BAN_JAIL_FILES, overridesResource } from './overrides';
import { serviceResource } from '../resources/system';

const managed = (what: string) =>
  `# Managed by steward (harden): ${what}. Change steward.yaml instead of editing here.\n`;
const root = { owner: 'root', group: 'root', mode: '0644' };

/** Debian packages the enabled controls need. */
export function securityPackages(spec: Spec): string[] {
  const h = spec.harden;
  return [
    // Per-user temporary directories, and a password-quality check for any password set on the host.
    'libpam-tmpdir',
    'libpam-pwquality',
    ...(h.auditing ? AUDITING_PACKAGES : []),
    ...(h.unattendedUpgrades ? ['unattended-upgrades'] : []),
    ...(h.fail2ban.enabled ? ['fail2ban', 'python3-systemd'] : []),
    ...(h.integrity ? ['aide', 'aide-common'] : []),
    ...(h.processAccounting ? ['acct'] : []),
    ...loggingPackages(spec),
  ];
}

/** The security suite of the host's release, as a deb822 source, written only when no source has it. */
function securityRepoResource(): Resource<{ present: boolean; codename: string; mirror: string }> {
  const id = 'apt:security-repository';
  return {
    id,
    probe: [
      '. /etc/os-release; echo "$VERSION_CODENAME"',
      "grep -rhsE '^[^#]*(URIs:|deb ).*' /etc/apt/sources.list /etc/apt/sources.list.d/ | grep -c -- '-security' || true",
      "grep -rhsoE 'https?://[^ ]+/debian-security' /etc/apt/sources.list /etc/apt/sources.list.d/ | head -n1",
    ].join('\n'),
    parse: ({ out }) => {
      const [codename = '', count = '0', mirror = ''] = out.split('\n');
      return { codename, present: Number(count) > 0, mirror: mirror || 'http://deb.debian.org/debian-security' };
    },
    diff: (o) => (o.present ? [] : [{ resource: id, action: 'create', after: `${o.codename}-security` }]),
    apply: async (session, o) => {
      const content = `${managed('security updates')}Types: deb\nURIs: ${o.mirror}\nSuites: ${o.codename}-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n`;
      await session.writeFile('/etc/apt/sources.list.d/steward-security.sources', content, 'root:root', '0644');
    },
  };
}

export function upgradeResources(spec: Spec, host: string): Resource[] {
  if (!spec.harden.unattendedUpgrades) return [];
  return [
    securityRepoResource(),
    fileResource(
      {
        path: '/etc/apt/apt.conf.d/20auto-upgrades',
        content: `${managed('unattended upgrades')}APT::Periodic::Update-Package-Lists "1";\nAPT::Periodic::Unattended-Upgrade "1";\nAPT::Periodic::AutocleanInterval "7";\n`,
        ...root,
      },
      host,
    ),
    fileResource(
      {
        path: '/etc/apt/apt.conf.d/52steward-unattended-upgrades',
        content:
          managed('which upgrades run unattended') +
          'Unattended-Upgrade::Origins-Pattern {\n  "origin=Debian,codename=${distro_codename}-security,label=Debian-Security";\n  "origin=Debian,codename=${distro_codename},label=Debian-Security";\n};\n' +
          'Unattended-Upgrade::Automatic-Reboot "false";\nUnattended-Upgrade::Remove-Unused-Dependencies "true";\n',
        ...root,
      },
      host,
    ),
    serviceResource('unattended-upgrades'),
    serviceResource('apt-daily-upgrade.timer'),
  ];
}

/** steward's jail file: read after jail.local and every jail.d file whose name sorts before it. */
export const FAIL2BAN_JAIL = '/etc/fail2ban/jail.d/steward.local';

/** The sshd jail's settings steward manages, as fail2ban reads them. */
export function fail2banSettings(spec: Spec): Record<string, string> {
  const f = spec.harden.fail2ban;
  return {
    enabled: 'true',
    port: String(spec.ssh.port),
    backend: 'systemd',
    banaction: 'nftables-multiport',
    bantime: f.banTime,
    findtime: f.findTime,
    maxretry: String(f.maxRetry),
  };
}

/**
 * fail2ban's sshd jail, reading the journal and banning through nftables. The values are set in the jail's own
 * section (which no `[DEFAULT]` anywhere overrides) and as defaults for any other jail.
 */
export function fail2banConfig(spec: Spec): string {
  const jail = fail2banSettings(spec);
  const defaults = ['banaction', 'backend', 'bantime', 'findtime', 'maxretry'];
  return [
    managed('repeated failed SSH logins are banned').trimEnd(),
    '[DEFAULT]',
    ...defaults.map((k) => `${k} = ${jail[k]}`),
    'banaction_allports = nftables-allports',
    '',
    '[sshd]',
    ...Object.entries(jail).map(([k, v]) => `${k} = ${v}`),
    '',
  ].join('\n');
}

/** Debian's AIDE setup: its config, database and daily check (`dailyaidecheck.timer`, from aide-common). */
export const AIDE_DB = '/var/lib/aide/aide.db';
const AIDE_CONF = '/etc/aide/aide.conf';
const AIDE_STEWARD = '/etc/aide/aide.conf.d/70_aide_steward';

/**
 * steward's addition to Debian's rules: what changes by design is not watched — the container engine's storage
 * (image layers are content-addressed and checked by the engine) and runtime state, steward's own state, and the
 * stack's directory and data volumes, whose files steward's drift compares with the spec on every check (config,
 * compose file, secrets' owner and mode). The rest of the system stays watched.
 */
export function aideExclusions(spec: Spec): string {
  const escape = (path: string) => path.replace(/[.^$*+?()[\]{}|\\]/g, '\\$&');
  const install = spec.stack.installDir;
  const paths = [
    '/var/lib/docker',
    '/var/lib/containerd',
    '/run/docker',
    '/run/containerd',
    '/var/lib/steward',
    install,
    ...spec.stack.volumes.map((v) => v.path).filter((p) => !p.startsWith(`${install}/`)),
    // Process accounting appends to its log with every process that exits.
    ...(spec.harden.processAccounting ? ['/var/log/account'] : []),
  ];
  return `${managed('file integrity exclusions')}${paths.map((p) => `!${escape(p)}(/|$)\n`).join('')}`;
}

/** The daily check's report, where Debian's `dailyaidecheck` writes it. */
export const AIDE_LOG = '/var/log/aide/aide.log';

/** Drift's probe of the last daily AIDE check: its time, AIDE's exit code, the summary counts and the first entries. */
export const AIDE_CHECK_PROBE = [
  `if [ -s ${AIDE_LOG} ]; then stat -c %Y ${AIDE_LOG}`,
  `sed -n 's/^AIDE returned with exit code \\([0-9]*\\).*/\\1/p' ${AIDE_LOG} | head -n 1`,
  `grep -E '^ *(Added|Removed|Changed) entries:[[:space:]]*[0-9]' ${AIDE_LOG} | tr -s '\\t ' '  '`,
  // Entry lines (`f+++…: /path`, `d =.... mc.. : /path`), not the detailed section's `File: /path`.
  `grep -E '^[a-zA-Z!][-+= ][^:]*: /' ${AIDE_LOG} | head -n 5 | cut -c1-200; fi`,
].join('\n');

/**
 * The last daily AIDE check as a finding: files added, removed or changed since the baseline (high), a check that
 * could not run (medium), or that none has run yet (info). Accepting changes is `aideinit` on the host, on purpose
 * not something steward does for the operator.
 */
export function integrityCheckFinding(out: string, nowMs: number): Finding {
  const last = lastRun(out, nowMs);
  if (!last) {
    return {
      id: 'host.integrity-check',
      severity: 'info',
      message: 'no AIDE check has run yet (dailyaidecheck.timer runs daily)',
    };
  }
  const [code = '', ...rest] = last.lines;
  const exit = Number(code);
  const shown = (l: string) => printable(l).trim().replace(/\s+/g, ' ');
  const counts = rest.filter((l) => /entries:/.test(l)).map(shown);
  const entries = rest.filter((l) => !/entries:/.test(l)).map(shown);
  const when = `the last AIDE check (${last.ageHours} h ago)`;
  if (code === '' || exit >= 14) {
    return {
      id: 'host.integrity-check.failed',
      severity: 'medium',
      message: `${when} did not complete${code ? ` (exit code ${exit})` : ''}: see ${AIDE_LOG}`,
    };
  }
  return exit === 0
    ? { id: 'host.integrity-check', severity: 'info', message: `${when} found no change` }
    : {
        id: 'host.integrity-check.changes',
        severity: 'high',
        message: `${when} found files changed since the baseline (${counts.join(', ')}): ${entries.join(' | ')} (${AIDE_LOG}; accept with aideinit once reviewed)`,
      };
}

/** Before any steward AIDE setup was Debian's: its own config, database and units, now retired. */
const RETIRED_AIDE = {
  units: ['steward-integrity.timer', 'steward-integrity.service'],
  paths: [
    '/etc/steward/aide.conf',
    '/var/lib/steward/aide',
    '/etc/systemd/system/steward-integrity.timer',
    '/etc/systemd/system/steward-integrity.service',
  ],
};

export function intrusionResources(spec: Spec, host: string): Resource[] {
  const h = spec.harden;
  const resources: Resource[] = [];
  if (h.fail2ban.enabled) {
    resources.push(
      fileResource({ path: FAIL2BAN_JAIL, content: fail2banConfig(spec), ...root }, host),
      overridesResource(
        {
          id: 'overrides:fail2ban',
          paths: FAIL2BAN_JAIL_FILES,
          find: (files) => fail2banOverrides(files, FAIL2BAN_JAIL, 'sshd', fail2banSettings(spec)),
          afterApply: 'fail2ban-client reload >/dev/null',
        },
        host,
      ),
    );
  }
  if (h.integrity) {
    resources.push(
      retiredResource('integrity:steward-aide', RETIRED_AIDE.paths, { units: RETIRED_AIDE.units }),
      // One hash instead of Debian's eleven: the daily check reads every watched file, and sha512 alone is the
      // integrity guarantee (the rest cost a minute per check on a small VPS for nothing more).
      settingLineResource(AIDE_CONF, 'Checksums', 'sha512', 'spaced-equals'),
      fileResource({ path: AIDE_STEWARD, content: aideExclusions(spec), ...root }, host),
    );
  }
  return resources;
}

/**
 * The baseline database, made by Debian's `aideinit` as harden's last step, so the baseline is the hardened host.
 * Later changes are not accepted for the operator: the daily check reports them (steward's own included), and
 * accepting them (`aideinit`) stays the operator's decision.
 */
export function integrityBaselineResources(spec: Spec): Resource[] {
  return spec.harden.integrity ? [aideDatabaseResource()] : [];
}

function aideDatabaseResource(): Resource<boolean> {
  const id = `file:${AIDE_DB}`;
  return {
    id,
    probe: `test -s ${AIDE_DB} && echo present || echo absent`,
    parse: ({ out }) => out.trim() === 'present',
    diff: (present) => (present ? [] : [{ resource: id, action: 'create', after: 'baseline database' }]),
    apply: async (session) => {
      await session.check('aideinit --yes --force >/dev/null', { label: 'aideinit', timeoutMs: 15 * 60_000 });
    },
  };
}

/** After intrusion config changed: load unit files and restart fail2ban on its new jail. */
export function intrusionActivate(spec: Spec): string {
  const lines = ['systemctl daemon-reload'];
  if (spec.harden.fail2ban.enabled) lines.push('systemctl reload-or-restart fail2ban');
  return lines.join('\n');
}

/** Services that must run once their config is in place. */
export function intrusionServiceResources(spec: Spec): Resource[] {
  const h = spec.harden;
  return [
    ...(h.fail2ban.enabled ? [serviceResource('fail2ban')] : []),
    ...(h.integrity ? [serviceResource('dailyaidecheck.timer')] : []),
    ...(h.processAccounting ? [serviceResource('acct')] : []),
  ];
}

/** The integrity baseline in place and the daily check's timer active. */
export async function integrityControls(session: HostSession, spec: Spec): Promise<ControlResult[]> {
  if (!spec.harden.integrity) return [];
  const r = await session.script(`systemctl is-active dailyaidecheck.timer 2>/dev/null; test -s ${AIDE_DB} && echo db`);
  const a = r.stdout.trim().split('\n');
  const ok = a[0] === 'active' && a.includes('db');
  return [
    {
      control: 'integrity.aide',
      expected: 'baseline database and active daily timer',
      observed: a.join(', '),
      status: ok ? 'pass' : 'fail',
    },
  ];
}

/** Whether each security service does its job right now. */
export async function serviceControls(session: HostSession, spec: Spec): Promise<ControlResult[]> {
  const h = spec.harden;
  const p = await session.probe({
    upgrades: 'apt-config dump | grep -E "^APT::Periodic::Unattended-Upgrade " || true',
    security:
      "grep -rhsE '^[^#]*(URIs:|Suites:|deb ).*-security' /etc/apt/sources.list /etc/apt/sources.list.d/ | head -n1",
    jail: 'fail2ban-client status sshd 2>&1 | head -n 3',
    // What the running jail uses, whichever file set it.
    jailSettings: h.fail2ban.enabled
      ? [
          // Three client runs side by side (each starts Python).
          'd=$(mktemp -d); for k in maxretry findtime bantime; do',
          '  (fail2ban-client get sshd "$k" 2>&1 | tail -n 1 > "$d/$k") & done; wait',
          'for k in maxretry findtime bantime; do printf "%s %s\\n" "$k" "$(cat "$d/$k")"; done; rm -rf "$d"',
        ].join('\n')
      : 'true',
    acct: 'systemctl is-active acct 2>/dev/null; test -s /var/log/account/pacct && echo accounting',
    virt: 'systemd-detect-virt --container || true',
  });
  const out: ControlResult[] = [];
  const control = (c: string, expected: string, observed: string, ok: boolean, na?: string): ControlResult =>
    na && !ok
      ? { control: c, expected, observed, status: 'not-applicable', note: na }
      : { control: c, expected, observed, status: ok ? 'pass' : 'fail' };
  if (h.unattendedUpgrades) {
    const v = p.upgrades.out.trim();
    out.push(control('upgrades.unattended', 'APT::Periodic::Unattended-Upgrade "1"', v || 'unset', v.endsWith('"1";')));
    const s = p.security.out.trim();
    out.push(control('upgrades.security-repository', '<codename>-security in apt sources', s || 'absent', s !== ''));
  }
  if (h.fail2ban.enabled) {
    const j = p.jail.out.trim();
    out.push(
      control('fail2ban.sshd-jail', 'sshd jail running', j.split('\n')[0] ?? '', /Status for the jail: sshd/.test(j)),
    );
    const f = h.fail2ban;
    const want = `maxretry ${f.maxRetry}, findtime ${durationMs(f.findTime) / 1000}, bantime ${durationMs(f.banTime) / 1000}`;
    const got = p.jailSettings.out
      .trim()
      .split('\n')
      .map((l) => printable(l).trim())
      .join(', ');
    out.push(control('fail2ban.sshd-settings', want, got, got === want));
  }
  if (h.processAccounting) {
    const a = p.acct.out.trim().split('\n');
    const container = p.virt.out.trim();
    out.push(
      control(
        'accounting.acct',
        'process accounting on',
        a.join(', '),
        a[0] === 'active' && a.includes('accounting'),
        container && container !== 'none'
          ? `the kernel's process accounting belongs to the host of this ${container} container`
          : undefined,
      ),
    );
  }
  return out;
}
