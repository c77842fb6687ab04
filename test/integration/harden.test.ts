/**
 * harden end to end on a provisioned simulator, through the CLI: the baseline applies and re-applies as a no-op,
 * logins steward must refuse are refused, cleanup timers run, a spec that locks steward out reverts itself on the
 * host within the confirm window, and everything survives a reboot.
 */
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthenticationFailed } from '../../activities/host/errors';
import { openSession, type HostTarget } from '../../activities/host/session';
import { restartSimulator, simulatorExec, type Simulator } from '../../client/dev/simulator';
import { hostName, stage, writeSpec, type Stage } from '../support/fixtures';

const HARDEN = { harden: { confirmSeconds: 30, cleanup: { dockerPruneAfter: '1s' } } };

let world: Stage;
let sim: Simulator;
let spec: string;

const run = (command: string, specFile = spec) => world.cli(specFile, command);

async function onHost(script: string): Promise<string> {
  const r = await simulatorExec(sim.container, ['sh', '-c', script]);
  return r.stdout.trim();
}

function target(user: string): HostTarget {
  const t = { name: hostName(sim), address: sim.address, port: sim.port, identityFile: world.keys.privateKeyPath };
  return { ...t, loginUser: user, opsUser: user, hostKey: sim.hostKey, trustOnFirstUse: false };
}

beforeAll(async () => {
  world = await stage({ taskQueue: 'harden-test', simulators: 1, golden: 'provisioned' });
  sim = world.sims[0]!;
  spec = writeSpec(world.keys, [sim], HARDEN);
});

afterAll(async () => {
  await world?.close();
});

describe('steward harden', () => {
  it('applies the baseline with a passing hardening report, then a re-run changes nothing', async () => {
    const first = await run('harden');
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const host = first.doc!.hosts[0]!;
    expect(host.changes.length).toBeGreaterThan(20);
    const failed = (host.controls ?? []).filter((c) => c.status === 'fail');
    expect(failed).toEqual([]);
    expect(host.controls?.map((c) => c.control)).toEqual(
      expect.arrayContaining([
        'ssh.permitrootlogin',
        'timer.steward-docker-prune',
        'fail2ban.sshd-jail',
        'sysctl.net.ipv4.ip_forward',
      ]),
    );

    // The simulator starts from a Debian image with security updates pending: harden installed them.
    const updates = host.changes.find((c) => c.resource === 'updates:security');
    expect((updates?.before as { pending: number }).pending).toBeGreaterThan(0);
    expect(await onHost("apt list --upgradable 2>/dev/null | grep -c -- '-security' || true")).toBe('0');
    const byId = Object.fromEntries((host.controls ?? []).map((c) => [c.control, c]));
    for (const c of [
      'timer.steward-debsums',
      'timer.steward-rootkit-scan',
      'audit.rkhunter-baseline',
      'audit.sysstat',
      'accounts.pam-tmpdir',
      'accounts.password-quality',
      'integrity.aide',
      'fail2ban.sshd-settings',
    ]) {
      expect(byId[c]?.status, c).toBe('pass');
    }
    // Debian's AIDE setup, not a private one: its config (one hash), steward's exclusions beside Debian's rules, its
    // database and its daily timer.
    expect(
      await onHost(
        "grep -E '^Checksums' /etc/aide/aide.conf; grep -c '^!/' /etc/aide/aide.conf.d/70_aide_steward; test -s /var/lib/aide/aide.db && echo db; systemctl is-active dailyaidecheck.timer; ls /etc/steward/aide.conf 2>&1 | grep -c 'No such'",
      ),
    ).toBe('Checksums = sha512\n7\ndb\nactive\n1');
    // The assembler binutils brought is root's alone, by a dpkg-statoverride an upgrade keeps.
    expect(await onHost('p=$(readlink -f "$(command -v as)"); stat -c %a "$p"; dpkg-statoverride --list "$p"')).toMatch(
      /^750\nroot root 750 \/usr\/bin\/\S+-as$/,
    );
    // auditd cannot run in a container: not applicable, with the reason, and not a failure.
    expect(byId['audit.auditd']).toMatchObject({ status: 'not-applicable', note: expect.stringMatching(/container/) });
    expect(byId['stack.after-updates']).toMatchObject({ status: 'not-applicable' });

    const again = await run('harden');
    expect(again.code).toBe(0);
    expect(again.doc!.hosts[0]!.changes).toEqual([]);
  });

  it('exits 1 naming a control it leaves failing', async () => {
    // The sshd jail stopped by hand: fail2ban runs with steward's configuration, but without the jail it asks for.
    await onHost('fail2ban-client stop sshd');
    try {
      const r = await run('harden');
      expect(r.code).toBe(1);
      const host = r.doc!.hosts[0]!;
      expect(host.error).toMatch(
        /^harden left controls failing: fail2ban\.sshd-jail \(observed .*, expected sshd jail running\)/,
      );
      expect(host.controls?.find((c) => c.control === 'fail2ban.sshd-jail')?.status).toBe('fail');
    } finally {
      await onHost('fail2ban-client reload >/dev/null');
    }
  });

  it('leaves sshd with the baseline in force', async () => {
    const effective = await onHost('sshd -T');
    for (const line of [
      'permitrootlogin no',
      'passwordauthentication no',
      'kbdinteractiveauthentication no',
      'permitemptypasswords no',
      'authenticationmethods publickey',
      'allowusers steward',
      'maxauthtries 3',
      'logingracetime 30',
      'x11forwarding no',
      'allowtcpforwarding no',
      'allowagentforwarding no',
      'loglevel VERBOSE',
    ]) {
      expect(effective.split('\n')).toContain(line);
    }
    expect(effective).toMatch(/^ciphers chacha20-poly1305@openssh.com,/m);
  });

  it('refuses root login and password login', async () => {
    await expect(openSession(target('root'), 'root')).rejects.toBeInstanceOf(AuthenticationFailed);
    expect(
      (await simulatorExec(sim.container, ['sh', '-c', 'echo steward:correct-horse-battery | chpasswd'])).exitCode,
    ).toBe(0);
    const refused = await new Promise<string>((resolve) => {
      const c = new ssh2.Client();
      c.on('ready', () => {
        c.end();
        resolve('accepted');
      });
      c.on('error', (e) => resolve(e.message));
      c.connect({
        host: sim.address,
        port: sim.port,
        username: 'steward',
        password: 'correct-horse-battery',
        tryKeyboard: true,
        readyTimeout: 10_000,
      });
    });
    expect(refused).toMatch(/authentication methods failed/);
  });

  it('schedules cleanup timers; the Docker prune removes stopped containers only', async () => {
    const timers = await onHost('systemctl list-timers --all --no-legend steward-*');
    for (const t of ['steward-docker-prune.timer', 'steward-journal-vacuum.timer', 'steward-backup-rotate.timer']) {
      expect(timers).toContain(t);
    }
    const setup = await simulatorExec(sim.container, [
      'sh',
      '-c',
      [
        'set -e',
        'DEBIAN_FRONTEND=noninteractive apt-get install -y -q busybox-static >/dev/null 2>&1',
        'd=$(mktemp -d) && cp /bin/busybox "$d/busybox" && tar -C "$d" -c . | docker import - steward-test/busybox:1 >/dev/null',
        'docker create --name stopped steward-test/busybox:1 /busybox true >/dev/null',
        'docker run -d --name running steward-test/busybox:1 /busybox sleep 600 >/dev/null',
        'sleep 2',
        'systemctl start steward-docker-prune.service',
        'echo "containers: $(docker ps -a --format "{{.Names}}" | sort | xargs)"',
        'echo "images: $(docker images --format "{{.Repository}}:{{.Tag}}" | xargs)"',
      ].join('\n'),
    ]);
    expect(setup.stderr).toBe('');
    expect(setup.stdout.trim().split('\n')).toEqual(['containers: running', 'images: steward-test/busybox:1']);

    // Every steward unit runs sandboxed, and still does its job.
    expect(
      await onHost(
        'systemctl start steward-journal-vacuum.service steward-backup-rotate.service && systemctl show -p Result --value steward-journal-vacuum.service steward-backup-rotate.service steward-docker-prune.service',
      ),
    ).toBe('success\n\nsuccess\n\nsuccess');
    const levels: string[] = [];
    for (const unit of ['steward-docker-prune', 'steward-journal-vacuum', 'steward-debsums', 'steward-rootkit-scan']) {
      const exposure = await onHost(`systemd-analyze security --no-pager ${unit}.service | tail -n 1`);
      const level = Number(/exposure level for \S+: ([0-9.]+)/.exec(exposure)?.[1]);
      expect(level, `${unit}: ${exposure}`).toBeLessThan(5);
      levels.push(`${unit} ${level}`);
    }
    console.log(`systemd-analyze security exposure: ${levels.join(', ')}`);
  });

  it("Debian's daily AIDE check finds a file planted after the baseline, and drift reports it by name", async () => {
    // The tests before this one changed the host on purpose (packages, jails): accepted first, as an operator would.
    await onHost('aideinit --yes --force >/dev/null 2>&1');
    await onHost('printf x > /usr/local/bin/steward-test-implant && systemctl start dailyaidecheck.service');
    try {
      expect(await onHost('systemctl show -p Result --value dailyaidecheck.service')).toBe('success');
      const drift = await run('drift');
      const finding = drift.doc!.hosts[0]!.findings?.find((f) => f.id.startsWith('host.integrity-check'));
      expect(finding).toMatchObject({ id: 'host.integrity-check.changes', severity: 'high' });
      expect(finding?.message).toMatch(/Added entries: 1\b.*: \/usr\/local\/bin\/steward-test-implant/);
      // The engine's storage, its runtime state and the stack's data are excluded: nothing of theirs is named.
      expect(finding?.message).not.toMatch(/\/var\/lib\/(docker|steward)|\/run\/(docker|containerd)|\/opt\/openclaw/);
    } finally {
      await onHost('rm -f /usr/local/bin/steward-test-implant');
    }
  });

  it("ships the host's logs to the collector the spec names; dropped from the spec, steward's forwarding goes", async () => {
    // The collector: a plain TCP syslog receiver on the host's loopback, writing what it receives to a file.
    await onHost(
      `systemd-run --quiet --unit=steward-test-collector python3 -c '${[
        'import socketserver',
        'class H(socketserver.StreamRequestHandler):',
        '  def handle(self):',
        '    with open("/var/tmp/collector.log", "ab") as f:',
        '      for line in self.rfile: f.write(line); f.flush()',
        'socketserver.ThreadingTCPServer.allow_reuse_address = True',
        'socketserver.ThreadingTCPServer(("127.0.0.1", 5514), H).serve_forever()',
      ].join('\n')}'`,
    );
    try {
      const shipping = writeSpec(
        world.keys,
        [sim],
        { harden: { ...HARDEN.harden, logShipping: { collector: '127.0.0.1', port: 5514 } } },
        'shipping.yaml',
      );
      const r = await run('harden', shipping);
      expect(r.code, r.stderr).toBe(0);
      const host = r.doc!.hosts[0]!;
      expect(host.changes.map((c) => c.resource)).toEqual(
        expect.arrayContaining(['package:rsyslog', 'file:/etc/rsyslog.d/60-steward-forward.conf']),
      );
      expect(host.controls?.find((c) => c.control === 'logging.remote')).toMatchObject({
        status: 'pass',
        observed: expect.stringMatching(/rsyslog active, forwarding configured, [1-9]\d* connection/),
      });
      const canary = `steward-canary-${Date.now()}`;
      await onHost(`logger -t steward-test ${canary}`);
      expect(
        await onHost(
          `for i in $(seq 1 30); do grep -q ${canary} /var/tmp/collector.log 2>/dev/null && break; sleep 0.5; done; grep -c ${canary} /var/tmp/collector.log`,
        ),
      ).toBe('1');

      const off = await run('harden');
      expect(off.code, off.stderr).toBe(0);
      expect(off.doc!.hosts[0]!.changes).toEqual([
        expect.objectContaining({ resource: 'file:/etc/rsyslog.d/60-steward-forward.conf', action: 'delete' }),
      ]);
      expect(
        await onHost('test -e /etc/rsyslog.d/60-steward-forward.conf || echo gone; systemctl is-active rsyslog'),
      ).toBe('gone\nactive');
    } finally {
      await onHost('systemctl stop steward-test-collector; rm -f /var/tmp/collector.log');
    }
  });

  it('a spec that locks steward out is reverted by the host within the confirm window', async () => {
    const lockout = { ...HARDEN, ssh: { allowUsers: ['nobody'] } };
    const refused = await run('harden', writeSpec(world.keys, [sim], lockout, 'lockout.yaml'));
    expect(refused.code).toBe(64);
    expect(refused.stderr).toMatch(/steward\.ssh\.ops-user-not-allowed/);
    // The policy catches this one before anything is applied; with the rule turned off, the host's own revert must.
    const locking = writeSpec(
      world.keys,
      [sim],
      { ...lockout, policy: { disable: ['steward.ssh.ops-user-not-allowed'] } },
      'locking.yaml',
    );
    const started = Date.now();
    const r = await run('harden', locking);
    expect(r.code).toBe(1);
    expect(r.doc?.hosts[0]?.error).toMatch(/ssh change was reverted on the host/);
    expect(Date.now() - started).toBeLessThan(120_000 + 30_000);
    expect(await onHost('sshd -T | grep ^allowusers')).toBe('allowusers steward');
    const s = await openSession(target('steward'), 'steward');
    expect((await s.script('true')).code).toBe(0);
    await s.close();
  });

  it('a firewall that would cut SSH is reverted by the host too', async () => {
    const locking = writeSpec(world.keys, [sim], { ...HARDEN, firewall: { ssh: false } }, 'no-ssh.yaml');
    const sshRules = 'nft list table inet steward 2>/dev/null | grep -c "tcp dport 22 accept" || true';
    const before = await onHost(sshRules);
    const r = await run('harden', locking);
    expect(r.code).toBe(1);
    expect(r.doc?.hosts[0]?.error).toMatch(/firewall change was reverted on the host/);
    expect(await onHost(sshRules)).toBe(before);
    const s = await openSession(target('steward'), 'steward');
    expect((await s.script('true')).code).toBe(0);
    await s.close();
  });

  it('keeps firewall, SSH config, sysctl file and timers across a reboot', async () => {
    await restartSimulator(sim.container);
    expect(await onHost('sshd -T | grep -E "^(permitrootlogin|allowusers)"')).toBe(
      'permitrootlogin no\nallowusers steward',
    );
    expect(await onHost('nft list table inet steward >/dev/null && echo loaded')).toBe('loaded');
    expect(
      await onHost(
        'systemctl is-active steward-docker-prune.timer steward-journal-vacuum.timer steward-backup-rotate.timer',
      ),
    ).toBe('active\nactive\nactive');
    expect(await onHost('test -s /etc/sysctl.d/60-steward-hardening.conf && echo present')).toBe('present');
    const again = await run('harden');
    expect(again.code).toBe(0);
    expect(again.doc!.hosts[0]!.changes).toEqual([]);
  });
});
