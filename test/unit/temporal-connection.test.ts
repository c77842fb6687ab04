/**
 * Where and how steward connects to Temporal (common/temporal-connection.ts): flags and steward's variables over
 * Temporal's environment configuration (temporal.toml profiles, TEMPORAL_* variables); TLS material checked before
 * any connection, each fault named by the setting that holds it; handshake failures of the client library and of
 * the worker's core explained. The certificates are made at run time (test/support/certificates.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  connectionOptions,
  describeTarget,
  explainConnectError,
  resolveTemporal,
  TemporalConfigError,
} from '../../common/temporal-connection';
import { makePki, SERVER_NAME } from '../support/certificates';

const dir = mkdtempSync(join(tmpdir(), 'steward-temporal-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const pki = makePki(join(dir, 'pki'));
/** No temporal.toml in the user's config directory: only what each case sets. */
const BARE = { XDG_CONFIG_HOME: join(dir, 'empty'), HOME: join(dir, 'empty') };

function rejected(env: Record<string, string | undefined>, flags = {}): string {
  try {
    resolveTemporal(flags, { ...BARE, ...env });
  } catch (err) {
    expect(err).toBeInstanceOf(TemporalConfigError);
    return (err as Error).message;
  }
  throw new Error('expected the settings to be refused');
}

describe('the Temporal target', () => {
  it('is the local dev server in plaintext when nothing is set; flags, then STEWARD_*, then TEMPORAL_* win', () => {
    const bare = resolveTemporal({}, BARE);
    expect(bare).toEqual({ address: '127.0.0.1:7233', namespace: 'default', profile: 'default' });
    expect(describeTarget(bare)).toBe('127.0.0.1:7233 (plaintext)');
    expect(connectionOptions(bare)).toEqual({ address: '127.0.0.1:7233' });
    const env = { ...BARE, TEMPORAL_ADDRESS: 't:7233', TEMPORAL_NAMESPACE: 'tn' };
    expect(resolveTemporal({}, env)).toMatchObject({ address: 't:7233', namespace: 'tn' });
    const steward = { ...env, STEWARD_ADDRESS: 's:7233', STEWARD_NAMESPACE: 'sn' };
    expect(resolveTemporal({}, steward)).toMatchObject({ address: 's:7233', namespace: 'sn' });
    expect(resolveTemporal({ address: 'f:7233', namespace: 'fn' }, steward)).toMatchObject({
      address: 'f:7233',
      namespace: 'fn',
    });
  });

  it('reads a temporal.toml profile: address, namespace, API key, CA, server name, client certificate', () => {
    const file = join(dir, 'temporal.toml');
    writeFileSync(
      file,
      [
        '[profile.prod]',
        'address = "prod.example:7233"',
        'namespace = "agents"',
        'api_key = "key-from-the-profile-0123456789"',
        '[profile.prod.tls]',
        `server_name = "${SERVER_NAME}"`,
        `server_ca_cert_path = "${pki.caCert}"`,
        `client_cert_path = "${pki.clientCert}"`,
        `client_key_path = "${pki.clientKey}"`,
      ].join('\n'),
    );
    const t = resolveTemporal({ profile: 'prod' }, { ...BARE, TEMPORAL_CONFIG_FILE: file });
    expect(t).toMatchObject({
      address: 'prod.example:7233',
      namespace: 'agents',
      profile: 'prod',
      apiKey: 'key-from-the-profile-0123456789',
    });
    expect(t.tls?.serverNameOverride).toBe(SERVER_NAME);
    expect(t.tls?.clientCertPair).toBeDefined();
    expect(describeTarget(t)).toBe('prod.example:7233 (TLS, client certificate, API key)');
    expect(describeTarget(t)).not.toContain('key-from');
    // TEMPORAL_PROFILE names it too; a variable overrides the profile's value.
    const viaEnv = { ...BARE, TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod', TEMPORAL_NAMESPACE: 'other' };
    expect(resolveTemporal({}, viaEnv)).toMatchObject({ address: 'prod.example:7233', namespace: 'other' });
    // A named profile that is not there, or a config file that is not, is an error (not the local server).
    expect(rejected({ TEMPORAL_CONFIG_FILE: file }, { profile: 'staging' })).toMatch(/"staging".*not found/);
    expect(rejected({ TEMPORAL_CONFIG_FILE: join(dir, 'nowhere.toml') })).toMatch(/nowhere\.toml: no such file/);
    writeFileSync(join(dir, 'empty.toml'), '# nothing yet\n');
    expect(rejected({ TEMPORAL_CONFIG_FILE: join(dir, 'empty.toml') })).toMatch(/holds no \[profile\.<name>\] table$/);
    // A syntax error beside the API key: the parser quotes the lines around it, which never reach the message.
    const key = 'sk-temporal-cloud-0123456789abcdefghij';
    writeFileSync(join(dir, 'broken.toml'), `[profile.prod]\napi_key = "${key}"\naddress = = 1\n`);
    const broken = rejected({ TEMPORAL_CONFIG_FILE: join(dir, 'broken.toml') });
    expect(broken).toMatch(
      /^Temporal connection profile "default" \(TEMPORAL_CONFIG_FILE .*broken\.toml\): .*\(line 3/,
    );
    expect(broken).not.toContain(key);
    expect(broken).not.toContain('0123456789abcdef');
  });

  it('turns TLS on for an API key alone (never sent in plaintext), and refuses one with TLS disabled', () => {
    const t = resolveTemporal({}, { ...BARE, TEMPORAL_ADDRESS: 'cloud:7233', TEMPORAL_API_KEY: 'k-0123456789' });
    expect(t.tls).toEqual({});
    expect(describeTarget(t)).toBe('cloud:7233 (TLS, API key)');
    expect(rejected({ TEMPORAL_API_KEY: 'k-0123456789', TEMPORAL_TLS: 'false' })).toMatch(/never sent in plaintext/);
  });

  it('names the setting of each TLS fault before connecting', () => {
    const tls = {
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert,
      TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
    };
    expect(resolveTemporal({}, { ...BARE, ...tls }).tls?.clientCertPair).toBeDefined();
    expect(rejected({ ...tls, TEMPORAL_TLS_CLIENT_KEY_PATH: undefined })).toMatch(
      /^TEMPORAL_TLS_CLIENT_CERT_PATH \(or client_cert_path in profile "default"\): .*client\.crt is set without its key/,
    );
    expect(rejected({ ...tls, TEMPORAL_TLS_CLIENT_CERT_PATH: undefined })).toMatch(/is set without its certificate/);
    expect(rejected({ ...tls, TEMPORAL_TLS_SERVER_CA_CERT_PATH: join(dir, 'missing.crt') })).toMatch(
      /^TEMPORAL_TLS_SERVER_CA_CERT_PATH .*missing\.crt: cannot read it \(no such file\)$/,
    );
    expect(rejected({ ...tls, TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.clientKey })).toMatch(/not a PEM certificate$/);
    expect(rejected({ ...tls, TEMPORAL_TLS_CLIENT_KEY_PATH: pki.serverKey })).toMatch(
      /^TEMPORAL_TLS_CLIENT_KEY_PATH .*server\.key: not the key of the client certificate/,
    );
    expect(
      rejected({
        ...tls,
        TEMPORAL_TLS_CLIENT_CERT_PATH: pki.expiredClientCert,
        TEMPORAL_TLS_CLIENT_KEY_PATH: pki.expiredClientKey,
      }),
    ).toMatch(/expired\.crt: the client certificate expired on Jan +2 00:00:00 2020 GMT$/);
    // Host verification stays on: the certificate's name is given instead.
    expect(rejected({ ...tls, TEMPORAL_TLS_DISABLE_HOST_VERIFICATION: 'true' })).toMatch(
      /set TEMPORAL_TLS_SERVER_NAME/,
    );
    // Given as data, the setting is named as the _DATA variable; no key material is ever quoted.
    const keyData = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49\n-----END PRIVATE KEY-----\n';
    const message = rejected({ TEMPORAL_TLS_CLIENT_KEY_DATA: keyData });
    expect(message).toMatch(/^TEMPORAL_TLS_CLIENT_KEY_DATA \(or client_key_data in profile "default"\) is set/);
    expect(message).not.toContain('MIGHAgEA');
  });
});

describe('a connection failure, explained', () => {
  const target = resolveTemporal(
    {},
    {
      ...BARE,
      TEMPORAL_ADDRESS: '127.0.0.1:7443',
      TEMPORAL_API_KEY: 'k-0123456789',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert,
    },
  );
  const plain = resolveTemporal({}, { ...BARE, TEMPORAL_ADDRESS: '127.0.0.1:7233' });

  // What the client library (after steward's own handshake probe) and the worker's Rust core said, as seen here.
  it.each([
    [
      'a client certificate the server asks for (client)',
      'SSL routines:ssl3_read_bytes:tlsv13 alert certificate required:SSL alert number 116',
      /the server asks for a client certificate: set TEMPORAL_TLS_CLIENT_CERT_PATH/,
    ],
    [
      'a client certificate the server asks for (worker)',
      'transport error: received fatal alert: CertificateRequired',
      /the server asks for a client certificate/,
    ],
    [
      'a server certificate of another CA (client)',
      'self-signed certificate in certificate chain: Failed to connect before the deadline',
      /not signed by the CA of TEMPORAL_TLS_SERVER_CA_CERT_PATH .*ca\.crt/,
    ],
    [
      'a server certificate of another CA (worker)',
      'InvalidCertificate(UnknownIssuer)',
      /not signed by the CA of TEMPORAL_TLS_SERVER_CA_CERT_PATH/,
    ],
    [
      'another name (client)',
      "Hostname/IP does not match certificate's altnames: Host: x. is not in the cert's altnames",
      /not for this name: set TEMPORAL_TLS_SERVER_NAME/,
    ],
    ['another name (worker)', 'InvalidCertificate(NotValidForNameContext { … })', /not for this name/],
    ['a refused API key (client)', '16 UNAUTHENTICATED: Request unauthorized', /the server refused the API key/],
    [
      'a refused API key (worker)',
      "code: 'The request does not have valid authentication credentials'",
      /the server refused the API key/,
    ],
  ])('%s', (_what, message, explained) => {
    const e = explainConnectError(new Error(message), target);
    expect(e.message).toMatch(/^Temporal at 127\.0\.0\.1:7443 \(TLS, API key\): /);
    expect(e.message).toMatch(explained);
    expect(e.message).not.toContain('k-0123456789');
  });

  it('a plaintext client at a TLS server is told to turn TLS on; anything else keeps its own message', () => {
    const speaks = new Error('the server speaks TLS (a TLS handshake succeeded): plaintext gets no answer');
    expect(explainConnectError(speaks, plain).message).toMatch(/the server speaks TLS: set TEMPORAL_TLS=true/);
    const other = new Error('connect ECONNREFUSED 127.0.0.1:7443');
    expect(explainConnectError(other, target)).toBe(other);
  });
});
