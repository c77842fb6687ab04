/**
 * Security services: unattended security upgrades (with the security repository present), fail2ban banning
 * repeated failed SSH logins through nftables, AIDE file integrity checks on a timer, and process accounting.
 */
import type { ControlResult } from '../../model/report';
import type { Spec } from '../../model/schema';
import type { HostSession } from '../host/session';
import { fileResource } from '../resources/files';
import type { Resource } from '../resources/resource';
import { sandbox } from './timers';
import { AUDITING_PACKAGES } from './auditing';
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
    ...(h.integrity ? ['aide'] : []),
    ...(h.processAccounting ? ['acct'] : []),
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

/** fail2ban's sshd jail, reading the journal and banning through nftables. */
export function fail2banConfig(spec: Spec): string {
  const f = spec.harden.fail2ban;
  return [
    managed('repeated failed SSH logins are banned').trimEnd(),
    '[DEFAULT]',
    'banaction = nftables-multiport',
    'banaction_allports = nftables-allports',
    'backend = systemd',
    `bantime = ${f.banTime}`,
    `findtime = ${f.findTime}`,
    `maxretry = ${f.maxRetry}`,
    '',
    '[sshd]',
    'enabled = true',
    `port = ${spec.ssh.port}`,
    '',
  ].join('\n');
}

/** AIDE over system binaries and configuration, with steward's own small database and a daily check. */
export const AIDE_CONFIG = `${managed('file integrity monitoring')}database_in=file:/var/lib/steward/aide/aide.db
database_out=file:/var/lib/steward/aide/aide.db.new
gzip_dbout=yes
report_url=stdout
Checks = p+i+n+u+g+s+m+c+sha256
/usr/bin Checks
/usr/sbin Checks
/usr/lib/systemd/system Checks
/etc Checks
!/etc/mtab$
!/etc/adjtime$
!/etc/resolv.conf$
!/etc/hostname$
!/etc/hosts$
!/etc/machine-id$
!/etc/.*~$
`;

const AIDE_INIT = [
  'set -e',
  'install -d -m 0700 /var/lib/steward/aide',
  'if [ ! -s /var/lib/steward/aide/aide.db ]; then',
  '  aide --config /etc/steward/aide.conf --init >/dev/null',
  '  mv /var/lib/steward/aide/aide.db.new /var/lib/steward/aide/aide.db',
  'fi',
].join('\n');

export function intrusionResources(spec: Spec, host: string): Resource[] {
  const h = spec.harden;
  const resources: Resource[] = [];
  if (h.fail2ban.enabled) {
    resources.push(
      fileResource({ path: '/etc/fail2ban/jail.d/steward.local', content: fail2banConfig(spec), ...root }, host),
    );
  }
  if (h.integrity) {
    resources.push(
      fileResource(
        { path: '/etc/steward/aide.conf', content: AIDE_CONFIG, owner: 'root', group: 'root', mode: '0600' },
        host,
      ),
      aideDatabaseResource(),
      fileResource(
        {
          path: '/etc/systemd/system/steward-integrity.service',
          content: `${managed('file integrity check')}[Unit]\nDescription=steward: AIDE file integrity check\n\n[Service]\nType=oneshot\nExecStart=/usr/bin/aide --config /etc/steward/aide.conf --check\n${sandbox().join('\n')}\n`,
          ...root,
        },
        host,
      ),
      fileResource(
        {
          path: '/etc/systemd/system/steward-integrity.timer',
          content: `${managed('file integrity check')}[Unit]\nDescription=steward: daily file integrity check\n\n[Timer]\nOnCalendar=daily\nRandomizedDelaySec=1h\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n`,
          ...root,
        },
        host,
      ),
    );
  }
  return resources;
}

function aideDatabaseResource(): Resource<boolean> {
  return {
    id: 'file:/var/lib/steward/aide/aide.db',
    probe: 'test -s /var/lib/steward/aide/aide.db && echo present || echo absent',
    parse: ({ out }) => out.trim() === 'present',
    diff: (present) =>
      present ? [] : [{ resource: 'file:/var/lib/steward/aide/aide.db', action: 'create', after: 'baseline database' }],
    apply: async (session) => {
      await session.check(AIDE_INIT, { label: 'aide --init', timeoutMs: 15 * 60_000 });
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
    ...(h.integrity ? [serviceResource('steward-integrity.timer')] : []),
    ...(h.processAccounting ? [serviceResource('acct')] : []),
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
    aide: 'systemctl is-active steward-integrity.timer 2>/dev/null; test -s /var/lib/steward/aide/aide.db && echo db',
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
  }
  if (h.integrity) {
    const a = p.aide.out.trim().split('\n');
    out.push(
      control(
        'integrity.aide',
        'baseline database and active daily timer',
        a.join(', '),
        a[0] === 'active' && a.includes('db'),
      ),
    );
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
