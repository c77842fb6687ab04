/**
 * Kernel and account hardening: sysctls (keeping what Docker needs), unused filesystems and protocols blacklisted,
 * core dumps off, sensitive file modes, locked empty passwords, a restrictive login umask.
 */
import type { ControlResult } from '../../model/report';
import type { Spec } from '../../model/schema';
import { UnexpectedHostOutput } from '../host/errors';
import type { HostSession } from '../host/session';
import { run } from '../host/shell';
import { fileResource } from '../resources/files';
import { settingLineResource } from '../resources/lines';
import type { Resource } from '../resources/resource';
import { overridesResource, SYSCTL_DIRS, sysctlOverrides, sudoersOverrides, sysctlReplacement } from './overrides';

/**
 * dev-sec-style kernel baseline. `net.ipv4.ip_forward` stays 1: Docker's container networking needs it
 * (dev-sec #213 broke Docker by setting it to 0).
 */
export const SYSCTL_BASELINE: Readonly<Record<string, string>> = {
  'net.ipv4.ip_forward': '1',
  'net.ipv4.conf.all.accept_redirects': '0',
  'net.ipv4.conf.default.accept_redirects': '0',
  'net.ipv4.conf.all.secure_redirects': '0',
  'net.ipv4.conf.default.secure_redirects': '0',
  'net.ipv4.conf.all.send_redirects': '0',
  'net.ipv4.conf.default.send_redirects': '0',
  'net.ipv4.conf.all.accept_source_route': '0',
  'net.ipv4.conf.default.accept_source_route': '0',
  'net.ipv4.conf.all.rp_filter': '1',
  'net.ipv4.conf.default.rp_filter': '1',
  'net.ipv4.conf.all.log_martians': '1',
  'net.ipv4.conf.default.log_martians': '1',
  'net.ipv4.icmp_echo_ignore_broadcasts': '1',
  'net.ipv4.icmp_ignore_bogus_error_responses': '1',
  'net.ipv4.tcp_syncookies': '1',
  'net.ipv6.conf.all.accept_redirects': '0',
  'net.ipv6.conf.default.accept_redirects': '0',
  'net.ipv6.conf.all.accept_source_route': '0',
  'net.ipv6.conf.default.accept_source_route': '0',
  'net.ipv6.conf.all.accept_ra': '0',
  'net.ipv6.conf.default.accept_ra': '0',
  'kernel.kptr_restrict': '2',
  'kernel.dmesg_restrict': '1',
  'kernel.randomize_va_space': '2',
  'kernel.yama.ptrace_scope': '1',
  'kernel.perf_event_paranoid': '3',
  'kernel.unprivileged_bpf_disabled': '1',
  'net.core.bpf_jit_harden': '2',
  'kernel.sysrq': '0',
  'kernel.ctrl-alt-del': '0',
  'kernel.core_uses_pid': '1',
  'dev.tty.ldisc_autoload': '0',
  'fs.protected_hardlinks': '1',
  'fs.protected_symlinks': '1',
  'fs.protected_fifos': '2',
  'fs.protected_regular': '2',
  'fs.suid_dumpable': '0',
};

/** Filesystems and network protocols an agent VPS never needs: loading them is refused. */
export const BLACKLISTED_MODULES = [
  'cramfs',
  'freevxfs',
  'jffs2',
  'hfs',
  'hfsplus',
  'udf',
  'dccp',
  'sctp',
  'rds',
  'tipc',
  // USB and FireWire storage: nothing on a VPS mounts a stick; a DMA-capable bus is an attack path.
  'usb-storage',
  'uas',
  'firewire-core',
  'firewire-ohci',
  'firewire-sbp2',
];

/** Files whose owner and mode matter, with the values the baseline wants (only enforced where they exist). */
export const SENSITIVE_PATHS: readonly { path: string; owner: string; group: string; mode: string }[] = [
  { path: '/etc/shadow', owner: 'root', group: 'shadow', mode: '0640' },
  { path: '/etc/gshadow', owner: 'root', group: 'shadow', mode: '0640' },
  { path: '/etc/passwd', owner: 'root', group: 'root', mode: '0644' },
  { path: '/etc/group', owner: 'root', group: 'root', mode: '0644' },
  { path: '/etc/ssh/sshd_config', owner: 'root', group: 'root', mode: '0600' },
  { path: '/etc/crontab', owner: 'root', group: 'root', mode: '0600' },
  { path: '/etc/cron.d', owner: 'root', group: 'root', mode: '0700' },
  { path: '/etc/cron.hourly', owner: 'root', group: 'root', mode: '0700' },
  { path: '/etc/cron.daily', owner: 'root', group: 'root', mode: '0700' },
  { path: '/etc/cron.weekly', owner: 'root', group: 'root', mode: '0700' },
  { path: '/etc/cron.monthly', owner: 'root', group: 'root', mode: '0700' },
];

const SYSCTL_FILE = '/etc/sysctl.d/60-steward-hardening.conf';
/** steward's sudo defaults; it sorts before the ops user's own file, `steward-<ops user>`. */
export const SUDO_DEFAULTS_FILE = '/etc/sudoers.d/steward-defaults';
/**
 * sudo defaults the baseline sets: a command run from a terminal gets a pseudo-terminal of its own, so it cannot
 * push input into the user's terminal after sudo returns. (steward's own commands run without a terminal.)
 */
export const SUDO_DEFAULTS: Readonly<Record<string, true>> = { use_pty: true };

export function sysctlSettings(spec: Spec): Record<string, string> {
  return {
    ...SYSCTL_BASELINE,
    ...Object.fromEntries(Object.entries(spec.harden.sysctl).map(([k, v]) => [k, String(v)])),
  };
}

const managed = (what: string) =>
  `# Managed by steward (harden): ${what}. Local edits are reverted; change steward.yaml instead.\n`;

/** The kernel step's files: sysctl settings, module blacklist, core dump limits. */
export function kernelResources(spec: Spec, host: string): Resource[] {
  const sysctl = Object.entries(sysctlSettings(spec))
    .map(([k, v]) => `${k} = ${v}\n`)
    .join('');
  // `install … /bin/true` makes every load of the module succeed without loading it (the form host auditors look
  // for); `blacklist` also keeps it from being loaded by alias.
  const blacklist = BLACKLISTED_MODULES.map((m) => `install ${m} /bin/true\nblacklist ${m}\n`).join('');
  const root = { owner: 'root', group: 'root', mode: '0644' };
  return [
    fileResource({ path: SYSCTL_FILE, content: managed('kernel settings') + sysctl, ...root }, host),
    overridesResource(
      {
        id: 'overrides:sysctl',
        paths: [...SYSCTL_DIRS.map((d) => `${d}/*.conf`), '/etc/sysctl.conf'].join(' '),
        find: (files) => sysctlOverrides(files, SYSCTL_FILE, sysctlSettings(spec)),
        replacement: sysctlReplacement,
      },
      host,
    ),
    fileResource(
      { path: '/etc/modprobe.d/steward-blacklist.conf', content: managed('unused modules') + blacklist, ...root },
      host,
    ),
    fileResource(
      {
        path: '/etc/security/limits.d/steward-coredump.conf',
        content: `${managed('no core dumps')}* hard core 0\n`,
        ...root,
      },
      host,
    ),
    fileResource(
      {
        path: '/etc/systemd/coredump.conf.d/steward.conf',
        content: `${managed('no core dumps')}[Coredump]\nStorage=none\nProcessSizeMax=0\n`,
        ...root,
      },
      host,
    ),
  ];
}

/** Loads steward's sysctl file; keys the kernel refuses (read-only /proc/sys in a container) are reported by the controls. */
export const KERNEL_ACTIVATE = `sysctl -q -e -p ${run(SYSCTL_FILE)} >/dev/null 2>&1 || true`;

/** Owner and mode of an existing path; a missing path is left alone (nothing to protect). */
function permissionResource(
  p: { path: string; owner: string; group: string; mode: string },
  host: string,
): Resource<string> {
  const id = `perm:${p.path}`;
  const want = `${p.owner}:${p.group} ${p.mode}`;
  return {
    id,
    probe: `if [ -e ${run(p.path)} ]; then ${run('stat', '-c', '%U:%G %a', p.path)}; else echo absent; fi`,
    parse: ({ out }) => {
      const line = out.trim();
      if (line === 'absent') return line;
      const m = /^(\S+:\S+) ([0-7]{1,4})$/.exec(line);
      if (!m) throw new UnexpectedHostOutput(host, `unexpected stat output for ${p.path}: ${JSON.stringify(line)}`);
      return `${m[1]} ${m[2]!.padStart(4, '0')}`;
    },
    diff: (o) => (o === 'absent' || o === want ? [] : [{ resource: id, action: 'update', before: o, after: want }]),
    apply: async (session) => {
      await session.check(`${run('chown', `${p.owner}:${p.group}`, p.path)} && ${run('chmod', p.mode, p.path)}`, {
        label: `chmod ${p.path}`,
      });
    },
  };
}

/** Accounts without a password hash: locked, so nobody logs in with an empty password. */
function emptyPasswordsResource(host: string): Resource<string[]> {
  return {
    id: 'accounts:empty-passwords',
    probe: `awk -F: '$2 == "" { print $1 }' /etc/shadow`,
    parse: ({ out, code }) => {
      if (code !== 0) throw new UnexpectedHostOutput(host, 'cannot read /etc/shadow');
      return out.split('\n').filter(Boolean);
    },
    diff: (users) =>
      users.map((u) => ({ resource: `user:${u}`, action: 'update', before: 'empty password', after: 'locked' })),
    apply: async (session, users) => {
      await session.check(users.map((u) => run('passwd', '-l', u)).join(' && '), { label: 'lock empty passwords' });
    },
  };
}

/**
 * login.defs values the baseline sets: the login umask, password ageing for accounts made from now on (the ops user
 * has no password), and the hashing cost of passwords set with the shadow tools.
 */
export const LOGIN_DEFS: Readonly<Record<string, string>> = {
  UMASK: '027',
  PASS_MAX_DAYS: '365',
  PASS_MIN_DAYS: '1',
  PASS_WARN_AGE: '14',
  ENCRYPT_METHOD: 'YESCRYPT',
  YESCRYPT_COST_FACTOR: '7',
  SHA_CRYPT_MIN_ROUNDS: '65536',
  SHA_CRYPT_MAX_ROUNDS: '65536',
};

/**
 * Paths that must give other users no access, observed as `<mode> <path>` lines: each that does is a change,
 * `after` the mode it gets, `close` the command that sets it.
 */
function closedToOthers(o: {
  id: string;
  host: string;
  probe: string;
  after: (mode: string) => string;
  close: (paths: readonly string[]) => string;
  label: string;
}): Resource<{ path: string; mode: string }[]> {
  const isOpen = (p: { mode: string }) => (parseInt(p.mode, 8) & 0o007) !== 0;
  return {
    id: o.id,
    probe: o.probe,
    parse: ({ out }) =>
      out
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          const m = /^([0-7]{3,4}) (\/.+)$/.exec(l);
          if (!m) throw new UnexpectedHostOutput(o.host, `${o.id}: unexpected stat output ${JSON.stringify(l)}`);
          return { mode: m[1]!.padStart(4, '0'), path: m[2]! };
        }),
    diff: (found) => {
      const open = found.filter(isOpen);
      return open.length === 0
        ? []
        : [
            {
              resource: o.id,
              action: 'update',
              before: Object.fromEntries(open.map((p) => [p.path, p.mode])),
              after: Object.fromEntries(open.map((p) => [p.path, o.after(p.mode)])),
            },
          ];
    },
    apply: async (session, found) => {
      await session.check(o.close(found.filter(isOpen).map((p) => p.path)), { label: o.label });
    },
  };
}

/**
 * Home directories closed to other users (0750 or tighter): a home another user can read leaks keys, histories and
 * the agent's files. Only the "other" bits are removed; the owner's and group's stay as they are.
 */
function homeDirectoriesResource(host: string): Resource<{ path: string; mode: string }[]> {
  return closedToOthers({
    id: 'homes:/home',
    host,
    probe: 'for d in /home/*; do [ -d "$d" ] && [ ! -L "$d" ] && stat -c \'%a %n\' -- "$d"; done; true',
    after: (mode) => (parseInt(mode, 8) & ~0o007).toString(8).padStart(4, '0'),
    close: (paths) => run('chmod', 'o-rwx', '--', ...paths),
    label: 'close home directories',
  });
}

/** Compilers and assemblers an attacker with a shell would build tools with; reached through their PATH names. */
export const COMPILERS = ['as', 'cc', 'gcc', 'c++', 'g++', 'clang', 'ld'];

/**
 * Compilers and assemblers (binutils comes with needrestart and rkhunter) executable by root only: a
 * `dpkg-statoverride` so package upgrades keep the mode. Compilers not installed are nothing to do.
 */
function compilersResource(host: string): Resource<{ path: string; mode: string }[]> {
  return closedToOthers({
    id: 'compilers:root-only',
    host,
    probe: [
      `for c in ${COMPILERS.join(' ')}; do p=$(command -v "$c") || continue; p=$(readlink -f -- "$p")`,
      `  [ -f "$p" ] && stat -c '%a %n' -- "$p"; done | sort -u; true`,
    ].join('\n'),
    after: () => '0750',
    close: (paths) =>
      paths
        .map(
          (p) =>
            `dpkg-statoverride --remove ${run(p)} >/dev/null 2>&1; dpkg-statoverride --update --add root root 0750 ${run(p)}`,
        )
        .join(' && '),
    label: 'restrict compilers to root',
  });
}

function umaskResources(host: string): Resource[] {
  const profile = fileResource(
    {
      path: '/etc/profile.d/steward-umask.sh',
      content: `${managed('login umask')}umask 027\n`,
      owner: 'root',
      group: 'root',
      mode: '0644',
    },
    host,
  );
  return [
    ...Object.entries(LOGIN_DEFS).map(([k, v]) => settingLineResource('/etc/login.defs', k, v, 'space')),
    profile,
  ];
}

export function accountResources(spec: Spec, host: string): Resource[] {
  const ops = spec.ssh.opsUser;
  return [
    ...SENSITIVE_PATHS.map((p) => permissionResource(p, host)),
    homeDirectoriesResource(host),
    compilersResource(host),
    ...(spec.ssh.banner.trim()
      ? [
          fileResource(
            { path: '/etc/issue', content: `${spec.ssh.banner.trim()}\n`, owner: 'root', group: 'root', mode: '0644' },
            host,
          ),
        ]
      : []),
    fileResource(
      {
        path: SUDO_DEFAULTS_FILE,
        content:
          managed('sudo defaults') +
          Object.keys(SUDO_DEFAULTS)
            .map((d) => `Defaults ${d}\n`)
            .join(''),
        owner: 'root',
        group: 'root',
        mode: '0440',
        validate: ['visudo', '-cf'],
      },
      host,
    ),
    overridesResource(
      {
        id: 'overrides:sudoers',
        paths: '/etc/sudoers.d/*',
        find: (files) =>
          sudoersOverrides(
            files,
            { defaults: SUDO_DEFAULTS_FILE, rule: `/etc/sudoers.d/steward-${ops}` },
            { defaults: SUDO_DEFAULTS, opsUser: ops, opsGroups: [ops, 'sudo', 'docker'] },
          ),
        mode: '0440',
        validate: ['visudo', '-cf'],
      },
      host,
    ),
    emptyPasswordsResource(host),
    ...umaskResources(host),
  ];
}

/**
 * The effective kernel values. A value the host cannot take because /proc/sys is read-only (a container) is
 * `not-applicable`: the setting is persisted and applies on a real VM at boot.
 */
export async function kernelControls(session: HostSession, spec: Spec): Promise<ControlResult[]> {
  const settings = sysctlSettings(spec);
  const keys = Object.keys(settings);
  const p = await session.probe({
    values: keys
      .map((k) => `printf '%s=%s\\n' ${run(k)} "$(sysctl -n ${run(k)} 2>/dev/null | tr -s '\\t ' ' ')"`)
      .join('\n'),
    writable: 'test -w /proc/sys/net/ipv4/ip_forward && echo rw || echo ro',
    virt: 'systemd-detect-virt --container || true',
  });
  const observed = new Map(
    p.values.out
      .split('\n')
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)] as const),
  );
  const readOnly = p.writable.out.trim() === 'ro';
  const container = p.virt.out.trim();
  return keys.map((key): ControlResult => {
    const got = observed.get(key) ?? '';
    const want = settings[key]!;
    if (got === want) return { control: `sysctl.${key}`, expected: want, observed: got, status: 'pass' };
    if (got === '' || readOnly) {
      const note =
        got === ''
          ? 'not present in this kernel'
          : `/proc/sys is read-only here (${container || 'container'}); persisted for boot`;
      return { control: `sysctl.${key}`, expected: want, observed: got || 'absent', status: 'not-applicable', note };
    }
    return { control: `sysctl.${key}`, expected: want, observed: got, status: 'fail' };
  });
}
