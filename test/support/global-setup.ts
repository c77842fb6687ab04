/**
 * Vitest global setup: one Temporal dev server for the whole run. Starts an in-memory, headless dev server on a free
 * 127.0.0.1 port (building the `temporal` CLI first if needed), or uses the server at
 * `STEWARD_TEST_TEMPORAL_ADDRESS` when set. Either way steward's search attributes are registered, and tests get
 * the address with `inject('temporalAddress')` (see `test/support/temporal.ts`).
 *
 * Payloads are encrypted in tests as everywhere: unless the environment names codec keys, the run uses the test key
 * file `.steward/test-codec.keys` (made once, mode 0600), exported as STEWARD_CODEC_KEY_FILE to test files, the
 * workers they start and the CLI processes they run.
 */
import { Connection } from '@temporalio/client';
import type { TestProject } from 'vitest/node';
import { ensureKeyFile, KEY_FILE_ENV, KEYS_ENV } from '../../codec/keys';
import {
  ensureSearchAttributes,
  ensureTemporalBinary,
  findFreePort,
  startDevServer,
  stopProcess,
} from '../../client/dev/temporal';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `host:port` of the Temporal frontend shared by all test files. */
    temporalAddress: string;
    /** Namespace the tests use; steward's search attributes are registered in it. */
    temporalNamespace: string;
    /** The codec key file of the run, when the keys do not come from STEWARD_CODEC_KEYS. */
    codecKeyFile: string | undefined;
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | void> {
  if (!process.env[KEYS_ENV] && !process.env[KEY_FILE_ENV]) {
    process.env[KEY_FILE_ENV] = (await ensureKeyFile('.steward/test-codec.keys')).file;
  }
  project.provide('codecKeyFile', process.env[KEY_FILE_ENV]);
  const namespace = process.env.STEWARD_TEST_TEMPORAL_NAMESPACE || 'default';
  const existing = process.env.STEWARD_TEST_TEMPORAL_ADDRESS;
  if (existing) {
    const connection = await Connection.connect({ address: existing });
    try {
      await ensureSearchAttributes(connection, namespace);
    } finally {
      await connection.close();
    }
    project.provide('temporalAddress', existing);
    project.provide('temporalNamespace', namespace);
    return;
  }

  await ensureTemporalBinary(); // builds the CLI once per machine; without Go the SDK downloads the server
  const started = Date.now();
  const server = await startDevServer({
    port: await findFreePort(),
    namespace,
    logFile: '.steward/temporal-test-server.log',
  });
  console.log(`Temporal dev server ${server.address} (pid ${server.pid}) ready in ${Date.now() - started} ms`);
  project.provide('temporalAddress', server.address);
  project.provide('temporalNamespace', namespace);
  return () => stopProcess(server.pid);
}
