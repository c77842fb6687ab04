import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  auditingResources,
  auditRules,
  needrestartResources,
  parseSecurityUpdates,
  restartFindingsFrom,
  rootkitScanFinding,
} from '../../activities/harden/auditing';
import { integrityCheckFinding } from '../../activities/harden/services';
import { sandbox } from '../../activities/harden/timers';
import { settingLineResource } from '../../activities/resources/lines';
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

describe('the daily AIDE check in drift', () => {
  const now = Date.parse('2026-12-06T12:00:00Z');
  const at = String(now / 1000 - 5 * 3600);

  it('says when no check has run, when one found nothing, and when one could not complete', () => {
    expect(integrityCheckFinding('', now)).toMatchObject({ id: 'host.integrity-check', severity: 'info' });
    expect(integrityCheckFinding(`${at}\n0\n`, now).message).toBe('the last AIDE check (5 h ago) found no change');
    expect(integrityCheckFinding(`${at}\n17\n`, now)).toMatchObject({
      id: 'host.integrity-check.failed',
      message: expect.stringContaining('exit code 17'),
    });
    expect(integrityCheckFinding(`${at}\n`, now).id).toBe('host.integrity-check.failed');
  });

  it('reports added and changed files as high, naming the first entries without control bytes', () => {
    const out = [
      at,
      '5',
      ' Added entries: 1',
      ' Removed entries: 0',
      ' Changed entries: 1',
      'f+++++++++++++++++: /usr/local/bin/implant\x1b[2J',
      'f >b... mc..H.. . : /etc/passwd',
    ].join('\n');
    const f = integrityCheckFinding(out, now);
    expect(f).toMatchObject({ id: 'host.integrity-check.changes', severity: 'high' });
    expect(f.message).toBe(
      'the last AIDE check (5 h ago) found files changed since the baseline (Added entries: 1, Removed entries: 0, Changed entries: 1): f+++++++++++++++++: /usr/local/bin/implant?[2J | f >b... mc..H.. . : /etc/passwd (/var/log/aide/aide.log; accept with aideinit once reviewed)',
    );
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
    const r = settingLineResource(file, 'ENABLED', '"true"', 'equals');
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

  it('sets `KEY value` and `KEY = value` lines (login.defs, aide.conf), appending a missing one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'steward-lines-'));
    const run = (c: string) => void execFileSync('sh', ['-c', c]);
    const apply = (r: ReturnType<typeof settingLineResource>) =>
      (r.apply as unknown as (s: { check: (c: string) => Promise<void> }) => Promise<void>)({
        check: async (c) => run(c),
      });
    const observe = (r: ReturnType<typeof settingLineResource>) =>
      r.parse({ out: execFileSync('sh', ['-c', r.probe], { encoding: 'utf8' }), code: 0 });
    const defs = join(dir, 'login.defs');
    writeFileSync(defs, '#UMASK 077\nUMASK\t\t022\nPASS_MAX_DAYS\t99999\n');
    const umask = settingLineResource(defs, 'UMASK', '027', 'space');
    const warn = settingLineResource(defs, 'PASS_WARN_AGE', '14', 'space');
    expect(umask.diff(observe(umask))).toEqual([
      { resource: `line:${defs} UMASK`, action: 'update', before: 'UMASK 022', after: 'UMASK 027' },
    ]);
    expect(warn.diff(observe(warn))[0]).toMatchObject({ before: 'unset', after: 'PASS_WARN_AGE 14' });
    await apply(umask);
    await apply(warn);
    expect(readFileSync(defs, 'utf8')).toBe('#UMASK 077\nUMASK 027\nPASS_MAX_DAYS\t99999\nPASS_WARN_AGE 14\n');
    expect([...umask.diff(observe(umask)), ...warn.diff(observe(warn))]).toEqual([]);

    const aide = join(dir, 'aide.conf');
    writeFileSync(aide, 'gzip_dbout=yes\nChecksums = H\ndatabase_attrs = Checksums\n');
    const sums = settingLineResource(aide, 'Checksums', 'sha512', 'spaced-equals');
    expect(sums.diff(observe(sums))[0]).toMatchObject({ before: 'Checksums = H', after: 'Checksums = sha512' });
    await apply(sums);
    expect(readFileSync(aide, 'utf8')).toBe('gzip_dbout=yes\nChecksums = sha512\ndatabase_attrs = Checksums\n');
    expect(() => settingLineResource(aide, 'a;rm', 'x', 'equals')).toThrow(/not a setting name/);
  });
});
