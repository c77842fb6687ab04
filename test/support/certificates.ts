/**
 * A throwaway PKI for the tests of TLS connections to Temporal, made with openssl at run time (nothing committed):
 * a CA, a server certificate for `temporal.steward.test` and 127.0.0.1, a client certificate, a second CA that signed
 * neither, and an expired client certificate.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** The name the server certificate carries (and clients ask for with `TEMPORAL_TLS_SERVER_NAME`). */
export const SERVER_NAME = 'temporal.steward.test';

export interface Pki {
  readonly caCert: string;
  readonly serverCert: string;
  readonly serverKey: string;
  readonly clientCert: string;
  readonly clientKey: string;
  /** A CA that signed nothing here. */
  readonly otherCaCert: string;
  readonly expiredClientCert: string;
  readonly expiredClientKey: string;
}

function openssl(dir: string, ...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}

function newCa(dir: string, name: string): void {
  openssl(
    dir,
    ...['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2'],
    ...['-keyout', `${name}.key`, '-out', `${name}.crt`, '-subj', `/CN=steward test ${name}`],
    ...['-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'],
  );
}

function request(dir: string, name: string, cn: string): void {
  openssl(
    dir,
    ...['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'],
    ...['-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`],
  );
}

function sign(dir: string, name: string, extensions: string): void {
  writeFileSync(join(dir, `${name}.ext`), extensions);
  openssl(
    dir,
    ...['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial'],
    ...['-days', '2', '-out', `${name}.crt`, '-extfile', `${name}.ext`],
  );
}

export function makePki(dir: string): Pki {
  mkdirSync(dir, { recursive: true });
  newCa(dir, 'ca');
  newCa(dir, 'other-ca');
  request(dir, 'server', SERVER_NAME);
  sign(dir, 'server', `subjectAltName=DNS:${SERVER_NAME},IP:127.0.0.1\nextendedKeyUsage=serverAuth\n`);
  request(dir, 'client', 'steward-worker');
  sign(dir, 'client', 'extendedKeyUsage=clientAuth\n');
  // `openssl ca` alone sets explicit dates: a certificate that was valid for one day in 2020.
  request(dir, 'expired', 'steward-expired');
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '1000\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    '[ca]\ndefault_ca = c\n[c]\ndatabase = index.txt\nnew_certs_dir = .\nserial = serial\ndefault_md = sha256\n' +
      'policy = p\n[p]\ncommonName = supplied\n',
  );
  openssl(
    dir,
    ...['ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.crt', '-keyfile', 'ca.key', '-in', 'expired.csr'],
    ...['-out', 'expired.crt', '-startdate', '20200101000000Z', '-enddate', '20200102000000Z', '-notext'],
  );
  const at = (f: string) => join(dir, f);
  return {
    caCert: at('ca.crt'),
    serverCert: at('server.crt'),
    serverKey: at('server.key'),
    clientCert: at('client.crt'),
    clientKey: at('client.key'),
    otherCaCert: at('other-ca.crt'),
    expiredClientCert: at('expired.crt'),
    expiredClientKey: at('expired.key'),
  };
}
