import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { revertScript } from '../../activities/harden/confirm';
import { accountResources, kernelResources, sysctlSettings, SYSCTL_BASELINE } from '../../activities/harden/kernel';
import { AUDITING_PACKAGES } from '../../activities/harden/auditing';
import { aideExclusions, fail2banConfig, securityPackages } from '../../activities/harden/services';
import { cleanupResources, durationHours } from '../../activities/harden/timers';
import { specSchema } from '../../model/schema';
import { validate } from '../../model/validate';

const spec = (extra: object = {}) =>
  validate(specSchema, { version: 1, hosts: [{ name: 'h', address: '127.0.0.1' }], ...extra }, 'test');

describe('paths closed to others', () => {
  const byId = (id: string) => accountResources(spec(), 'h').find((r) => r.id === id)!;

  it('takes only the other bits off a home, and compilers to 0750 through dpkg-statoverride', async () => {
    const homes = byId('homes:/home');
    const seen = homes.parse({ out: '755 /home/admin\n750 /home/steward\n701 /home/a b\n', code: 0 });
    expect(homes.diff(seen)).toEqual([
      {
        resource: 'homes:/home',
        action: 'update',
        before: { '/home/admin': '0755', '/home/a b': '0701' },
        after: { '/home/admin': '0750', '/home/a b': '0700' },
      },
    ]);
    const compilers = byId('compilers:root-only');
    const found = compilers.parse({
      out: '755 /usr/bin/x86_64-linux-gnu-gcc-12\n750 /usr/bin/x86_64-linux-gnu-as\n',
      code: 0,
    });
    expect(compilers.diff(found)[0]?.after).toEqual({ '/usr/bin/x86_64-linux-gnu-gcc-12': '0750' });
    const commands: string[] = [];
    const session = { check: async (script: string) => void commands.push(script) } as never;
    await compilers.apply(session, found, compilers.diff(found));
    await homes.apply(session, seen, homes.diff(seen));
    expect(commands).toEqual([
      'dpkg-statoverride --remove /usr/bin/x86_64-linux-gnu-gcc-12 >/dev/null 2>&1; dpkg-statoverride --update --add root root 0750 /usr/bin/x86_64-linux-gnu-gcc-12',
      "chmod o-rwx -- /home/admin '/home/a b'",
    ]);
    expect(compilers.diff(compilers.parse({ out: '750 /usr/bin/as\n', code: 0 }))).toEqual([]);
  });

  it('refuses a line that is not a mode and an absolute path, naming the resource', () => {
    expect(() => byId('homes:/home').parse({ out: 'stat: cannot stat\n', code: 0 })).toThrow(/homes:\/home/);
  });
});

describe('kernel baseline', () => {
  it('keeps IP forwarding on for Docker while hardening the rest', () => {
    expect(SYSCTL_BASELINE['net.ipv4.ip_forward']).toBe('1');
    expect(SYSCTL_BASELINE['fs.suid_dumpable']).toBe('0');
    expect(SYSCTL_BASELINE['net.ipv4.conf.all.accept_redirects']).toBe('0');
  });

  it('lets the spec override and extend settings', () => {
    const s = sysctlSettings(spec({ harden: { sysctl: { 'kernel.dmesg_restrict': 0, 'vm.swappiness': '10' } } }));
    expect(s['kernel.dmesg_restrict']).toBe('0');
    expect(s['vm.swappiness']).toBe('10');
  });

  it('writes one sysctl file with every setting', () => {
    const ids = kernelResources(spec(), 'h').map((r) => r.id);
    expect(ids).toContain('file:/etc/sysctl.d/60-steward-hardening.conf');
    expect(ids).toContain('file:/etc/modprobe.d/steward-blacklist.conf');
  });
});

describe('security services and cleanup', () => {
  it('installs only the packages of enabled controls', () => {
    const pam = ['libpam-tmpdir', 'libpam-pwquality'];
    expect(securityPackages(spec())).toEqual([
      ...pam,
      ...AUDITING_PACKAGES,
      'unattended-upgrades',
      'fail2ban',
      'python3-systemd',
      'aide',
      'aide-common',
      'acct',
    ]);
    expect(
      securityPackages(spec({ harden: { integrity: false, fail2ban: { enabled: false }, auditing: false } })),
    ).toEqual([...pam, 'unattended-upgrades', 'acct']);
  });

  it("adds to Debian's AIDE rules only what changes by design, each path matched as written", () => {
    const rules = aideExclusions(
      spec({
        stack: {
          volumes: ['state', 'memory'].map((name) => ({ name, path: `/srv/agent.v2/${name}`, owner: 'container' })),
        },
      }),
    );
    const lines = rules.split('\n').filter((l) => l.startsWith('!'));
    expect(lines).toContain('!/var/lib/docker(/|$)');
    expect(lines).toContain('!/srv/agent\\.v2/state(/|$)');
    expect(lines).toContain('!/opt/openclaw(/|$)');
    expect(lines).toContain('!/var/lib/steward(/|$)');
    expect(rules).not.toMatch(/secrets|compose/);
  });

  it('bans through nftables on the SSH port from the spec', () => {
    const jail = fail2banConfig(spec({ ssh: { port: 2200 }, harden: { fail2ban: { maxRetry: 4, banTime: '2h' } } }));
    expect(jail).toContain('banaction = nftables-multiport');
    expect(jail).toContain('backend = systemd');
    expect(jail).toMatch(/\[sshd\]\nenabled = true\nport = 2200/);
    expect(jail).toContain('maxretry = 4');
    expect(jail).toContain('bantime = 2h');
  });

  it.each([
    ['7d', '168h'],
    ['12h', '12h'],
    ['90min', '1.5h'],
    ['1w', '168h'],
  ])('converts %s to Docker until=%s', (d, h) => expect(durationHours(d)).toBe(h));

  it('has a unit and a timer per cleanup job', () => {
    const ids = cleanupResources(spec(), 'h').map((r) => r.id);
    for (const t of ['steward-docker-prune', 'steward-journal-vacuum', 'steward-backup-rotate']) {
      expect(ids).toContain(`file:/etc/systemd/system/${t}.service`);
      expect(ids).toContain(`file:/etc/systemd/system/${t}.timer`);
    }
  });
});

describe('commit-confirm revert script', () => {
  it('restores backed-up files, removes files that did not exist, and re-activates', () => {
    const root = mkdtempSync(join(tmpdir(), 'steward-revert-'));
    const kept = join(root, "it's kept.conf");
    const created = join(root, 'new.conf');
    writeFileSync(kept, 'new content');
    writeFileSync(created, 'should go');
    const script = revertScript({
      name: 'x',
      files: [kept, created],
      activate: `echo activated > ${JSON.stringify(join(root, 'activated'))}`,
    })
      .replaceAll('/var/lib/steward/revert', root)
      .replace(/^logger .*$/m, '');
    // Backups as applyConfirmed lays them out: <dir>/<name>/<index>, or <index>.absent.
    execFileSync('sh', ['-c', `mkdir -p "${root}/x" && echo old content > "${root}/x/0" && : > "${root}/x/1.absent"`]);
    execFileSync('sh', ['-c', script]);
    expect(readFileSync(kept, 'utf8')).toBe('old content\n');
    expect(existsSync(created)).toBe(false);
    expect(existsSync(join(root, 'activated'))).toBe(true);
    expect(existsSync(join(root, 'x.reverted'))).toBe(true);
  });
});
