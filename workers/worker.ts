/** The steward worker: runs steward's workflows and its activities against hosts over SSH. */
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { SessionPool } from '../activities/host/session';
import { loadCodecKeys } from '../client/context';
import { ensureSearchAttributes } from '../client/dev/temporal';
import { encryptingDataConverter } from '../codec/aes-gcm';
import type { KeyRing } from '../codec/keys';
import { TASK_QUEUE } from '../workflows/ids';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
/** Workflow interceptor modules every steward worker installs: step summaries for the UI, inherited triggers. */
export const WORKFLOW_INTERCEPTOR_MODULES = [fileURLToPath(new URL('../workflows/interceptors.ts', import.meta.url))];

export interface WorkerConfig {
  readonly address: string;
  readonly namespace: string;
  readonly taskQueue?: string;
  /**
   * Pre-bundled workflow code (tests bundle once per suite), built with {@link WORKFLOW_INTERCEPTOR_MODULES};
   * otherwise the worker bundles at start.
   */
  readonly workflowBundle?: WorkerOptions['workflowBundle'];
  /** Payload codec keys; default {@link loadCodecKeys} (the environment, or `steward dev up`'s key). */
  readonly keys?: KeyRing;
}

/**
 * Creates a worker with a fresh SSH session pool; every payload it sends is encrypted with the codec keys. Call
 * `run()` on it; the pool closes when it stops.
 * @throws CodecKeyError before connecting when there are no codec keys.
 */
export async function createWorker(
  config: WorkerConfig,
): Promise<{ worker: Worker; pool: SessionPool; connection: NativeConnection }> {
  const keys = config.keys ?? (await loadCodecKeys({ address: config.address }));
  const connection = await NativeConnection.connect({ address: config.address });
  const pool = new SessionPool();
  const worker = await Worker.create({
    connection,
    namespace: config.namespace,
    taskQueue: config.taskQueue ?? TASK_QUEUE,
    dataConverter: encryptingDataConverter(keys),
    ...(config.workflowBundle
      ? { workflowBundle: config.workflowBundle }
      : { workflowsPath: WORKFLOWS_PATH, interceptors: { workflowModules: WORKFLOW_INTERCEPTOR_MODULES } }),
    activities: createActivities({ pool }),
    maxConcurrentActivityTaskExecutions: 100,
  });
  return { worker, pool, connection };
}

/**
 * Runs a worker until SIGINT/SIGTERM, then closes SSH sessions and the connection. Registers steward's search
 * attributes first, so any Temporal server works; a server that refuses (no operator rights) only gets a warning.
 * @throws CodecKeyError at once when there are no codec keys: a worker never sends plaintext payloads.
 */
export async function runWorker(config: WorkerConfig): Promise<void> {
  const keys = config.keys ?? (await loadCodecKeys({ address: config.address }));
  const client = await Connection.connect({ address: config.address });
  try {
    await ensureSearchAttributes(client, config.namespace);
  } catch (err) {
    console.warn(`steward worker: could not register search attributes: ${err instanceof Error ? err.message : err}`);
  } finally {
    await client.close();
  }
  const { worker, pool, connection } = await createWorker({ ...config, keys });
  try {
    await worker.run();
  } finally {
    await pool.closeAll();
    await connection.close();
  }
}
