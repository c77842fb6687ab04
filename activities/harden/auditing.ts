/**
 * What a careful operator adds so the host can be audited and keeps itself current: security updates applied by
 * harden itself, services using upgraded libraries restarted (needrestart; Docker and containerd excepted, since
 * restarting them restarts the stack) and a pending kernel reboot reported; package file verification (debsums) and
 * a rootkit scanner (rkhunter) on timers; the kernel audit daemon with a rule set where the kernel allows it;
 * sysstat; apt-show-versions and apt-listchanges.
 */
import type { ControlResult, Finding } from '../../model/report';
import type { Spec } from '../../model/schema';
import { UnexpectedHostOutput } from '../host/errors';
import type { HostSession } from '../host/session';
import { run } from '../host/shell';
import { lastRun, printable } from '../host/text';
import { fileResource } from '../resources/files';
import { settingLineResource } from '../resources/lines';
import type { Resource } from '../resources/resource';
import { serviceResource } from '../resources/system';
import { sandbox, serviceUnit, timerUnit } from './timers';

const managed = (what: string) =>
  `# Managed by steward (harden): ${what}. Change steward.yaml instead of editing here.\n`;
const root = { owner: 'root', group: 'root', mode: '0644' };

/** The packages of the auditing baseline (with `harden.auditing`). */
export const AUDITING_PACKAGES = [
  'needrestart',
  'debsums',
  'rkhunter',
  'auditd',
  'sysstat',
  'apt-show-versions',
  'apt-listchanges',
];

/** The timers auditing adds, each a sandboxed oneshot unit. */
export const AUDIT_TIMERS = ['steward-debsums', 'steward-rootkit-scan'] as const;

const RKHUNTER_LOG = '/var/log/rkhunter.log';
const RKHUNTER_DB = '/var/lib/rkhunter/db/rkhunter.dat';
const AUDIT_RULES = '/etc/audit/rules.d/50-steward.rules';

/**
 * needrestart restarts what uses an upgraded library after every apt run, but Docker and containerd: restarting
 * either restarts the stack's containers, so they are reported (`needrestart -b`) for a maintenance window instead.
 * Written before needrestart is installed, so its very first run already follows it.
 */
export function needrestartResources(spec: Spec, host: string): Resource[] {
  if (!spec.harden.auditing) return [];
  return [
    fileResource(
      {
        path: '/etc/needrestart/conf.d/50-steward.conf',
        content: [
          managed('services using upgraded libraries are restarted'),
          "$nrconf{restart} = 'a';",
          '$nrconf{kernelhints} = 0;',
          '$nrconf{ucodehints} = 0;',
          '# Restarting these restarts the stack: reported, never restarted by an upgrade.',
          '$nrconf{override_rc}{qr(^(docker|containerd)\\.service$)} = 0;',
          '',
        ].join('\n'),
        ...root,
      },
      host,
    ),
  ];
}

/** The audit rules: who changes identities, privileges, sshd, the firewall, time, kernel modules and Docker. */
export function auditRules(spec: Spec): string {
  const watch = (path: string, key: string) => `-w ${path} -p wa -k ${key}`;
  return [
    managed('kernel audit rules'),
    ...['/etc/passwd', '/etc/group', '/etc/shadow', '/etc/gshadow', '/etc/security/opasswd'].map((p) =>
      watch(p, 'identity'),
    ),
    watch('/etc/sudoers', 'privilege'),
    watch('/etc/sudoers.d/', 'privilege'),
    watch('/etc/ssh/sshd_config', 'sshd'),
    watch('/etc/ssh/sshd_config.d/', 'sshd'),
    watch('/etc/nftables.conf', 'firewall'),
    watch('/etc/sysctl.conf', 'sysctl'),
    watch('/etc/sysctl.d/', 'sysctl'),
    watch('/etc/docker/', 'docker'),
    watch(`/home/${spec.ssh.opsUser}/.ssh/`, 'ops-keys'),
    '-a always,exit -F arch=b64 -S adjtimex,settimeofday,clock_settime -k time-change',
    '-a always,exit -F arch=b64 -S init_module,finit_module,delete_module -k modules',
    '-a always,exit -F arch=b64 -S mount,umount2 -F auid>=1000 -F auid!=unset -k mounts',
    '',
  ].join('\n');
}

/** Whether this host is a container (where the kernel's audit subsystem and its clock belong to the host). */
const CONTAINER_PROBE = 'systemd-detect-virt --container 2>/dev/null || true';
const isContainer = (out: string) => out.trim() !== '' && out.trim() !== 'none';

/** auditd enabled and running with steward's rules loaded; nothing to do in a container, which cannot run it. */
function auditdResource(): Resource<{ container: boolean; state: string; rules: number }> {
  const id = 'service:auditd';
  return {
    id,
    probe: [
      CONTAINER_PROBE,
      'echo "$(systemctl is-enabled auditd 2>/dev/null || true),$(systemctl is-active auditd 2>/dev/null || true)"',
      'auditctl -l 2>/dev/null | grep -c -- "-k " || true',
    ].join('\n'),
    parse: ({ out }) => {
      const [virt = '', state = '', rules = '0'] = out.split('\n');
      return { container: isContainer(virt), state, rules: Number(rules) || 0 };
    },
    diff: (o) =>
      o.container || (o.state === 'enabled,active' && o.rules > 0)
        ? []
        : [
            {
              resource: id,
              action: 'update',
              before: { state: o.state, rules: o.rules },
              after: 'enabled, active, rules loaded',
            },
          ],
    apply: async (session) => {
      await session.check('systemctl enable --now auditd && augenrules --load', {
        label: 'start auditd with its rules',
      });
    },
  };
}

/** A baseline that must exist before a scan can compare (rkhunter's file properties). */
function rkhunterBaselineResource(): Resource<boolean> {
  const id = `file:${RKHUNTER_DB}`;
  return {
    id,
    probe: `test -s ${run(RKHUNTER_DB)} && echo present || echo absent`,
    parse: ({ out }) => out.trim() === 'present',
    diff: (present) => (present ? [] : [{ resource: id, action: 'create', after: 'file properties baseline' }]),
    apply: async (session) => {
      await session.check('rkhunter --propupd --nocolors >/dev/null', {
        label: 'rkhunter --propupd',
        timeoutMs: 600_000,
      });
    },
  };
}

/** The auditing baseline's files, baselines and services (after its packages are installed). */
export function auditingResources(spec: Spec, host: string): Resource[] {
  if (!spec.harden.auditing) return [];
  const unit = (name: string, content: string) =>
    fileResource({ path: `/etc/systemd/system/${name}`, content, ...root }, host);
  return [
    settingLineResource('/etc/default/sysstat', 'ENABLED', '"true"', 'equals'),
    // rkhunter's file properties follow every apt run, so an upgrade is not reported as tampering.
    settingLineResource('/etc/default/rkhunter', 'APT_AUTOGEN', '"true"', 'equals'),
    fileResource({ path: AUDIT_RULES, content: auditRules(spec), owner: 'root', group: 'root', mode: '0640' }, host),
    unit(
      'steward-debsums.service',
      // Exit 2 (a changed file) fails the unit: `systemctl --failed` and the journal show which.
      serviceUnit(
        'verify installed package files against their checksums',
        ['/usr/bin/debsums --silent --changed'],
        sandbox(),
      ),
    ),
    unit('steward-debsums.timer', timerUnit('weekly package file verification', 'weekly', '1h')),
    unit(
      'steward-rootkit-scan.service',
      serviceUnit(
        'rootkit and malware scan',
        [`/usr/bin/rkhunter --cronjob --report-warnings-only --nocolors --logfile ${RKHUNTER_LOG}`],
        // A scanner must see the whole system: read-only everywhere but its own state and log.
        sandbox({ writes: ['/var/lib/rkhunter', '/var/log'], readAll: true }),
      ),
    ),
    unit('steward-rootkit-scan.timer', timerUnit('daily rootkit scan', 'daily', '1h')),
    rkhunterBaselineResource(),
  ];
}

/** After the auditing files changed: systemd reads the units, and a running auditd loads the new rules. */
export const AUDITING_ACTIVATE =
  'systemctl daemon-reload && if systemctl is-active --quiet auditd; then augenrules --load >/dev/null; fi';

export function auditingServiceResources(spec: Spec): Resource[] {
  if (!spec.harden.auditing) return [];
  return [serviceResource('sysstat'), ...AUDIT_TIMERS.map((t) => serviceResource(`${t}.timer`)), auditdResource()];
}

// ---------------------------------------------------------------------------------------------------------------
// Security updates

const PACKAGE = /^[a-z0-9][a-z0-9.+-]*$/;

/** Security updates the host's package lists know of, by package. */
export function parseSecurityUpdates(host: string, out: string): string[] {
  return out
    .split('\n')
    .filter((l) => /^[^/\s]+\/\S*-security[\s,]/.test(l))
    .map((l) => {
      const name = l.slice(0, l.indexOf('/'));
      if (!PACKAGE.test(name))
        throw new UnexpectedHostOutput(host, `apt list: not a package name: ${JSON.stringify(name)}`);
      return name;
    });
}

/**
 * Pending security updates, installed by harden (unattended-upgrades installs later ones daily). Observed from the
 * package lists the host has; applying refreshes them first and installs every security update then known, new
 * dependencies included, nothing removed. Not drift-checked: a newly published update is not drift.
 */
export function securityUpdatesResource(host: string, onProgress?: () => void): Resource<string[]> {
  const id = 'updates:security';
  return {
    id,
    probe: 'apt list --upgradable 2>/dev/null || true',
    parse: (r) => parseSecurityUpdates(host, r.out),
    diff: (pending) =>
      pending.length === 0
        ? []
        : [
            {
              resource: id,
              action: 'update',
              before: { pending: pending.length, packages: pending.slice(0, 20) },
              after: 'installed',
            },
          ],
    apply: async (session) => {
      const apt = 'apt-get -q -o DPkg::Lock::Timeout=600';
      await session.check(
        [
          'set -euf',
          'export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=a',
          `${apt} update`,
          // Names as apt printed them, checked against Debian's package name syntax before they become words.
          "pkgs=$(apt list --upgradable 2>/dev/null | grep -E '^[a-z0-9][a-z0-9.+-]*/[^ ]*-security[ ,]' | cut -d/ -f1 | tr '\\n' ' ')",
          `[ -z "$pkgs" ] || ${apt} install -y --only-upgrade --no-remove -o Dpkg::Options::=--force-confold $pkgs`,
        ].join('\n'),
        { label: 'install security updates', timeoutMs: 30 * 60_000, ...(onProgress ? { onOutput: onProgress } : {}) },
      );
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Controls and findings

/**
 * The PAM modules in place, and each auditing service doing its job right now; auditd not-applicable in a container,
 * with the reason.
 */
export async function auditingControls(session: HostSession, spec: Spec): Promise<ControlResult[]> {
  const p = await session.probe({
    virt: CONTAINER_PROBE,
    auditd: 'systemctl is-active auditd 2>/dev/null; auditctl -l 2>/dev/null | grep -c -- "-k " || true',
    timers: AUDIT_TIMERS.map((t) => `systemctl is-active ${run(`${t}.timer`)} 2>/dev/null || true`).join('\n'),
    sysstat: 'systemctl is-active sysstat 2>/dev/null || true; grep -E "^ENABLED=" /etc/default/sysstat || true',
    rkhunter: `test -s ${run(RKHUNTER_DB)} && echo baseline || echo none`,
    pam: 'grep -lE "pam_tmpdir|pam_pwquality" /etc/pam.d/common-session /etc/pam.d/common-password 2>/dev/null || true',
  });
  const container = p.virt.out.trim();
  const [auditState = '', auditRulesLoaded = '0'] = p.auditd.out.trim().split('\n');
  const timers = p.timers.out.trim().split('\n');
  const pam = p.pam.out;
  const accounts: ControlResult[] = [
    {
      control: 'accounts.pam-tmpdir',
      expected: 'pam_tmpdir in common-session',
      observed: pam.includes('common-session') ? 'present' : 'absent',
      status: pam.includes('common-session') ? 'pass' : 'fail',
    },
    {
      control: 'accounts.password-quality',
      expected: 'pam_pwquality in common-password',
      observed: pam.includes('common-password') ? 'present' : 'absent',
      status: pam.includes('common-password') ? 'pass' : 'fail',
    },
  ];
  if (!spec.harden.auditing) return accounts;
  return [
    ...accounts,
    isContainer(container)
      ? {
          control: 'audit.auditd',
          expected: 'auditd active with steward rules',
          observed: auditState || 'inactive',
          status: 'not-applicable',
          note: `the kernel's audit subsystem belongs to the host of this ${container} container; rules are installed for a VM`,
        }
      : {
          control: 'audit.auditd',
          expected: 'auditd active with steward rules',
          observed: `${auditState}, ${auditRulesLoaded} rules`,
          status: auditState === 'active' && Number(auditRulesLoaded) > 0 ? 'pass' : 'fail',
        },
    ...AUDIT_TIMERS.map((t, i): ControlResult => ({
      control: `timer.${t}`,
      expected: 'active',
      observed: timers[i] || 'inactive',
      status: timers[i] === 'active' ? 'pass' : 'fail',
    })),
    {
      control: 'audit.rkhunter-baseline',
      expected: 'file properties baseline',
      observed: p.rkhunter.out.trim(),
      status: p.rkhunter.out.trim() === 'baseline' ? 'pass' : 'fail',
    },
    {
      control: 'audit.sysstat',
      expected: 'active, ENABLED="true"',
      observed: p.sysstat.out.trim().split('\n').join(', '),
      status: /^active\nENABLED="true"$/.test(p.sysstat.out.trim()) ? 'pass' : 'fail',
    },
  ];
}

/**
 * What still needs a restart after upgrades (needrestart's batch report): services it left alone (Docker and
 * containerd), and a newer kernel than the one running, as findings with what to do.
 */
export async function restartFindings(session: HostSession): Promise<Finding[]> {
  const r = await session.script(
    'needrestart -b -r l 2>/dev/null || true; test -e /run/reboot-required && echo REBOOT-REQUIRED',
    {
      label: 'needrestart -b',
    },
  );
  return restartFindingsFrom(r.stdout);
}

/** Pure: {@link restartFindings} from `needrestart -b` output (and the reboot-required marker line). */
export function restartFindingsFrom(stdout: string): Finding[] {
  const lines = stdout.split('\n');
  const services = lines.flatMap((l) => (/^NEEDRESTART-SVC: ([\w@.:-]+)$/.exec(l) ?? []).slice(1));
  // Kernel versions as needrestart prints them; anything else in their place is not shown.
  const field = (key: string) =>
    lines
      .find((l) => l.startsWith(`${key}: `))
      ?.slice(key.length + 2)
      .trim() ?? '';
  const kernel = field('NEEDRESTART-KSTA');
  const version = (v: string) => (/^[\w.+~-]{1,64}$/.test(v) ? v : '');
  const running = version(field('NEEDRESTART-KCUR'));
  const expected = version(field('NEEDRESTART-KEXP'));
  const findings: Finding[] = [];
  if (services.length > 0) {
    findings.push({
      id: 'host.services-need-restart',
      severity: 'medium',
      message: `${services.join(', ')} still use upgraded libraries: restart in a maintenance window (restarting Docker restarts the stack)`,
    });
  }
  if (kernel === '2' || kernel === '3' || lines.includes('REBOOT-REQUIRED')) {
    findings.push({
      id: 'host.reboot-required',
      severity: 'medium',
      message: `a reboot is pending${running && expected ? ` (running kernel ${running}, installed ${expected})` : ''}: reboot in a maintenance window`,
    });
  }
  return findings;
}

/** The stack's containers after updates: each running, none unhealthy; not applicable before a deploy. */
export async function stackAfterUpdatesControl(session: HostSession): Promise<ControlResult> {
  const r = await session.script(
    "docker ps -a --filter label=com.docker.compose.project --format '{{.Names}} {{.State}} {{.Status}}' 2>/dev/null || true",
    { label: 'stack containers' },
  );
  const rows = r.stdout.trim().split('\n').filter(Boolean);
  const bad = rows.filter((l) => l.split(' ')[1] !== 'running' || l.includes('(unhealthy)'));
  if (rows.length === 0) {
    return {
      control: 'stack.after-updates',
      expected: 'every container running',
      observed: 'no stack',
      status: 'not-applicable',
      note: 'nothing deployed yet',
    };
  }
  return {
    control: 'stack.after-updates',
    expected: 'every container running, none unhealthy',
    observed: bad.length === 0 ? `${rows.length} running` : bad.join('; '),
    status: bad.length === 0 ? 'pass' : 'fail',
  };
}

/** Drift's probe of the last rootkit scan: its time and its warnings. */
export const ROOTKIT_SCAN_PROBE = `if [ -s ${run(RKHUNTER_LOG)} ]; then stat -c %Y ${run(RKHUNTER_LOG)}; grep -c 'Warning:' ${run(RKHUNTER_LOG)} || true; grep 'Warning:' ${run(RKHUNTER_LOG)} | head -n 5 | cut -c1-200; fi`;

/** The last rootkit scan as a finding: its warnings (high), or that none has run yet (info). */
export function rootkitScanFinding(out: string, nowMs: number): Finding {
  const last = lastRun(out, nowMs);
  if (!last) {
    return {
      id: 'host.rootkit-scan',
      severity: 'info',
      message: 'no rootkit scan has run yet (steward-rootkit-scan.timer runs daily)',
    };
  }
  const [count = '0', ...warnings] = last.lines;
  const n = Number(count) || 0;
  const when = `the last rootkit scan (${last.ageHours} h ago)`;
  return n === 0
    ? { id: 'host.rootkit-scan', severity: 'info', message: `${when} found nothing` }
    : {
        id: 'host.rootkit-scan.warnings',
        severity: 'high',
        message: `${when} reported ${n} warning(s): ${warnings.map((w) => printable(w)).join(' | ')} (${RKHUNTER_LOG})`,
      };
}
