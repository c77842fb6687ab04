import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  auditingResources,
  auditRules,
  defaultsLineResource,
  needrestartResources,
  parseSecurityUpdates,
  restartFindingsFrom,
  rootkitScanFinding,
} from '../../activities/harden/auditing';
import { sandbox } from '../../activities/harden/timers';
import { specSchema } from '../../model/schema';
import { validate } from '../../model/validate';

const spec = (extra: object = {}) =>
  validate(specSchema, { version: 1, hosts: [{ name: 'h', address: '127.0.0.1' }], ...extra }, 'test');

describe('security updates', () => {
  const listed = [
    'Listing...',
    'libssl3/oldstable-security 3.0.22-1~deb12u2 amd64 [upgradable from: 3.0.20-1~deb12u2]',
    'tzdata/oldstable-security,oldstable-updates 2026f-0+deb12u1 all [upgradable from: 2026b-0+deb12u1]',
    'base-files/oldstable 12.4+deb12u13 amd64 [upgradable from: 12.4+deb12u12]',
  ].join('\n');

  it('takes only the security suite’s updates, by package name', () => {
    expect(parseSecurityUpdates('h', listed)).toEqual(['libssl3', 'tzdata']);
  });

  it('refuses a name that is not a Debian package name, naming it', () => {
    expect(() => parseSecurityUpdates('h', 'x;reboot$(id)/stable-security 1 all')).toThrow(
      /not a package name: "x;reboot\$\(id\)"/,
    );
  });

  it('is planned as one change with the pending count, and never drift-checked (the catalogue test shows)', async () => {
    const { securityUpdatesResource } = await import('../../activities/harden/auditing');
    const r = securityUpdatesResource('h');
    expect(r.diff(['libssl3', 'tzdata'])).toEqual([
      {
        resource: 'updates:security',
        action: 'update',
        before: { pending: 2, packages: ['libssl3', 'tzdata'] },
        after: 'installed',
      },
    ]);
    expect(r.diff([])).toEqual([]);
  });
});

describe('after upgrades', () => {
  it('reports the services needrestart left alone and a pending kernel', () => {
    const findings = restartFindingsFrom(
      [
        'NEEDRESTART-VER: 3.6',
        'NEEDRESTART-KCUR: 6.1.0-25-amd64',
        'NEEDRESTART-KEXP: 6.1.0-28-amd64',
        'NEEDRESTART-KSTA: 3',
        'NEEDRESTART-SVC: docker.service',
        'NEEDRESTART-SVC: containerd.service',
      ].join('\n'),
    );
    expect(findings.map((f) => f.id)).toEqual(['host.services-need-restart', 'host.reboot-required']);
    expect(findings[0]!.message).toMatch(/^docker\.service, containerd\.service still use upgraded libraries/);
    expect(findings[1]!.message).toContain('running kernel 6.1.0-25-amd64, installed 6.1.0-28-amd64');
  });

  it('reports nothing when nothing is pending', () => {
    expect(restartFindingsFrom('NEEDRESTART-VER: 3.6\nNEEDRESTART-KSTA: 1\n')).toEqual([]);
  });

  it('keeps Docker and containerd out of needrestart’s automatic restarts', () => {
    const conf = needrestartResources(spec(), 'h')[0]!.desired as { content: string };
    expect(conf.content).toContain("$nrconf{restart} = 'a';");
    expect(conf.content).toContain('$nrconf{override_rc}{qr(^(docker|containerd)\\.service$)} = 0;');
    expect(needrestartResources(spec({ harden: { auditing: false } }), 'h')).toEqual([]);
  });
});

describe('the rootkit scan in drift', () => {
  const now = Date.parse('2026-12-06T12:00:00Z');
  const at = String(now / 1000 - 3 * 3600);

  it('says when no scan has run yet', () => {
    expect(rootkitScanFinding('', now)).toMatchObject({ id: 'host.rootkit-scan', severity: 'info' });
  });

  it('reports a scan’s warnings as high, with its age, and strips control bytes from the host’s text', () => {
    const f = rootkitScanFinding(`${at}\n2\nWarning: Hidden file found: /dev/.x\x1b[31m\nWarning: suspicious`, now);
    expect(f).toMatchObject({ id: 'host.rootkit-scan.warnings', severity: 'high' });
    expect(f.message).toBe(
      'the last rootkit scan (3 h ago) reported 2 warning(s): Warning: Hidden file found: /dev/.x?[31m | Warning: suspicious (/var/log/rkhunter.log)',
    );
    expect(rootkitScanFinding(`${at}\n0\n`, now).message).toBe('the last rootkit scan (3 h ago) found nothing');
  });
});

describe('the auditing baseline', () => {
  it('watches identities, privileges, sshd, the firewall, kernel settings, Docker and the ops user’s keys', () => {
    const rules = auditRules(spec());
    for (const line of [
      '-w /etc/shadow -p wa -k identity',
      '-w /etc/sudoers.d/ -p wa -k privilege',
      '-w /etc/ssh/sshd_config.d/ -p wa -k sshd',
      '-w /etc/nftables.conf -p wa -k firewall',
      '-w /home/steward/.ssh/ -p wa -k ops-keys',
      '-a always,exit -F arch=b64 -S init_module,finit_module,delete_module -k modules',
    ]) {
      expect(rules.split('\n')).toContain(line);
    }
    // No -e 2: immutable rules would need a reboot for steward to change them.
    expect(rules).not.toMatch(/^-e 2/m);
  });

  it('runs its scans in a read-only sandbox with no network', () => {
    const units = auditingResources(spec(), 'h')
      .map((r) => r.desired)
      .filter((d): d is { kind: 'file'; path: string; content: string } & never => d?.kind === 'file')
      .filter((d) => (d as { path: string }).path.endsWith('.service'));
    expect(units.length).toBe(2);
    for (const u of units as { path: string; content: string }[]) {
      expect(u.content).toContain('ProtectSystem=strict');
      expect(u.content).toContain('PrivateNetwork=yes');
      expect(u.content).toContain('NoNewPrivileges=yes');
    }
    expect(sandbox({ readAll: true })).toContain('ProtectHome=read-only');
    expect(sandbox()).toEqual(expect.arrayContaining(['ProtectHome=yes', 'PrivateDevices=yes']));
  });

  it('sets a defaults-file line in place or appends it, on a real file, and only differs when it must', () => {
    const dir = mkdtempSync(join(tmpdir(), 'steward-defaults-'));
    const file = join(dir, 'sysstat');
    writeFileSync(file, '# sysstat\nENABLED="false"\nHISTORY=7\n');
    const r = defaultsLineResource(file, 'ENABLED', '"true"');
    const observe = () => r.parse({ out: execFileSync('sh', ['-c', r.probe], { encoding: 'utf8' }), code: 0 });
    expect(r.diff(observe())).toEqual([
      { resource: `line:${file} ENABLED`, action: 'update', before: 'ENABLED="false"', after: 'ENABLED="true"' },
    ]);
    const script = (r.apply as unknown as (s: { check: (c: string) => Promise<void> }) => Promise<void>)({
      check: async (c) => void execFileSync('sh', ['-c', c]),
    });
    return script.then(() => {
      expect(readFileSync(file, 'utf8')).toBe('# sysstat\nENABLED="true"\nHISTORY=7\n');
      expect(r.diff(observe())).toEqual([]);
    });
  });
});
