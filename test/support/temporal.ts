/**
 * Test helpers for the Temporal dev server that `global-setup.ts` shares across the run.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client, Connection } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { AesGcmPayloadCodec } from '../../codec/aes-gcm';
import {
  bundleWorkflowCode,
  DefaultLogger,
  Runtime,
  type NativeConnection,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { inject } from 'vitest';
import { encryptingDataConverter, FAILURE_CONVERTER_PATH } from '../../codec/aes-gcm';
import { KEY_FILE_ENV, KEYS_ENV, keyRingFromEnv, type KeyRing } from '../../codec/keys';
import { WORKFLOW_BUNDLE_ENV } from '../../workers/paths';
import { WORKFLOW_INTERCEPTOR_MODULES } from '../../workers/worker';

/** Connections to the shared dev server. Call `teardown()` in `afterAll`. */
export interface TestEnv {
  address: string;
  namespace: string;
  /** For clients and the operator service. */
  connection: Connection;
  client: Client;
  /** For `Worker.create({ connection: nativeConnection, … })`. */
  nativeConnection: NativeConnection;
  /** The run's codec keys; `client` encrypts with them, as steward's workers and CLI do. */
  keys: KeyRing;
  /** Closes the connections; the server itself lives on until the run ends. */
  teardown: () => Promise<void>;
}

let runtimeInstalled = false;

/**
 * The process's SDK runtime, made once: with `metrics`, a Prometheus endpoint there for the workers of this test file,
 * as `steward worker --metrics` serves (workers/worker.ts).
 */
function installRuntime(metrics?: string): void {
  if (runtimeInstalled) return;
  Runtime.install({
    logger: new DefaultLogger('WARN'),
    ...(metrics
      ? { telemetryOptions: { metrics: { prometheus: { bindAddress: metrics, countersTotalSuffix: true } } } }
      : {}),
  });
  runtimeInstalled = true;
}

/** Connects to the run's shared Temporal server (`inject('temporalAddress')`). Use in `beforeAll`; each call makes its own connections. */
export async function testEnv(opts: { metrics?: string } = {}): Promise<TestEnv> {
  // Worker logs below WARN would bury test output; the runtime must be installed before the first connection.
  installRuntime(opts.metrics);
  const address = inject('temporalAddress');
  const namespace = inject('temporalNamespace');
  const keys = await testCodecKeys();
  process.env[WORKFLOW_BUNDLE_ENV] ??= inject('workflowBundlePath');
  const env = await TestWorkflowEnvironment.createFromExistingServer({
    address,
    namespace,
    client: { dataConverter: encryptingDataConverter(keys) },
  });
  return {
    address,
    namespace,
    connection: env.connection,
    client: env.client,
    nativeConnection: env.nativeConnection,
    keys,
    teardown: () => env.teardown(),
  };
}

/**
 * The run's codec keys (see `global-setup.ts`). Also makes sure this process's environment names them, so workers
 * and CLI processes started from the test file use the same keys.
 */
export async function testCodecKeys(): Promise<KeyRing> {
  const file = inject('codecKeyFile');
  if (!process.env[KEYS_ENV] && !process.env[KEY_FILE_ENV] && file) process.env[KEY_FILE_ENV] = file;
  const keys = await keyRingFromEnv();
  if (!keys) throw new Error('no codec keys: test/support/global-setup.ts sets STEWARD_CODEC_KEY_FILE');
  return keys;
}

/** steward's workflow entry point. */
export const defaultWorkflowsPath = fileURLToPath(new URL('../../workflows/index.ts', import.meta.url));

const bundles = new Map<string, Promise<WorkflowBundleWithSourceMap>>();

/**
 * Workflow code for `Worker.create({ workflowBundle: await workflowBundle() })`: steward's own workflows come from the
 * bundle the run built once (global-setup.ts); other entry points are bundled with webpack once per test file, with
 * the interceptors steward's worker installs. Also names the run's bundle in this process's environment, so the
 * `steward worker` processes a test starts load it instead of bundling again.
 */
export async function workflowBundle(
  workflowsPath: string = defaultWorkflowsPath,
): Promise<WorkflowBundleWithSourceMap | { codePath: string }> {
  const path = resolve(workflowsPath);
  if (path === defaultWorkflowsPath) {
    const codePath = inject('workflowBundlePath');
    process.env[WORKFLOW_BUNDLE_ENV] ??= codePath;
    return { codePath };
  }
  let bundle = bundles.get(path);
  if (!bundle) {
    bundle = bundleWorkflowCode({
      workflowsPath: path,
      workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
      failureConverterPath: FAILURE_CONVERTER_PATH,
      logger: new DefaultLogger('WARN'),
    });
    bundles.set(path, bundle);
  }
  return bundle;
}

/**
 * A run's history as a client without the codec key reads it: every event, its bytes as UTF-8 (a plaintext payload
 * reads as its JSON; an encrypted one as noise). What must hold no secret, observed value or container output.
 */
export async function rawHistoryText(env: TestEnv, run: { workflowId: string; runId: string }): Promise<string> {
  const history = await env.client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
  return JSON.stringify(history.events, (_k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('utf8') : v));
}

/**
 * Every payload of a run's history decrypted with the test run's keys, then the raw history (bytes as base64), as one
 * text: what a search for a leaked secret reads.
 */
export async function historyText(env: TestEnv, run: { workflowId: string; runId: string }): Promise<string> {
  const history = await env.client.workflow.getHandle(run.workflowId, run.runId).fetchHistory();
  const payloads: Payload[] = [];
  const walk = (v: unknown): void => {
    if (!v || typeof v !== 'object') return;
    if ('metadata' in v && 'data' in v && (v as Payload).data instanceof Uint8Array) payloads.push(v as Payload);
    else for (const x of Object.values(v)) walk(x);
  };
  walk(history.events);
  const decoded = await new AesGcmPayloadCodec(env.keys, { readPlaintext: true }).decode(payloads);
  const raw = JSON.stringify(history.events, (_k, v) =>
    v instanceof Uint8Array ? Buffer.from(v).toString('base64') : v,
  );
  return `${decoded.map((p) => Buffer.from(p.data ?? []).toString('utf8')).join('\n')}\n${raw}`;
}

/**
 * A worker of steward's workflows on `taskQueue` whose activities are test doubles, running until `stop()`: for the
 * workflow tests against the shared dev server.
 */
export async function doublesWorker(
  env: TestEnv,
  taskQueue: string,
  activities: Record<string, (...args: never[]) => Promise<unknown>>,
): Promise<{ stop(): Promise<void> }> {
  const { Worker } = await import('@temporalio/worker');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace,
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities,
    dataConverter: encryptingDataConverter(env.keys),
  });
  const running = worker.run();
  return {
    async stop() {
      worker.shutdown();
      await running;
    },
  };
}
