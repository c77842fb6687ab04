/**
 * The SSH baseline on a real Debian 12 simulator provisioned through the CLI: applied as the ops user, made live
 * with a reload, then proven from outside with fresh SSH logins — and kept through an invalid candidate, a re-run
 * and a reboot.
 */
import { readFileSync } from 'node:fs';
import net from 'node:net';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { restartSimulator, simulatorExec, type Simulator } from '../../client/dev/simulator';
import { SSH_ACTIVATE, SSHD_DROP_IN, sshControls, sshResources } from '../../activities/harden/ssh';
import { CommandFailed } from '../../activities/host/errors';
import { openSession, type HostSession, type HostTarget } from '../../activities/host/session';
import { converge } from '../../activities/resources/resource';
import { specSchema, type Spec } from '../../model/schema';
import { validate } from '../../model/validate';
import { hostName, stage, writeSpec, type KeyPair, type Stage } from '../support/fixtures';

const PASSWORD = 'correct horse battery staple';

let world: Stage;
let keys: KeyPair;
let sim: Simulator;
let spec: Spec;
let target: HostTarget;
let session: HostSession;

async function sh(script: string): Promise<string> {
  const r = await simulatorExec(sim.container, ['sh', '-c', script]);
  if (r.exitCode !== 0) throw new Error(`${script} exited ${r.exitCode}: ${r.stderr}`);
  return r.stdout.trim();
}

interface Login {
  readonly ok: boolean;
  /** What the server still offered after the refused attempt. */
  readonly methodsLeft?: readonly string[];
  readonly banner?: string;
}

/** One fresh SSH login with exactly one credential, the host key pinned; the connection is closed again. */
function login(user: string, auth: { password: string } | { privateKey: string }): Promise<Login> {
  return new Promise((resolve) => {
    const client = new ssh2.Client();
    let methodsLeft: string[] | undefined;
    let banner: string | undefined;
    let tried = false;
    client.on('banner', (message: string) => (banner = message));
    client.on('ready', () => {
      client.end();
      resolve({ ok: true, ...(banner ? { banner } : {}) });
    });
    client.on('error', () => {
      client.end();
      resolve({ ok: false, ...(methodsLeft ? { methodsLeft } : {}), ...(banner ? { banner } : {}) });
    });
    client.connect({
      host: sim.address,
      port: sim.port,
      username: user,
      readyTimeout: 15_000,
      hostVerifier: (key: Buffer) => key.toString('base64') === sim.hostKey.split(' ')[1],
      authHandler: (left, _partial, next) => {
        if (tried) {
          methodsLeft = left;
          next(false as never);
          return;
        }
        tried = true;
        next(
          'password' in auth
            ? { type: 'password', username: user, password: auth.password }
            : { type: 'publickey', username: user, key: auth.privateKey },
        );
      },
    });
  });
}

/** The identification line the server sends before anything else. */
function serverIdent(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(sim.port, sim.address);
    socket.once('data', (d) => {
      socket.destroy();
      resolve(d.toString('latin1').split('\r\n')[0] ?? '');
    });
    socket.once('error', reject);
  });
}

const key = () => ({ privateKey: readFileSync(keys.privateKeyPath, 'utf8') });

beforeAll(async () => {
  world = await stage({ taskQueue: 'ssh-baseline-test', simulators: 1, golden: 'provisioned' });
  keys = world.keys;
  sim = world.sims[0]!;
  const specPath = writeSpec(keys, [sim]);
  spec = validate(specSchema, parse(readFileSync(specPath, 'utf8')), specPath);
  target = {
    name: hostName(sim),
    address: sim.address,
    port: sim.port,
    loginUser: sim.user,
    opsUser: spec.ssh.opsUser,
    identityFile: keys.privateKeyPath,
    hostKey: sim.hostKey,
    trustOnFirstUse: false,
  };
  session = await openSession(target, spec.ssh.opsUser);
});

afterAll(async () => {
  await session?.close();
  await world?.close();
});

describe('SSH baseline', () => {
  it('starts from a host where root, passwords and any user with the key get in', async () => {
    // A cloud image's drop-in that turns passwords back on; steward's 00- drop-in must win over it.
    await sh(
      [
        "printf 'PasswordAuthentication yes\\n' > /etc/ssh/sshd_config.d/50-cloud-init.conf",
        'useradd -m -s /bin/bash intruder',
        'install -d -o intruder -g intruder -m 700 /home/intruder/.ssh',
        'install -o intruder -g intruder -m 600 /root/.ssh/authorized_keys /home/intruder/.ssh/authorized_keys',
        `printf '%s\\n' 'steward:${PASSWORD}' 'intruder:${PASSWORD}' | chpasswd`,
      ].join(' && '),
    );
    expect((await login('root', key())).ok).toBe(true);
    expect((await login('steward', { password: PASSWORD })).ok).toBe(true);
    expect((await login('intruder', key())).ok).toBe(true);
    expect(await serverIdent()).toMatch(/Debian/);
  });

  it('applies the baseline as the ops user and reloads sshd without dropping the open session', async () => {
    const changes = await converge(session, sshResources(spec, target.name), 'apply');
    expect(changes.map((c) => c.resource)).toEqual([
      'file:/etc/issue.net',
      'moduli:/etc/ssh/moduli',
      `file:${SSHD_DROP_IN}`,
    ]);
    await session.check(SSH_ACTIVATE, { label: 'activate sshd' });
    expect((await session.script('true')).code).toBe(0);
    expect(await sh(`stat -c '%U:%G %a' ${SSHD_DROP_IN}`)).toBe('root:root 600');
  });

  it('passes every control, and sshd -T shows every baseline value', async () => {
    const controls = await sshControls(session, spec);
    expect(controls.filter((c) => c.status !== 'pass')).toEqual([]);
    expect(controls.length).toBeGreaterThanOrEqual(30);

    const effective = (await sh('sshd -T')).split('\n');
    expect(effective).toEqual(
      expect.arrayContaining([
        'port 22',
        'permitrootlogin no',
        'passwordauthentication no',
        'kbdinteractiveauthentication no',
        'permitemptypasswords no',
        'authenticationmethods publickey',
        'pubkeyauthentication yes',
        'allowusers steward',
        'maxauthtries 3',
        'logingracetime 30',
        'clientaliveinterval 300',
        'clientalivecountmax 2',
        'allowtcpforwarding no',
        'allowagentforwarding no',
        'x11forwarding no',
        'permittunnel no',
        'kexalgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org',
        'ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr',
        'macs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com',
        'hostkey /etc/ssh/ssh_host_ed25519_key',
        'loglevel VERBOSE',
        'banner /etc/issue.net',
        'usedns no',
        'compression no',
        'ignorerhosts yes',
        'hostbasedauthentication no',
      ]),
    );
    expect(effective.filter((l) => /^(hostkey|allowusers|allowgroups|port) /.test(l))).toEqual([
      'port 22',
      'hostkey /etc/ssh/ssh_host_ed25519_key',
      'allowusers steward',
    ]);
    expect(await sh("awk '$1 !~ /^#/ && $5 < 3071' /etc/ssh/moduli | wc -l")).toBe('0');
    expect(Number(await sh("grep -vc '^#' /etc/ssh/moduli"))).toBeGreaterThan(100);
  });

  it('lets a new login as the ops user in, with the banner, and refuses root, passwords and unlisted users', async () => {
    const ops = await openSession(target, spec.ssh.opsUser);
    try {
      expect((await ops.check('id -u', { label: 'sudo id' })).stdout.trim()).toBe('0');
    } finally {
      await ops.close();
    }
    const steward = await login('steward', key());
    expect(steward).toMatchObject({ ok: true, banner: `${spec.ssh.banner}\n` });
    expect(await serverIdent()).toBe('SSH-2.0-OpenSSH_9.2p1');

    expect((await login('root', key())).ok).toBe(false);
    expect(await login('steward', { password: PASSWORD })).toMatchObject({ ok: false, methodsLeft: ['publickey'] });
    expect((await login('intruder', key())).ok).toBe(false);
    expect(await login('intruder', { password: PASSWORD })).toMatchObject({ ok: false });
    const journal = await sh('journalctl -u ssh --no-pager -o cat');
    expect(journal).toMatch(/User root from \S+ not allowed because not listed in AllowUsers/);
    expect(journal).toMatch(/User intruder from \S+ not allowed because not listed in AllowUsers/);
  });

  it('refuses a candidate sshd rejects and keeps the live drop-in', async () => {
    const before = await sh(`sha256sum ${SSHD_DROP_IN}`);
    const broken = { ...spec, ssh: { ...spec.ssh, kexAlgorithms: ['no-such-kex@example.com'] } };
    const failure = await converge(session, sshResources(broken, target.name), 'apply').catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(CommandFailed);
    expect(failure).toMatchObject({ retryable: false, exitCode: 78 });
    expect((failure as Error).message).toMatch(/00-steward\.conf \(candidate\) line \d+: Bad SSH2 KexAlgorithms/);
    expect(await sh(`sha256sum ${SSHD_DROP_IN}`)).toBe(before);
    expect(await sh('ls -A /etc/ssh/sshd_config.d')).toBe('00-steward.conf\n50-cloud-init.conf');
    expect(await sh('sshd -t && echo valid')).toBe('valid');
  });

  it('changes nothing when converged again', async () => {
    expect(await converge(session, sshResources(spec, target.name), 'plan')).toEqual([]);
    expect(await converge(session, sshResources(spec, target.name), 'apply')).toEqual([]);
  });

  it('still holds after a reboot', async () => {
    await session.close();
    await restartSimulator(sim.container);
    session = await openSession(target, spec.ssh.opsUser);
    expect((await sshControls(session, spec)).filter((c) => c.status !== 'pass')).toEqual([]);
    expect((await login('root', key())).ok).toBe(false);
    expect((await login('steward', { password: PASSWORD })).ok).toBe(false);
  });
});
