/**
 * The SSH baseline without a host: the drop-in renderer, and the `sshd -T` parser and comparison fed with output
 * captured from a Debian 12 simulator (OpenSSH 9.2p1) before and after hardening.
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  compareSshd,
  hostKeysControl,
  moduliControl,
  parseSshdT,
  renderSshdConfig,
  SSH_ACTIVATE,
  sshResources,
} from '../../activities/harden/ssh';
import { CommandFailed, UnexpectedHostOutput, UnsupportedHost } from '../../activities/host/errors';
import { specSchema, type SpecInput } from '../../model/schema';
import { validate } from '../../model/validate';

const specWith = (ssh: SpecInput['ssh'] = {}, hostKey?: string) =>
  validate(
    specSchema,
    { version: 1, hosts: [{ name: 'h', address: '127.0.0.1', ...(hostKey ? { hostKey } : {}) }], ssh },
    'test',
  );
const spec = specWith();

/** `sshd -T` on a fresh simulator: Debian 12's defaults. */
const DEFAULT_SSHD_T = `port 22
addressfamily any
listenaddress [::]:22
listenaddress 0.0.0.0:22
usepam yes
logingracetime 120
x11displayoffset 10
maxauthtries 6
maxsessions 10
clientaliveinterval 0
clientalivecountmax 3
requiredrsasize 1024
streamlocalbindmask 0177
unusedconnectiontimeout none
permitrootlogin without-password
ignorerhosts yes
ignoreuserknownhosts no
hostbasedauthentication no
hostbasedusesnamefrompacketonly no
pubkeyauthentication yes
kerberosauthentication no
kerberosorlocalpasswd yes
kerberosticketcleanup yes
gssapiauthentication no
gssapicleanupcredentials yes
gssapikeyexchange no
gssapistrictacceptorcheck yes
gssapistorecredentialsonrekey no
gssapikexalgorithms gss-group14-sha256-,gss-group16-sha512-,gss-nistp256-sha256-,gss-curve25519-sha256-,gss-group14-sha1-,gss-gex-sha1-
passwordauthentication yes
kbdinteractiveauthentication no
printmotd no
printlastlog yes
x11forwarding yes
x11uselocalhost yes
permittty yes
permituserrc yes
strictmodes yes
tcpkeepalive yes
permitemptypasswords no
compression yes
gatewayports no
usedns no
allowtcpforwarding yes
allowagentforwarding yes
disableforwarding no
allowstreamlocalforwarding yes
streamlocalbindunlink no
fingerprinthash SHA256
exposeauthinfo no
pidfile /run/sshd.pid
modulifile /etc/ssh/moduli
xauthlocation /usr/bin/xauth
ciphers chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com
macs umac-64-etm@openssh.com,umac-128-etm@openssh.com,hmac-sha2-256-etm@openssh.com,hmac-sha2-512-etm@openssh.com,hmac-sha1-etm@openssh.com,umac-64@openssh.com,umac-128@openssh.com,hmac-sha2-256,hmac-sha2-512,hmac-sha1
banner none
forcecommand none
chrootdirectory none
trustedusercakeys none
revokedkeys none
securitykeyprovider internal
authorizedprincipalsfile none
versionaddendum none
authorizedkeyscommand none
authorizedkeyscommanduser none
authorizedprincipalscommand none
authorizedprincipalscommanduser none
hostkeyagent none
kexalgorithms sntrup761x25519-sha512,sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org,ecdh-sha2-nistp256,ecdh-sha2-nistp384,ecdh-sha2-nistp521,diffie-hellman-group-exchange-sha256,diffie-hellman-group16-sha512,diffie-hellman-group18-sha512,diffie-hellman-group14-sha256
casignaturealgorithms ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256
hostbasedacceptedalgorithms ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256
hostkeyalgorithms ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256
pubkeyacceptedalgorithms ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256
loglevel INFO
syslogfacility AUTH
authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2
hostkey /etc/ssh/ssh_host_rsa_key
hostkey /etc/ssh/ssh_host_ecdsa_key
hostkey /etc/ssh/ssh_host_ed25519_key
acceptenv LANG
acceptenv LC_*
authenticationmethods any
subsystem sftp /usr/lib/openssh/sftp-server
maxstartups 10:30:100
persourcemaxstartups none
persourcenetblocksize 32:128
permittunnel no
ipqos lowdelay throughput
rekeylimit 0 0
permitopen any
permitlisten any
permituserenvironment no
pubkeyauthoptions none
`;

/** `sshd -T` on the same simulator after the baseline for the default spec was applied and activated. */
const HARDENED_SSHD_T = `port 22
addressfamily any
listenaddress [::]:22
listenaddress 0.0.0.0:22
usepam yes
logingracetime 30
x11displayoffset 10
maxauthtries 3
maxsessions 10
clientaliveinterval 300
clientalivecountmax 2
requiredrsasize 1024
streamlocalbindmask 0177
unusedconnectiontimeout none
permitrootlogin no
ignorerhosts yes
ignoreuserknownhosts no
hostbasedauthentication no
hostbasedusesnamefrompacketonly no
pubkeyauthentication yes
kerberosauthentication no
kerberosorlocalpasswd yes
kerberosticketcleanup yes
gssapiauthentication no
gssapicleanupcredentials yes
gssapikeyexchange no
gssapistrictacceptorcheck yes
gssapistorecredentialsonrekey no
gssapikexalgorithms gss-group14-sha256-,gss-group16-sha512-,gss-nistp256-sha256-,gss-curve25519-sha256-,gss-group14-sha1-,gss-gex-sha1-
passwordauthentication no
kbdinteractiveauthentication no
printmotd no
printlastlog yes
x11forwarding no
x11uselocalhost yes
permittty yes
permituserrc yes
strictmodes yes
tcpkeepalive no
permitemptypasswords no
compression no
gatewayports no
usedns no
allowtcpforwarding no
allowagentforwarding no
disableforwarding no
allowstreamlocalforwarding yes
streamlocalbindunlink no
fingerprinthash SHA256
exposeauthinfo no
pidfile /run/sshd.pid
modulifile /etc/ssh/moduli
xauthlocation /usr/bin/xauth
ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr
macs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com
banner /etc/issue.net
forcecommand none
chrootdirectory none
trustedusercakeys none
revokedkeys none
securitykeyprovider internal
authorizedprincipalsfile none
versionaddendum none
authorizedkeyscommand none
authorizedkeyscommanduser none
authorizedprincipalscommand none
authorizedprincipalscommanduser none
hostkeyagent none
kexalgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org
casignaturealgorithms ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256
hostbasedacceptedalgorithms ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256
hostkeyalgorithms ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256
pubkeyacceptedalgorithms ssh-ed25519-cert-v01@openssh.com,ecdsa-sha2-nistp256-cert-v01@openssh.com,ecdsa-sha2-nistp384-cert-v01@openssh.com,ecdsa-sha2-nistp521-cert-v01@openssh.com,sk-ssh-ed25519-cert-v01@openssh.com,sk-ecdsa-sha2-nistp256-cert-v01@openssh.com,rsa-sha2-512-cert-v01@openssh.com,rsa-sha2-256-cert-v01@openssh.com,ssh-ed25519,ecdsa-sha2-nistp256,ecdsa-sha2-nistp384,ecdsa-sha2-nistp521,sk-ssh-ed25519@openssh.com,sk-ecdsa-sha2-nistp256@openssh.com,rsa-sha2-512,rsa-sha2-256
loglevel VERBOSE
syslogfacility AUTH
authorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2
hostkey /etc/ssh/ssh_host_ed25519_key
allowusers steward
acceptenv LANG
acceptenv LC_*
authenticationmethods publickey
subsystem sftp /usr/lib/openssh/sftp-server
maxstartups 10:30:100
persourcemaxstartups none
persourcenetblocksize 32:128
permittunnel no
ipqos lowdelay throughput
rekeylimit 0 0
permitopen any
permitlisten any
permituserenvironment no
pubkeyauthoptions none
`;

const ok = (out: string) => ({ out, code: 0 });

describe('renderSshdConfig', () => {
  it('renders the default spec as a commented drop-in', () => {
    expect(renderSshdConfig(spec))
      .toBe(`# Managed by steward (harden): the SSH baseline. Local edits are reverted; change ssh in steward.yaml instead.
# sshd keeps the first value it reads and sshd_config includes this directory first, so these settings win.

# Listener and host key: ed25519 only
Port 22
HostKey /etc/ssh/ssh_host_ed25519_key

# Authentication: public keys only, listed users only
PermitRootLogin no
PubkeyAuthentication yes
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
HostbasedAuthentication no
IgnoreRhosts yes
StrictModes yes
PermitUserEnvironment no
MaxAuthTries 3
LoginGraceTime 30
AllowUsers steward

# Sessions and forwarding
ClientAliveInterval 300
ClientAliveCountMax 2
TCPKeepAlive no
AllowTcpForwarding no
AllowAgentForwarding no
X11Forwarding no
PermitTunnel no
GatewayPorts no

# Algorithms
KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256,curve25519-sha256@libssh.org
Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com,aes128-gcm@openssh.com,aes256-ctr,aes192-ctr,aes128-ctr
MACs hmac-sha2-512-etm@openssh.com,hmac-sha2-256-etm@openssh.com,umac-128-etm@openssh.com

# Logging and what the server tells strangers
LogLevel VERBOSE
Banner /etc/issue.net
DebianBanner no
PrintMotd no
PrintLastLog yes
UseDNS no
Compression no
`);
  });

  it('follows the spec: root without password, several users and groups, forwarding, no banner', () => {
    const text = renderSshdConfig(
      specWith({
        permitRootLogin: 'prohibit-password',
        allowUsers: ['steward', 'alice'],
        allowGroups: ['ops'],
        allowTcpForwarding: true,
        banner: '',
        port: 2222,
        kexAlgorithms: ['curve25519-sha256'],
      }),
    );
    const lines = text.split('\n');
    expect(lines).toEqual(
      expect.arrayContaining([
        'Port 2222',
        'PermitRootLogin prohibit-password',
        'AllowUsers steward alice',
        'AllowGroups ops',
        'AllowTcpForwarding yes',
        'AllowAgentForwarding no',
        'Banner none',
        'KexAlgorithms curve25519-sha256',
      ]),
    );
    expect(renderSshdConfig(spec)).not.toMatch(/^AllowGroups/m);
  });

  it('offers the ed25519 host key only', () => {
    expect(renderSshdConfig(spec).match(/^HostKey .*$/gm)).toEqual(['HostKey /etc/ssh/ssh_host_ed25519_key']);
  });
});

describe('sshResources', () => {
  it('orders host key, banner, moduli, foreign overrides, then the validated drop-in', () => {
    expect(sshResources(spec, 'h').map((r) => r.id)).toEqual([
      'hostkey:/etc/ssh/ssh_host_ed25519_key',
      'file:/etc/issue.net',
      'moduli:/etc/ssh/moduli',
      'overrides:sshd',
      'overrides:sshd-service',
      'file:/etc/ssh/sshd_config.d/00-steward.conf',
    ]);
    expect(sshResources(specWith({ banner: '  ' }), 'h').map((r) => r.id)).not.toContain('file:/etc/issue.net');
  });

  it('refuses a host pinned by a key type the baseline stops offering', () => {
    const rsa = specWith({}, 'ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQ');
    expect(() => sshResources(rsa, 'h')).toThrow(UnsupportedHost);
    expect(() => sshResources(specWith({}, 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBxo'), 'h')).not.toThrow();
  });

  it('removes moduli under 3072 bits and leaves a host without a moduli file alone', () => {
    const moduli = sshResources(spec, 'h').find((r) => r.id === 'moduli:/etc/ssh/moduli')!;
    expect(moduli.diff(moduli.parse(ok('60\n')))).toEqual([
      { resource: 'moduli:/etc/ssh/moduli', action: 'update', before: { smallModuli: 60 }, after: { smallModuli: 0 } },
    ]);
    expect(moduli.diff(moduli.parse(ok('0\n')))).toEqual([]);
    expect(moduli.diff(moduli.parse(ok('absent\n')))).toEqual([]);
    expect(() => moduli.parse(ok('awk: cannot open /etc/ssh/moduli\n'))).toThrow(UnexpectedHostOutput);
  });

  it('creates a missing ed25519 host key, fixes its mode, and never replaces a key of another type', () => {
    const key = sshResources(spec, 'h')[0]!;
    const fp = (type: string) => `256 SHA256:/GdUihr3MDjsC2OjlvdVhv6Hsoo91QC26daCZLGKTF8 root@steward-vps (${type})`;
    expect(key.diff(key.parse(ok('absent\n')))).toEqual([
      { resource: 'hostkey:/etc/ssh/ssh_host_ed25519_key', action: 'create', after: { type: 'ED25519' } },
    ]);
    expect(key.diff(key.parse(ok(`root:root 600\n${fp('ED25519')}\n`)))).toEqual([]);
    expect(key.diff(key.parse(ok(`root:root 644\n${fp('ED25519')}\n`)))).toEqual([
      {
        resource: 'hostkey:/etc/ssh/ssh_host_ed25519_key',
        action: 'update',
        before: 'root:root 0644',
        after: 'root:root 0600',
      },
    ]);
    expect(() => key.diff(key.parse(ok(`root:root 600\n${fp('ECDSA')}\n`)))).toThrow(/ECDSA key, not ed25519/);
    expect(() => key.parse(ok('root:root 600\n/etc/ssh/ssh_host_ed25519_key is not a key file.\n'))).toThrow(
      UnexpectedHostOutput,
    );
  });
});

describe('parseSshdT', () => {
  it('reads every keyword, keeping repeated ones in order', () => {
    const settings = parseSshdT('h', ok(HARDENED_SSHD_T));
    expect(settings.get('listenaddress')).toEqual(['[::]:22', '0.0.0.0:22']);
    expect(settings.get('authorizedkeysfile')).toEqual(['.ssh/authorized_keys .ssh/authorized_keys2']);
    expect(settings.get('hostkey')).toEqual(['/etc/ssh/ssh_host_ed25519_key']);
    expect(settings.get('allowusers')).toEqual(['steward']);
    expect(parseSshdT('h', ok(DEFAULT_SSHD_T)).get('hostkey')).toHaveLength(3);
  });

  it('ignores stderr lines and reports them when sshd -T fails', () => {
    const failed = {
      out:
        '! /etc/ssh/sshd_config.d/99-broken.conf: line 1: Bad configuration option: Nonsense\r\n' +
        '! /etc/ssh/sshd_config.d/99-broken.conf: terminating, 1 bad configuration options\r\n',
      code: 255,
    };
    const err = (() => {
      try {
        parseSshdT('h', failed);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(CommandFailed);
    expect(err).toMatchObject({ retryable: false, exitCode: 255 });
    expect((err as Error).message).toContain('Bad configuration option: Nonsense');
    expect(parseSshdT('h', ok(`${HARDENED_SSHD_T}! Deprecated option UsePrivilegeSeparation\r\n`)).size).toBe(
      parseSshdT('h', ok(HARDENED_SSHD_T)).size,
    );
  });

  it('rejects output that is not sshd -T', () => {
    expect(() => parseSshdT('h', ok('sudo: a password is required\n'))).toThrow(UnexpectedHostOutput);
    expect(() => parseSshdT('h', ok('Port 22\n'))).toThrow(/unexpected sshd -T line/);
    expect(() => parseSshdT('h', ok('loglevel INFO\n'))).toThrow(/printed no "port"/);
  });
});

describe('compareSshd', () => {
  it('passes every control on the hardened host', () => {
    const controls = compareSshd(spec, parseSshdT('h', ok(HARDENED_SSHD_T)));
    expect(controls.filter((c) => c.status !== 'pass')).toEqual([]);
    expect(controls.map((c) => c.control)).toEqual(
      expect.arrayContaining([
        'ssh.port',
        'ssh.permitrootlogin',
        'ssh.passwordauthentication',
        'ssh.kbdinteractiveauthentication',
        'ssh.permitemptypasswords',
        'ssh.authenticationmethods',
        'ssh.pubkeyauthentication',
        'ssh.allowusers',
        'ssh.allowgroups',
        'ssh.maxauthtries',
        'ssh.logingracetime',
        'ssh.clientaliveinterval',
        'ssh.clientalivecountmax',
        'ssh.allowtcpforwarding',
        'ssh.allowagentforwarding',
        'ssh.x11forwarding',
        'ssh.permittunnel',
        'ssh.kexalgorithms',
        'ssh.ciphers',
        'ssh.macs',
        'ssh.loglevel',
        'ssh.banner',
        'ssh.usedns',
        'ssh.compression',
        'ssh.ignorerhosts',
        'ssh.hostbasedauthentication',
      ]),
    );
  });

  it("fails exactly the values Debian's defaults get wrong", () => {
    const failed = compareSshd(spec, parseSshdT('h', ok(DEFAULT_SSHD_T)))
      .filter((c) => c.status === 'fail')
      .map((c) => c.control);
    expect(failed).toEqual([
      'ssh.permitrootlogin',
      'ssh.authenticationmethods',
      'ssh.passwordauthentication',
      'ssh.maxauthtries',
      'ssh.logingracetime',
      'ssh.allowusers',
      'ssh.clientaliveinterval',
      'ssh.clientalivecountmax',
      'ssh.tcpkeepalive',
      'ssh.allowtcpforwarding',
      'ssh.allowagentforwarding',
      'ssh.x11forwarding',
      'ssh.kexalgorithms',
      'ssh.ciphers',
      'ssh.macs',
      'ssh.loglevel',
      'ssh.banner',
      'ssh.compression',
    ]);
  });

  it("matches prohibit-password against sshd -T's without-password", () => {
    const root = specWith({ permitRootLogin: 'prohibit-password' });
    const control = compareSshd(root, parseSshdT('h', ok(DEFAULT_SSHD_T))).find(
      (c) => c.control === 'ssh.permitrootlogin',
    );
    expect(control).toMatchObject({ expected: 'without-password', observed: 'without-password', status: 'pass' });
  });

  it('catches list keywords set elsewhere too: they accumulate instead of being overridden', () => {
    const extra = `${HARDENED_SSHD_T}allowusers admin\nport 2222\n`;
    const controls = compareSshd(spec, parseSshdT('h', ok(extra)));
    expect(controls.find((c) => c.control === 'ssh.allowusers')).toMatchObject({
      observed: 'steward admin',
      status: 'fail',
    });
    expect(controls.find((c) => c.control === 'ssh.port')).toMatchObject({ observed: '22 2222', status: 'fail' });
  });
});

describe('host key and moduli controls', () => {
  const line = (path: string, bits: number, type: string) =>
    `${path} ${bits} SHA256:+mUpaiuo1DT0XF4OjJsKVJlVxPNTc9Eat+zWF5JVJz8 root@steward-vps-sshexp (${type})`;

  it('passes when sshd offers the ed25519 key only', () => {
    expect(hostKeysControl(ok(`${line('/etc/ssh/ssh_host_ed25519_key', 256, 'ED25519')}\n`)).status).toBe('pass');
  });

  it("fails on Debian's default three keys and on a key sshd cannot read", () => {
    const all = [
      line('/etc/ssh/ssh_host_rsa_key', 3072, 'RSA'),
      line('/etc/ssh/ssh_host_ecdsa_key', 256, 'ECDSA'),
      line('/etc/ssh/ssh_host_ed25519_key', 256, 'ED25519'),
    ].join('\n');
    expect(hostKeysControl(ok(all))).toMatchObject({
      status: 'fail',
      observed:
        '/etc/ssh/ssh_host_rsa_key (RSA 3072), /etc/ssh/ssh_host_ecdsa_key (ECDSA 256), ' +
        '/etc/ssh/ssh_host_ed25519_key (ED25519 256)',
    });
    const unreadable = '/etc/ssh/ssh_host_ed25519_key ssh-keygen: /etc/ssh/ssh_host_ed25519_key: No such file\n';
    expect(hostKeysControl(ok(unreadable))).toMatchObject({
      status: 'fail',
      observed: '/etc/ssh/ssh_host_ed25519_key (unreadable)',
    });
    expect(hostKeysControl(ok(''))).toMatchObject({ status: 'fail', observed: '(unset)' });
  });

  it('counts small moduli', () => {
    expect(moduliControl('h', ok('0\n')).status).toBe('pass');
    expect(moduliControl('h', ok('60\n'))).toMatchObject({ status: 'fail', observed: '60 moduli under 3072 bits' });
    expect(moduliControl('h', ok('absent\n'))).toMatchObject({ status: 'pass', note: 'sshd uses its built-in groups' });
    expect(() => moduliControl('h', ok('garbage'))).toThrow(UnexpectedHostOutput);
  });
});

describe('SSH_ACTIVATE', () => {
  it('is valid sh that checks the config before reloading and runs in a subshell', () => {
    expect(() => execFileSync('sh', ['-n', '-c', SSH_ACTIVATE])).not.toThrow();
    expect(SSH_ACTIVATE.startsWith('(') && SSH_ACTIVATE.endsWith(')')).toBe(true);
    expect(SSH_ACTIVATE.indexOf('sshd -t')).toBeLessThan(SSH_ACTIVATE.indexOf('systemctl reload ssh'));
  });
});
