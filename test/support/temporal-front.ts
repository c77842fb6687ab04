/**
 * The run's dev server behind the production-style frontend test double (test/doubles/temporal-front.ts): TLS only,
 * a client certificate of the test CA, and an API key. The worker connects with Temporal's environment variables
 * (`TEMPORAL_TLS_*`, `TEMPORAL_API_KEY`), the CLI with a `temporal.toml` profile; neither is given the dev server's
 * own address.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { resolveTemporal, type TemporalTarget } from '../../common/temporal-connection';
import { startTemporalFront, type TemporalFront } from '../doubles/temporal-front';
import { makePki, SERVER_NAME, type Pki } from './certificates';

export const PROFILE = 'steward-test';

export interface FrontStage {
  readonly front: TemporalFront;
  readonly pki: Pki;
  readonly apiKey: string;
  /** The `temporal.toml` holding profile {@link PROFILE}. */
  readonly configFile: string;
  /** The worker's target, resolved from Temporal's environment variables. */
  readonly workerTarget: TemporalTarget;
  /** The environment of a CLI using the profile (no STEWARD_/TEMPORAL_ address of its own). */
  readonly cliEnv: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

export async function startFrontStage(backend: string, namespace: string): Promise<FrontStage> {
  const dir = mkdtempSync(join(tmpdir(), 'steward-front-'));
  const pki = makePki(dir);
  const apiKey = `steward-test-${randomBytes(24).toString('hex')}`;
  const front = await startTemporalFront({
    backend,
    key: readFileSync(pki.serverKey),
    cert: readFileSync(pki.serverCert),
    clientCa: readFileSync(pki.caCert),
    apiKey,
  });
  const configFile = join(dir, 'temporal.toml');
  writeFileSync(
    configFile,
    [
      `[profile.${PROFILE}]`,
      `address = "${front.address}"`,
      `namespace = "${namespace}"`,
      `api_key = "${apiKey}"`,
      `[profile.${PROFILE}.tls]`,
      `server_name = "${SERVER_NAME}"`,
      `server_ca_cert_path = "${pki.caCert}"`,
      `client_cert_path = "${pki.clientCert}"`,
      `client_key_path = "${pki.clientKey}"`,
      '',
    ].join('\n'),
    { mode: 0o600 },
  );
  const workerTarget = resolveTemporal(
    {},
    {
      TEMPORAL_ADDRESS: front.address,
      TEMPORAL_NAMESPACE: namespace,
      TEMPORAL_API_KEY: apiKey,
      TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert,
      TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
      // No temporal.toml there: the variables alone.
      XDG_CONFIG_HOME: dir,
    },
  );
  return {
    front,
    pki,
    apiKey,
    configFile,
    workerTarget,
    cliEnv: {
      TEMPORAL_CONFIG_FILE: configFile,
      TEMPORAL_PROFILE: PROFILE,
      STEWARD_ADDRESS: undefined,
      STEWARD_NAMESPACE: undefined,
      TEMPORAL_ADDRESS: undefined,
      TEMPORAL_NAMESPACE: undefined,
    },
    async close() {
      await front.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
