/**
 * Where and how steward's CLI, worker and codec server reach Temporal, configured the way every Temporal tool is:
 * the environment configuration profiles of `temporal.toml` (`TEMPORAL_CONFIG_FILE`, else the user's config
 * directory; profile `TEMPORAL_PROFILE` or `--profile`, default `default`) with `TEMPORAL_ADDRESS`,
 * `TEMPORAL_NAMESPACE`, `TEMPORAL_API_KEY` and `TEMPORAL_TLS_*` over them. steward's own `--address`/`--namespace`
 * and `STEWARD_ADDRESS`/`STEWARD_NAMESPACE` come first; without any of it, the local dev server in plaintext.
 *
 * The TLS material is read and checked here, before any connection, so a missing file, a client certificate without
 * its key, a key of another certificate or an expired certificate is one clear error naming the setting; what only
 * the handshake shows (a server certificate of another CA or name, a server that wants a client certificate, a
 * refused API key) is explained by {@link explainConnectError}.
 */
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { loadClientConfigProfile, type ClientConfigProfile } from '@temporalio/envconfig';
import type { TLSConfig } from '@temporalio/common/lib/internal-non-workflow';

export const DEFAULT_ADDRESS = '127.0.0.1:7233';

/** A Temporal connection setting that cannot work: exit 64, as a wrong flag. */
export class TemporalConfigError extends Error {
  override readonly name = 'TemporalConfigError';
}

/** Where steward connects, resolved; the API key and private key never leave this object except to the SDK. */
export interface TemporalTarget {
  readonly address: string;
  readonly namespace: string;
  /** The environment configuration profile read. */
  readonly profile: string;
  /** undefined: plaintext. */
  readonly tls?: TLSConfig;
  readonly apiKey?: string;
  /** gRPC metadata of the profile (`grpc_meta`, `TEMPORAL_GRPC_META_*`). */
  readonly metadata?: Record<string, string>;
  /** Where the server CA came from (a path or the setting's name), for messages; undefined: the system's CAs. */
  readonly caSource?: string;
}

/** Options for `Connection.connect` and `NativeConnection.connect`. */
export function connectionOptions(t: TemporalTarget): {
  address: string;
  tls?: TLSConfig;
  apiKey?: string;
  metadata?: Record<string, string>;
} {
  return {
    address: t.address,
    ...(t.tls ? { tls: t.tls } : {}),
    ...(t.apiKey ? { apiKey: t.apiKey } : {}),
    ...(t.metadata && Object.keys(t.metadata).length > 0 ? { metadata: t.metadata } : {}),
  };
}

/** `host:port (TLS, client certificate, API key)`, or `(plaintext)`: for messages, no key material. */
export function describeTarget(t: TemporalTarget): string {
  const how = t.tls
    ? ['TLS', ...(t.tls.clientCertPair ? ['client certificate'] : []), ...(t.apiKey ? ['API key'] : [])]
    : ['plaintext'];
  return `${t.address} (${how.join(', ')})`;
}

type Env = Readonly<Record<string, string | undefined>>;

/**
 * The target for the given flags and environment. @throws TemporalConfigError naming the setting at fault.
 */
export function resolveTemporal(
  flags: { readonly address?: string; readonly namespace?: string; readonly profile?: string },
  env: Env = process.env,
): TemporalTarget {
  // A profile named by flag or TEMPORAL_PROFILE must exist; `default` may be absent (then the variables alone count).
  const named = flags.profile ?? env.TEMPORAL_PROFILE;
  const profileName = named ?? 'default';
  if (/^(1|true|yes|on)$/i.test(env.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION ?? '')) {
    throw new TemporalConfigError(
      "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is not honoured: set TEMPORAL_TLS_SERVER_NAME to the name the server's certificate carries",
    );
  }
  // Temporal's loader takes a missing file for no file: a file the operator named must exist.
  if (env.TEMPORAL_CONFIG_FILE && !existsSync(env.TEMPORAL_CONFIG_FILE)) {
    throw new TemporalConfigError(`TEMPORAL_CONFIG_FILE ${env.TEMPORAL_CONFIG_FILE}: no such file`);
  }
  const vars = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
  let profile: ClientConfigProfile;
  try {
    profile = loadClientConfigProfile({ ...(named ? { profile: named } : {}), overrideEnvVars: vars });
  } catch (err) {
    const file = env.TEMPORAL_CONFIG_FILE ? ` (TEMPORAL_CONFIG_FILE ${env.TEMPORAL_CONFIG_FILE})` : '';
    throw new TemporalConfigError(
      `Temporal connection profile "${profileName}"${file}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const address = flags.address ?? env.STEWARD_ADDRESS ?? profile.address ?? DEFAULT_ADDRESS;
  const namespace = flags.namespace ?? env.STEWARD_NAMESPACE ?? profile.namespace ?? 'default';
  const apiKey = profile.apiKey || undefined;
  const material = profile.tls && profile.tls.disabled !== true ? tlsMaterial(profile.tls, profileName) : undefined;
  if (profile.tls?.disabled === true && apiKey) {
    throw new TemporalConfigError('TEMPORAL_API_KEY is set with TLS disabled: an API key is never sent in plaintext');
  }
  const tls = material?.tls ?? (apiKey ? {} : undefined);
  return {
    address,
    namespace,
    profile: profileName,
    ...(tls ? { tls } : {}),
    ...(apiKey ? { apiKey } : {}),
    ...(profile.grpcMeta ? { metadata: profile.grpcMeta } : {}),
    ...(material?.caSource ? { caSource: material.caSource } : {}),
  };
}

type Source = NonNullable<NonNullable<ClientConfigProfile['tls']>['clientCert']>;

/** The setting a TLS source is given by, as an operator sets it: the variable's name and the path, if any. */
function settingOf(source: Source, variable: string, profileKey: string, profile: string): string {
  return 'path' in source
    ? `${variable} (or ${profileKey}_path in profile "${profile}"): ${source.path}`
    : `${variable.replace(/_PATH$/, '_DATA')} (or ${profileKey}_data in profile "${profile}")`;
}

function read(source: Source, what: string): Buffer {
  if ('data' in source) return Buffer.from(source.data);
  try {
    return readFileSync(source.path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new TemporalConfigError(
      `${what}: cannot read it (${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? 'unreadable')})`,
    );
  }
}

function certificate(pem: Buffer, what: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw new TemporalConfigError(`${what}: not a PEM certificate`);
  }
}

function tlsMaterial(
  tls: NonNullable<ClientConfigProfile['tls']>,
  profile: string,
  now: Date = new Date(),
): { tls: TLSConfig; caSource?: string } {
  const caWhat =
    tls.serverCACert && settingOf(tls.serverCACert, 'TEMPORAL_TLS_SERVER_CA_CERT_PATH', 'server_ca_cert', profile);
  const certWhat = tls.clientCert && settingOf(tls.clientCert, 'TEMPORAL_TLS_CLIENT_CERT_PATH', 'client_cert', profile);
  const keyWhat = tls.clientKey && settingOf(tls.clientKey, 'TEMPORAL_TLS_CLIENT_KEY_PATH', 'client_key', profile);
  if (tls.clientCert && !tls.clientKey) {
    throw new TemporalConfigError(`${certWhat} is set without its key: set TEMPORAL_TLS_CLIENT_KEY_PATH too`);
  }
  if (tls.clientKey && !tls.clientCert) {
    throw new TemporalConfigError(`${keyWhat} is set without its certificate: set TEMPORAL_TLS_CLIENT_CERT_PATH too`);
  }
  let ca: Buffer | undefined;
  if (tls.serverCACert) {
    ca = read(tls.serverCACert, caWhat!);
    certificate(ca, caWhat!);
  }
  let clientCertPair: TLSConfig['clientCertPair'];
  if (tls.clientCert && tls.clientKey) {
    const crt = read(tls.clientCert, certWhat!);
    const key = read(tls.clientKey, keyWhat!);
    const cert = certificate(crt, certWhat!);
    let privateKey;
    try {
      privateKey = createPrivateKey(key);
    } catch {
      throw new TemporalConfigError(`${keyWhat}: not a PEM private key`);
    }
    if (!cert.checkPrivateKey(privateKey)) {
      throw new TemporalConfigError(`${keyWhat}: not the key of the client certificate (${certWhat})`);
    }
    if (new Date(cert.validTo) < now) {
      throw new TemporalConfigError(`${certWhat}: the client certificate expired on ${cert.validTo}`);
    }
    if (new Date(cert.validFrom) > now) {
      throw new TemporalConfigError(`${certWhat}: the client certificate is not valid before ${cert.validFrom}`);
    }
    clientCertPair = { crt, key };
  }
  return {
    tls: {
      ...(tls.serverName ? { serverNameOverride: tls.serverName } : {}),
      ...(ca ? { serverRootCACertificate: ca } : {}),
      ...(clientCertPair ? { clientCertPair } : {}),
    },
    ...(caWhat ? { caSource: caWhat } : {}),
  };
}

/**
 * A connection failure as an operator can act on it: what the TLS handshake or the server said, against what was
 * configured. The SDK's own text is kept after it. The client (grpc-js) and the worker (Rust core) word the same fault
 * differently; both are matched.
 */
export function explainConnectError(err: unknown, t: TemporalTarget): Error {
  const text = errorText(err);
  const at = `Temporal at ${describeTarget(t)}`;
  const because = (why: string) => new TemporalConnectError(`${at}: ${why} [${text.slice(0, 300)}]`, { cause: err });
  if (
    /unable to verify|self[- ]signed certificate|unable to get local issuer|UnknownIssuer|unknown ?issuer/i.test(text)
  )
    return because(
      t.caSource
        ? `the server's certificate is not signed by the CA of ${t.caSource}`
        : "the server's certificate is not signed by a CA this machine trusts: set TEMPORAL_TLS_SERVER_CA_CERT_PATH",
    );
  if (/does not match certificate|altnames|NotValidForName|not valid for name|ERR_TLS_CERT_ALTNAME/i.test(text))
    return because(
      "the server's certificate is not for this name: set TEMPORAL_TLS_SERVER_NAME to the name it carries",
    );
  if (/certificate has expired|CertificateExpired|Expired/i.test(text) && !/client certificate/i.test(text))
    return because("the server's certificate, or the client certificate as the server sees it, has expired");
  if (
    /certificate required|CertificateRequired|alert number 116|bad certificate|BadCertificate|alert number 42|unknown ca|UnknownCA|alert number 48/i.test(
      text,
    )
  )
    return because(
      t.tls?.clientCertPair
        ? 'the server refused the client certificate at the TLS handshake (not signed by a CA it trusts?)'
        : 'the server asks for a client certificate: set TEMPORAL_TLS_CLIENT_CERT_PATH and TEMPORAL_TLS_CLIENT_KEY_PATH',
    );
  if (/UNAUTHENTICATED|PERMISSION_DENIED|valid authentication credentials|Request unauthorized/i.test(text))
    return because(t.apiKey ? 'the server refused the API key' : 'the server wants credentials: set TEMPORAL_API_KEY');
  if (
    t.tls &&
    /wrong version number|packet length too long|InvalidContentType|CorruptMessage|unexpected eof|handshake/i.test(text)
  )
    return because('the TLS handshake failed: does the server speak TLS on this port?');
  if (!t.tls && /server speaks TLS/.test(text))
    return because(
      'the server speaks TLS: set TEMPORAL_TLS=true (and TEMPORAL_TLS_SERVER_CA_CERT_PATH for a private CA)',
    );
  if (!t.tls && /Protocol error|frame|GOAWAY|ECONNRESET|Connection reset|broken pipe|http2/i.test(text))
    return because('the connection broke at once: the server may require TLS (set TEMPORAL_TLS=true or its CA)');
  return err instanceof Error ? err : new Error(text);
}

/** A connection explained by {@link explainConnectError}. */
export class TemporalConnectError extends Error {
  override readonly name = 'TemporalConnectError';
}

/** The message of `err` and of its causes, joined: the SDK wraps the transport's error. */
function errorText(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, n = 0; e && n < 5; n++) {
    if (e instanceof Error) {
      parts.push(e.message);
      e = e.cause;
    } else {
      parts.push(String(e));
      break;
    }
  }
  return parts.join(': ');
}
