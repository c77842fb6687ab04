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
import { scrubbed } from '../model/host-text';

export const DEFAULT_ADDRESS = '127.0.0.1:7233';

/** A Temporal connection setting that cannot work: exit 64, as a wrong flag. */
export class TemporalConfigError extends Error {
  override readonly name = 'TemporalConfigError';
}

/**
 * Where steward connects, resolved. The API key and the private key go only to the SDK's connections and to
 * {@link tlsProbe}'s handshake (common/temporal-client.ts); no message prints them.
 */
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

type Flags = { readonly address?: string; readonly namespace?: string; readonly profile?: string };

/** The profile the flags and environment name, with the TEMPORAL_* variables over it. */
function loadProfile(flags: Flags, env: Env): { profile: ClientConfigProfile; profileName: string } {
  // A profile named by flag or TEMPORAL_PROFILE must exist; `default` may be absent (then the variables alone count).
  const named = flags.profile ?? env.TEMPORAL_PROFILE;
  const profileName = named ?? 'default';
  // Temporal's loader takes a missing file for no file: a file the operator named must exist.
  if (env.TEMPORAL_CONFIG_FILE && !existsSync(env.TEMPORAL_CONFIG_FILE)) {
    throw new TemporalConfigError(`TEMPORAL_CONFIG_FILE ${env.TEMPORAL_CONFIG_FILE}: no such file`);
  }
  const vars = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
  try {
    return {
      profile: loadClientConfigProfile({ ...(named ? { profile: named } : {}), overrideEnvVars: vars }),
      profileName,
    };
  } catch (err) {
    const file = env.TEMPORAL_CONFIG_FILE ? ` (TEMPORAL_CONFIG_FILE ${env.TEMPORAL_CONFIG_FILE})` : '';
    throw new TemporalConfigError(`Temporal connection profile "${profileName}"${file}: ${loaderFault(err)}`);
  }
}

function endpointOf(flags: Flags, env: Env, profile: ClientConfigProfile): { address: string; namespace: string } {
  return {
    address: flags.address ?? env.STEWARD_ADDRESS ?? profile.address ?? DEFAULT_ADDRESS,
    namespace: flags.namespace ?? env.STEWARD_NAMESPACE ?? profile.namespace ?? 'default',
  };
}

/**
 * The address and namespace alone (for the codec keys and the local worker's socket): the profile is read, its TLS
 * files are not. @throws TemporalConfigError for a profile that cannot be read.
 */
export function resolveEndpoint(flags: Flags, env: Env = process.env): { address: string; namespace: string } {
  if (flags.address !== undefined && flags.namespace !== undefined) {
    return { address: flags.address, namespace: flags.namespace };
  }
  return endpointOf(flags, env, loadProfile(flags, env).profile);
}

/**
 * The target for the given flags and environment. @throws TemporalConfigError naming the setting at fault.
 */
export function resolveTemporal(flags: Flags, env: Env = process.env): TemporalTarget {
  if (/^(1|true|yes|on)$/i.test(env.TEMPORAL_TLS_DISABLE_HOST_VERIFICATION ?? '')) {
    throw new TemporalConfigError(
      "TEMPORAL_TLS_DISABLE_HOST_VERIFICATION is not honoured: set TEMPORAL_TLS_SERVER_NAME to the name the server's certificate carries",
    );
  }
  const { profile, profileName } = loadProfile(flags, env);
  const { address, namespace } = endpointOf(flags, env, profile);
  const apiKey = profile.apiKey || undefined;
  const material = profile.tls && profile.tls.disabled !== true ? tlsMaterial(profile.tls, profileName) : undefined;
  if (profile.tls?.disabled === true && apiKey) {
    throw new TemporalConfigError(
      `an API key (TEMPORAL_API_KEY, or api_key in profile "${profileName}") is set with TLS disabled: an API key is never sent in plaintext`,
    );
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

/**
 * The loader's error, fit to print: a TOML parser quotes the lines around a syntax error, which may hold the API key
 * or a private key, so only its first line goes, scrubbed of any long run, with the line and column it names.
 */
function loaderFault(err: unknown): string {
  // The loader fails this way on a file without any `[profile.<name>]` table.
  if (err instanceof TypeError) return 'the file holds no [profile.<name>] table';
  const first = (err instanceof Error ? err.message : String(err)).split('\n')[0] ?? '';
  const { line, column } = err as { line?: unknown; column?: unknown };
  const at = typeof line === 'number' ? ` (line ${line}${typeof column === 'number' ? `, column ${column}` : ''})` : '';
  return `${scrubbed(first, 200)}${at}`;
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
  if (/PERMISSION_DENIED|PermissionDenied/.test(text))
    return because(
      `the server refused the request: the identity (client certificate or API key) has no rights on namespace ${t.namespace}`,
    );
  if (/UNAUTHENTICATED|valid authentication credentials|Request unauthorized/i.test(text))
    return because(t.apiKey ? 'the server refused the API key' : 'the server wants credentials: set TEMPORAL_API_KEY');
  if (t.tls && /certificate has expired|CertificateExpired|alert certificate expired|alert number 45/i.test(text))
    return because("the server's certificate has expired, or the server takes the client certificate for expired");
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
