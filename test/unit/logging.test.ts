import { describe, expect, it } from 'vitest';
import { forwardConfig, loggingPackages, loggingResources } from '../../activities/harden/logging';
import { specSchema } from '../../model/schema';
import { validate, ValidationError } from '../../model/validate';

const spec = (logShipping?: object) =>
  validate(
    specSchema,
    { version: 1, hosts: [{ name: 'h', address: '127.0.0.1' }], harden: logShipping ? { logShipping } : {} },
    'test',
  );
const CA = '-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n';

function refused(input: object): string {
  try {
    spec(input);
  } catch (e) {
    expect(e).toBeInstanceOf(ValidationError);
    return (e as Error).message;
  }
  throw new Error('accepted');
}

describe('remote log shipping', () => {
  it('forwards everything over TCP with a disk queue retried without end', () => {
    const s = spec({ collector: 'logs.example.net' });
    expect(loggingPackages(s)).toEqual(['rsyslog']);
    const conf = forwardConfig(s);
    expect(conf).toMatch(/^\*\.\* action\($/m);
    for (const p of [
      'type="omfwd"',
      'target="logs.example.net"',
      'port="514"',
      'protocol="tcp"',
      'queue.type="LinkedList"',
      'queue.saveOnShutdown="on"',
      'action.resumeRetryCount="-1"',
    ]) {
      expect(conf).toContain(`  ${p}\n`);
    }
    expect(conf).not.toContain('gtls');
  });

  it('over TLS checks the collector against the spec CA and its name', () => {
    const s = spec({ collector: '203.0.113.9', port: 6514, protocol: 'tls', caCertificate: CA });
    expect(loggingPackages(s)).toEqual(['rsyslog', 'rsyslog-gnutls']);
    const conf = forwardConfig(s);
    expect(conf).toContain('StreamDriverAuthMode="x509/name"');
    expect(conf).toContain('StreamDriverPermittedPeers="203.0.113.9"');
    expect(conf).toContain('StreamDriver.CAFile="/etc/ssl/steward/log-collector-ca.pem"');
    expect(loggingResources(s, 'h').map((r) => r.id)).toEqual([
      'file:/etc/ssl/steward/log-collector-ca.pem',
      'file:/etc/rsyslog.d/60-steward-forward.conf',
    ]);
  });

  it('unset, removes only steward forwarding', () => {
    expect(loggingPackages(spec())).toEqual([]);
    expect(loggingResources(spec(), 'h').map((r) => r.id)).toEqual(['logging:forward']);
  });

  it('refuses a collector that is not a host, TLS without a CA, and text posing as a certificate, naming the field', () => {
    expect(refused({ collector: 'logs" type="omfile' })).toContain('harden.logShipping.collector');
    expect(refused({ collector: 'logs', protocol: 'tls' })).toContain('harden.logShipping.caCertificate');
    expect(
      refused({ collector: 'logs', caCertificate: '-----BEGIN CERTIFICATE-----\n"x"\n-----END CERTIFICATE-----' }),
    ).toContain('harden.logShipping.caCertificate');
    expect(refused({ collector: 'logs', port: 70000 })).toContain('harden.logShipping.port');
  });
});
