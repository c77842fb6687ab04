import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  type ConfigFile,
  fail2banOverrides,
  hasSettings,
  keptAt,
  neutralised,
  overridesResource,
  parseListing,
  sshdOptionOverrides,
  sshdOverrides,
  sshUnitOverrides,
  sudoersOverrides,
  sysctlOverrides,
  sysctlReplacement,
  unitDropInReplacement,
  unitOverrides,
} from '../../activities/harden/overrides';
import { fail2banConfig, fail2banSettings } from '../../activities/harden/services';
import { sshdSettings } from '../../activities/harden/ssh';
import { specSchema } from '../../model/schema';
import { validate } from '../../model/validate';

const spec = validate(specSchema, { version: 1, hosts: [{ name: 'h', address: '127.0.0.1' }] }, 'test');
const file = (path: string, content: string, extra: Partial<ConfigFile> = {}): ConfigFile => ({
  path,
  real: path,
  link: false,
  mode: '0644',
  owner: 'root',
  content,
  ...extra,
});

const MAIN = '/etc/ssh/sshd_config';
const DROP_IN = '/etc/ssh/sshd_config.d/00-steward.conf';
const debianMain = [
  'Include /etc/ssh/sshd_config.d/*.conf',
  'KbdInteractiveAuthentication no',
  'UsePAM yes',
  'X11Forwarding yes',
  'PrintMotd no',
  'Subsystem sftp /usr/lib/openssh/sftp-server',
].join('\n');
const steward = file(DROP_IN, 'PasswordAuthentication no\nAllowUsers steward\n');
const sshd = (...extra: ConfigFile[]) =>
  sshdOverrides([file(MAIN, debianMain), steward, ...extra], MAIN, DROP_IN, sshdSettings(spec));

describe('sshd overrides', () => {
  it('finds a drop-in read before steward’s that sets a managed keyword to another value', () => {
    expect(sshd(file('/etc/ssh/sshd_config.d/00-aaa.conf', '# local\nPasswordAuthentication yes\n'))).toEqual([
      {
        file: '/etc/ssh/sshd_config.d/00-aaa.conf',
        line: 2,
        setting: 'PasswordAuthentication',
        value: 'yes',
        managed: 'no',
      },
    ]);
  });

  it('leaves a drop-in read after steward’s alone (sshd keeps the first value), and Debian’s main file too', () => {
    expect(sshd(file('/etc/ssh/sshd_config.d/50-cloud-init.conf', 'PasswordAuthentication yes\n'))).toEqual([]);
  });

  it('finds a Match block wherever it stands, and a list keyword that adds users', () => {
    const found = sshd(
      file(
        '/etc/ssh/sshd_config.d/90-late.conf',
        'AllowUsers mallory\nMatch User alice\n  PasswordAuthentication yes\n',
      ),
    );
    expect(found.map((o) => [o.setting, o.line])).toEqual([
      ['AllowUsers', 1],
      ['PasswordAuthentication', 3],
    ]);
  });

  it('takes sshd’s spellings as the same value and ignores comments and unmanaged keywords', () => {
    const rootByKey = validate(
      specSchema,
      { version: 1, hosts: [{ name: 'h', address: '127.0.0.1' }], ssh: { permitRootLogin: 'prohibit-password' } },
      'test',
    );
    const found = sshdOverrides(
      [
        file(MAIN, debianMain),
        steward,
        file(
          '/etc/ssh/sshd_config.d/00-aaa.conf',
          'passwordauthentication NO\n#PasswordAuthentication yes\nPermitRootLogin without-password\nUsePAM yes\n',
        ),
      ],
      MAIN,
      DROP_IN,
      sshdSettings(rootByKey),
    );
    expect(found).toEqual([]);
  });

  it('reads main-file lines before its Include as winning over the drop-in', () => {
    const found = sshdOverrides(
      [file(MAIN, `PermitEmptyPasswords yes\n${debianMain}`), steward],
      MAIN,
      DROP_IN,
      sshdSettings(spec),
    );
    expect(found).toEqual([expect.objectContaining({ file: MAIN, line: 1, setting: 'PermitEmptyPasswords' })]);
  });
});

describe('sshd command-line overrides', () => {
  const defaults = (content: string) => [file('/etc/default/ssh', content)];
  it('finds -o options that set a managed keyword to another value, and -f or -p in SSHD_OPTS', () => {
    const found = sshdOptionOverrides(
      defaults('# x\nSSHD_OPTS="-o PasswordAuthentication=yes -oX11Forwarding=no -f /etc/ssh/other"\n'),
      '/etc/default/ssh',
      sshdSettings(spec),
    );
    expect(found.map((o) => `${o.line}:${o.setting}=${o.value}`)).toEqual([
      '2:SSHD_OPTS PasswordAuthentication=yes',
      '2:SSHD_OPTS -f=/etc/ssh/other',
    ]);
  });

  it('finds a drop-in that replaces how ssh.service starts sshd, never a hook such as host key generation', () => {
    const hook = file(
      '/etc/systemd/system/ssh.service.d/host-keys.conf',
      '[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n',
    );
    const replaced = file(
      '/etc/systemd/system/ssh.service.d/zz.conf',
      '[Service]\nExecStart=\nExecStart=/usr/sbin/sshd -D -o PasswordAuthentication=yes\nEnvironment="SSHD_OPTS=-p 2222"\n',
    );
    expect(sshUnitOverrides([hook])).toEqual([]);
    expect(sshUnitOverrides([hook, replaced]).map((o) => `${o.line}:${o.setting}`)).toEqual([
      '2:ExecStart',
      '3:ExecStart',
      '4:Environment',
    ]);
  });

  it('leaves Debian’s empty SSHD_OPTS alone', () => {
    expect(sshdOptionOverrides(defaults('SSHD_OPTS=\n'), '/etc/default/ssh', sshdSettings(spec))).toEqual([]);
  });
});

const SYSCTL = '/etc/sysctl.d/60-steward-hardening.conf';
const settings = { 'kernel.kptr_restrict': '2', 'net.ipv4.conf.all.rp_filter': '1' };
const stewardSysctl = file(SYSCTL, 'kernel.kptr_restrict = 2\nnet.ipv4.conf.all.rp_filter = 1\n');

describe('sysctl overrides', () => {
  it('finds a later file (last value wins), not an earlier one', () => {
    const found = sysctlOverrides(
      [
        file('/etc/sysctl.d/10-early.conf', 'kernel.kptr_restrict = 0\n'),
        stewardSysctl,
        file('/etc/sysctl.d/99-zz.conf', '# x\nkernel/kptr_restrict=1\n'),
      ],
      SYSCTL,
      settings,
    );
    expect(found).toEqual([
      { file: '/etc/sysctl.d/99-zz.conf', line: 2, setting: 'kernel.kptr_restrict', value: '1', managed: '2' },
    ]);
  });

  it('matches a glob key, reads one file per name (/etc first), and /etc/sysctl.conf last', () => {
    const found = sysctlOverrides(
      [
        stewardSysctl,
        file('/usr/lib/sysctl.d/70-pkg.conf', '-net.ipv4.conf.*.rp_filter = 2\n'),
        file('/usr/lib/sysctl.d/80-hidden.conf', 'kernel.kptr_restrict = 0\n'),
        file('/etc/sysctl.d/80-hidden.conf', 'kernel.kptr_restrict = 2\n'),
        file('/etc/sysctl.d/99-sysctl.conf', 'kernel.kptr_restrict = 1\n', { link: true, real: '/etc/sysctl.conf' }),
        file('/etc/sysctl.conf', 'kernel.kptr_restrict = 1\n'),
      ],
      SYSCTL,
      settings,
    );
    expect(found.map((o) => `${o.file}:${o.setting}`)).toEqual([
      '/usr/lib/sysctl.d/70-pkg.conf:net.ipv4.conf.all.rp_filter',
      '/etc/sysctl.conf:kernel.kptr_restrict',
    ]);
  });

  it('places steward’s file by its name before it is written (a first plan observes before applying)', () => {
    const pkg = file('/usr/lib/sysctl.d/99-protect-links.conf', 'fs.protected_fifos = 1\n');
    expect(sysctlOverrides([pkg], SYSCTL, { 'fs.protected_fifos': '2' })).toEqual([
      expect.objectContaining({ file: pkg.path, setting: 'fs.protected_fifos', value: '1' }),
    ]);
    const late = file('/etc/ssh/sshd_config.d/50-cloud-init.conf', 'PasswordAuthentication yes\n');
    expect(sshdOverrides([file(MAIN, debianMain), late], MAIN, DROP_IN, sshdSettings(spec))).toEqual([]);
  });

  it('moves a file in /etc aside, and masks another package’s from /etc/sysctl.d', () => {
    expect(sysctlReplacement(file('/etc/sysctl.d/99-zz.conf', ''))).toEqual({
      path: '/etc/sysctl.d/99-zz.conf',
      moveAside: true,
    });
    expect(sysctlReplacement(file('/usr/lib/sysctl.d/70-pkg.conf', ''))).toEqual({
      path: '/etc/sysctl.d/70-pkg.conf',
      moveAside: false,
    });
  });
});

describe('sudoers overrides', () => {
  const files = [
    file('/etc/sudoers.d/README', '# read me\n'),
    file('/etc/sudoers.d/aa-early', 'Defaults !use_pty\n'),
    file('/etc/sudoers.d/steward-defaults', 'Defaults use_pty\n'),
    file('/etc/sudoers.d/steward-steward', 'steward ALL=(ALL:ALL) NOPASSWD: ALL\n'),
    file('/etc/sudoers.d/zz-local', 'Defaults:steward !use_pty # late\n%sudo ALL=(ALL:ALL) ALL\nalice ALL=(ALL) ALL\n'),
    file('/etc/sudoers.d/zz.disabled', 'Defaults !use_pty\n'),
  ];
  const found = sudoersOverrides(
    files,
    { defaults: '/etc/sudoers.d/steward-defaults', rule: '/etc/sudoers.d/steward-steward' },
    { defaults: { use_pty: true }, opsUser: 'steward', opsGroups: ['steward', 'sudo', 'docker'] },
  );

  it('finds a later file that turns a managed default off or gives the ops user a rule of its own', () => {
    expect(found.map((o) => `${o.file}:${o.line}:${o.setting}`)).toEqual([
      '/etc/sudoers.d/zz-local:1:Defaults use_pty',
      '/etc/sudoers.d/zz-local:2:rule for steward',
    ]);
  });

  it('ignores earlier files, files sudo skips (a dot in the name), and rules for other users', () => {
    expect(found.some((o) => o.file.includes('aa-early') || o.file.includes('disabled') || o.line === 3)).toBe(false);
  });
});

describe('fail2ban overrides', () => {
  const jail = '/etc/fail2ban/jail.d/steward.local';
  const settings = fail2banSettings(spec);
  const steward = file(jail, fail2banConfig(spec));

  it("finds the jail's lines read after steward's file, not its defaults or files read before", () => {
    const found = fail2banOverrides(
      [
        file(
          '/etc/fail2ban/jail.conf',
          '[DEFAULT]\nmaxretry = 5\nbackend = auto\n\n[sshd]\nport = ssh\nbackend = %(sshd_backend)s\n',
        ),
        file('/etc/fail2ban/jail.d/defaults-debian.conf', '[sshd]\nenabled = true\n'),
        // Read before steward's file (jail.local, then jail.d/*.local by name): steward's values win.
        file('/etc/fail2ban/jail.local', '[sshd]\nmaxretry = 50\n'),
        file('/etc/fail2ban/jail.d/local.local', '[sshd]\nenabled = false\n'),
        steward,
        // Read after: the [sshd] lines win, the [DEFAULT] one does not (a jail's own value beats any default).
        file(
          '/etc/fail2ban/jail.d/zz-local.local',
          '[DEFAULT]\nmaxretry = 99\n\n[sshd]\n# relax\nenabled = false\nmaxretry = 5\nbantime : 1m\n\n[recidive]\nenabled = true\n',
        ),
        file('/etc/fail2ban/jail.d/zz-notes.txt', '[sshd]\nenabled = false\n'),
      ],
      jail,
      'sshd',
      settings,
    );
    expect(found).toEqual([
      {
        file: '/etc/fail2ban/jail.d/zz-local.local',
        line: 6,
        setting: '[sshd] enabled',
        value: 'false',
        managed: 'true',
      },
      { file: '/etc/fail2ban/jail.d/zz-local.local', line: 8, setting: '[sshd] bantime', value: '1m', managed: '1h' },
    ]);
  });

  it("places steward's file by name before it is written, and sets every managed value in the jail itself", () => {
    const later = file('/etc/fail2ban/jail.d/zz.local', '[sshd]\nport = 2222\n');
    expect(fail2banOverrides([later], jail, 'sshd', settings).map((o) => o.setting)).toEqual(['[sshd] port']);
    const own = fail2banConfig(spec).split('[sshd]')[1]!;
    for (const [k, v] of Object.entries(settings)) expect(own).toContain(`\n${k} = ${v}\n`);
  });
});

describe('unit drop-in overrides', () => {
  it('finds a foreign drop-in that changes how the unit starts or stops, never steward’s own', () => {
    const own = '/etc/systemd/system/nftables.service.d/steward.conf';
    const found = unitOverrides(
      [
        file(own, '[Service]\nExecStop=\nExecStop=-/usr/sbin/nft delete table inet steward\n'),
        file(
          '/etc/systemd/system/nftables.service.d/zz.conf',
          '[Service]\nExecStop=\nExecStop=/usr/sbin/nft flush ruleset\n',
        ),
        file('/etc/systemd/system/nftables.service.d/limits.conf', '[Service]\nLimitNOFILE=4096\n'),
      ],
      own,
      'managed',
    );
    expect(found.map((o) => `${o.line}:${o.setting}=${o.value}`)).toEqual([
      '2:ExecStop=',
      '3:ExecStop=/usr/sbin/nft flush ruleset',
    ]);
    expect(unitDropInReplacement(file('/usr/lib/systemd/system/nftables.service.d/x.conf', ''))).toEqual({
      path: '/etc/systemd/system/nftables.service.d/x.conf',
      moveAside: false,
    });
  });
});

describe('the overrides resource', () => {
  const r = overridesResource(
    {
      id: 'overrides:sysctl',
      paths: '',
      find: (files) => sysctlOverrides(files, SYSCTL, settings),
      replacement: sysctlReplacement,
    },
    'h',
  );
  const foreign = file('/etc/sysctl.d/99-zz.conf', 'vm.swappiness = 10\nkernel.kptr_restrict = 0\n');

  it('plans one change per foreign file: the foreign value before, steward’s after, and where the file goes', () => {
    const files = [stewardSysctl, foreign];
    const changes = r.diff({ files, overrides: sysctlOverrides(files, SYSCTL, settings) });
    expect(changes).toEqual([
      {
        resource: 'override:/etc/sysctl.d/99-zz.conf',
        action: 'update',
        before: { 'kernel.kptr_restrict': '0' },
        after: { 'kernel.kptr_restrict': '2', keptAt: keptAt(foreign) },
      },
    ]);
    expect(keptAt(foreign)).toMatch(/^\/var\/backups\/steward\/overrides\/etc_sysctl\.d_99-zz\.conf\.[0-9a-f]{12}$/);
  });

  it('shows the host’s text in a plan without its control bytes', () => {
    const odd = file('/etc/sysctl.d/99-odd.conf', 'kernel.kptr_restrict = 0\x1b[2J\n');
    const changes = r.diff({
      files: [stewardSysctl, odd],
      overrides: sysctlOverrides([stewardSysctl, odd], SYSCTL, settings),
    });
    expect(changes[0]!.before).toEqual({ 'kernel.kptr_restrict': '0?[2J' });
  });

  it('keeps a file only while it has settings of its own (a unit’s section heading alone is none)', () => {
    expect(hasSettings('[Service]\n# steward: overrode a managed setting (x): ExecStop=\n')).toBe(false);
    expect(hasSettings('[Service]\nLimitNOFILE=4096\n')).toBe(true);
    expect(hasSettings('; comment\n\n')).toBe(false);
  });

  it('comments out only the overriding lines, keeping the file’s other settings', () => {
    const text = neutralised(foreign, sysctlOverrides([stewardSysctl, foreign], SYSCTL, settings), 'kept in x');
    expect(text).toBe(
      'vm.swappiness = 10\n# steward: overrode a managed setting (kept in x): kernel.kptr_restrict = 0\n',
    );
  });

  it('lists files on a real shell without following links into FIFOs, names and contents intact', () => {
    const dir = mkdtempSync(join(tmpdir(), 'steward-overrides-'));
    mkdirSync(join(dir, 'd'));
    writeFileSync(join(dir, 'd', 'a b.conf'), 'x = 1\n');
    execFileSync('mkfifo', [join(dir, 'fifo')]);
    symlinkSync(join(dir, 'fifo'), join(dir, 'd', 'b.conf'));
    symlinkSync(join(dir, 'd', 'a b.conf'), join(dir, 'd', 'c.conf'));
    const probe = overridesResource({ id: 'x', paths: `${dir}/d/* ${dir}/missing/*`, find: () => [] }, 'h').probe;
    const out = execFileSync('sh', ['-c', probe], { encoding: 'utf8', timeout: 10_000 });
    const files = parseListing('h', { out, code: 0 }, 'x');
    // Plain names travel as they are, others (a space) in base64.
    expect(out.split('\n').filter((l) => l.startsWith(`:${dir}/d/`))).toHaveLength(2);
    expect(files.map((f) => [f.path.slice(dir.length), f.link, f.content])).toEqual([
      ['/d/a b.conf', false, 'x = 1\n'],
      ['/d/b.conf', true, ''],
      ['/d/c.conf', true, 'x = 1\n'],
    ]);
    expect(files[2]!.real).toBe(join(dir, 'd', 'a b.conf'));
  });

  it('refuses a listing line it cannot read, naming the resource', () => {
    expect(() => parseListing('h', { out: 'not a listing\n', code: 0 }, 'overrides:sshd')).toThrow(
      /overrides:sshd: not a listing line/,
    );
  });
});
