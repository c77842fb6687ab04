/**
 * Vitest global setup: one Temporal dev server for the whole run. Starts an in-memory, headless dev server on a free
 * 127.0.0.1 port (building the `temporal` CLI first if needed), or uses the server at
 * `STEWARD_TEST_TEMPORAL_ADDRESS` when set. Either way steward's search attributes are registered, and tests get
 * the address with `inject('temporalAddress')` (see `test/support/temporal.ts`).
 */
import { Connection } from '@temporalio/client';
import type { TestProject } from 'vitest/node';
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
  }
}

export default async function setup(project: TestProject): Promise<(() => Promise<void>) | void> {
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
