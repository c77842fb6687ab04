/** The steward worker: runs steward's workflows and its activities against hosts over SSH. */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NativeConnection, Runtime, Worker, type WorkerOptions } from '@temporalio/worker';
import { createActivities } from '../activities';
import { workflowCodeDigest } from './bundle';
import { SecretStore } from '../activities/secrets-store';
import { SessionPool } from '../activities/host/session';
import { loadCodecKeys } from '../common/codec-keys';
import { KnownHosts } from '../common/known-hosts';
import { ensureSearchAttributes } from '../common/search-attributes';
import { connectTemporal, diagnoseConnectError } from '../common/temporal-client';
import { connectionOptions, resolveTemporal, type TemporalTarget } from '../common/temporal-connection';
import { encryptingDataConverter } from '../codec/aes-gcm';
import type { KeyRing } from '../codec/keys';
import type { Tracing } from './tracing';
import { TASK_QUEUE } from '../model/ids';

export { WORKFLOW_INTERCEPTOR_MODULES, WORKFLOWS_PATH } from './paths';

/**
 * The most time between two heartbeats the worker sends for one activity. Activities heartbeat every 5 s
 * (activities/context.ts); Temporal would batch them up to 80% of the heartbeat timeout (12 s of steps' 15 s,
 * workflows/options.ts), leaving 3 s for the one heartbeat that keeps an attempt alive to reach the server. At 5 s,
 * about three reach it within every timeout, so a live attempt is declared lost only when two in a row are.
 */
export const HEARTBEAT_THROTTLE = '5 seconds';

const BUNDLER = fileURLToPath(new URL('./bundle-workflows.ts', import.meta.url));

/**
 * The workflow bundle, built by a child process (workers/bundle-workflows.ts): webpack needs ~150 MB that a
 * long-running worker would otherwise keep. @throws Error with the bundler's output when it fails.
 */
export async function bundleInChild(): Promise<{ code: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'steward-bundle-'));
  try {
    const out = join(dir, 'workflows.js');
    await new Promise<void>((resolve, reject) => {
      execFile(process.execPath, ['--import', 'tsx', BUNDLER, out], { maxBuffer: 16 << 20 }, (err, _stdout, stderr) =>
        err ? reject(new Error(`bundling the workflow code failed: ${stderr.trim() || err.message}`)) : resolve(),
      );
    });
    return { code: await readFile(out, 'utf8') };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface WorkerConfig {
  readonly address: string;
  readonly namespace: string;
  /**
   * Where and how to connect (TLS, client certificate, API key); default: `address` and `namespace` with the rest of
   * Temporal's environment configuration (common/temporal-connection.ts).
   */
  readonly temporal?: TemporalTarget;
  /**
   * `host:port` of a Prometheus endpoint (`/metrics`) for the SDK's metrics and steward's own (model/metrics.ts);
   * none without it.
   */
  readonly metrics?: string;
  readonly taskQueue?: string;
  /**
   * Pre-bundled workflow code built with {@link WORKFLOW_INTERCEPTOR_MODULES} (`steward bundle`, checked by
   * `loadWorkflowBundle` in workers/bundle.ts; tests bundle once per run); otherwise the worker bundles at start, in
   * a child process ({@link bundleInChild}).
   */
  readonly workflowBundle?: WorkerOptions['workflowBundle'];
  /**
   * Payload codec keys; default {@link loadCodecKeys} (the environment, `steward dev up`'s key, or the key file beside
   * `spec`).
   */
  readonly keys?: KeyRing;
  /** The spec whose directory holds `steward init`'s codec key file; default `$STEWARD_SPEC` or `steward.yaml`. */
  readonly spec?: string;
  /**
   * Run as one version of a Temporal Worker Deployment: the server routes each new run to the deployment's current
   * version, and a run stays on the version it started on (pinned) unless its workflow says it moves on (auto-upgrade:
   * fleet and rotation plans, rotations). The build id defaults to a digest of the workflow code, so a worker with
   * changed workflows is a new version and one with the same code is the same. Without it the worker is unversioned.
   */
  readonly deployment?: { readonly name: string; readonly buildId?: string };
  /**
   * An OTLP/HTTP traces endpoint (`http(s)://…/v1/traces`): the worker exports a span per run, activity and SSH
   * command there (workers/tracing.ts). Default: none.
   */
  readonly traces?: string;
}

/**
 * The sink the workflow side's tracing interceptors (in every bundle, workflows/interceptors.ts) call when the worker
 * exports no traces: it drops their spans.
 */
const NO_TRACES: Pick<WorkerOptions, 'sinks'> = {
  sinks: { exporter: { export: { fn: () => undefined, callDuringReplay: false } } },
};

/**
 * `wf-` + 16 hex digits of the workflow code's digest (`workflowCodeDigest`, workers/bundle.ts: its sources and their
 * paths under the directory it was built in): one build id per workflow code, wherever steward is installed.
 */
export async function workflowCodeBuildId(bundle: NonNullable<WorkerOptions['workflowBundle']>): Promise<string> {
  const code = 'code' in bundle ? bundle.code : await readFile(bundle.codePath, 'utf8');
  return `wf-${workflowCodeDigest(code).slice(0, 16)}`;
}

function temporalTarget(config: WorkerConfig): TemporalTarget {
  return config.temporal ?? resolveTemporal({ address: config.address, namespace: config.namespace });
}

/**
 * Creates a worker with a fresh SSH session pool (host keys trusted on first use pinned in the known-hosts file,
 * common/known-hosts.ts); every payload it sends is encrypted with the codec keys. Call
 * `run()` on it; the pool closes when it stops.
 * @throws CodecKeyError before connecting when there are no codec keys.
 */
export async function createWorker(config: WorkerConfig): Promise<{
  worker: Worker;
  pool: SessionPool;
  connection: NativeConnection;
  /** The Worker Deployment version the worker polls as, when it has one. */
  version?: { deploymentName: string; buildId: string };
  /** Exports the spans still buffered; call after the worker stopped. */
  flushTraces(): Promise<void>;
}> {
  const keys =
    config.keys ?? (await loadCodecKeys({ address: config.address, ...(config.spec ? { spec: config.spec } : {}) }));
  const target = temporalTarget(config);
  let connection: NativeConnection;
  try {
    connection = await NativeConnection.connect(connectionOptions(target));
  } catch (err) {
    throw await diagnoseConnectError(err, target);
  }
  let tracing: Tracing | undefined;
  let pool: SessionPool | undefined;
  try {
    const workflowBundle = config.workflowBundle ?? (await bundleInChild());
    const deployment = config.deployment && {
      deploymentName: config.deployment.name,
      buildId: config.deployment.buildId ?? (await workflowCodeBuildId(workflowBundle)),
    };
    tracing = config.traces ? (await import('./tracing')).startTracing(config.traces) : undefined;
    pool = new SessionPool({ knownHosts: KnownHosts.fromEnv() });
    // Redaction must not depend on which worker handled a value: learn what the version store knows first.
    await SecretStore.fromEnv()
      .then((store) => store.preload())
      .catch(() => 0);
    const worker = await Worker.create({
      connection,
      namespace: target.namespace,
      taskQueue: config.taskQueue ?? TASK_QUEUE,
      dataConverter: encryptingDataConverter(keys),
      workflowBundle,
      activities: createActivities({ pool }),
      ...(deployment
        ? {
            workerDeploymentOptions: {
              version: deployment,
              useWorkerVersioning: true,
              defaultVersioningBehavior: 'PINNED' as const,
            },
          }
        : {}),
      maxConcurrentActivityTaskExecutions: 100,
      maxHeartbeatThrottleInterval: HEARTBEAT_THROTTLE,
      ...(tracing?.workerOptions ?? NO_TRACES),
    });
    const traced = tracing;
    const flushTraces = async () => traced?.shutdown();
    return { worker, pool, connection, flushTraces, ...(deployment ? { version: deployment } : {}) };
  } catch (err) {
    // Nothing half-made stays behind: the process's tracer provider, SSH sessions, the connection.
    await Promise.allSettled([tracing?.shutdown(), pool?.closeAll(), connection.close()]);
    throw err;
  }
}

/**
 * Runs a worker until SIGINT/SIGTERM, then closes SSH sessions and the connection. Registers steward's search
 * attributes first, so any Temporal server works; a server that refuses (no operator rights) only gets a warning.
 * @throws CodecKeyError at once when there are no codec keys: a worker never sends plaintext payloads.
 */
export async function runWorker(config: WorkerConfig): Promise<void> {
  // The runtime, with its metrics exporter, before the first connection: it is the process's, made once.
  if (config.metrics) {
    Runtime.install({
      telemetryOptions: { metrics: { prometheus: { bindAddress: config.metrics, countersTotalSuffix: true } } },
    });
  }
  const keys =
    config.keys ?? (await loadCodecKeys({ address: config.address, ...(config.spec ? { spec: config.spec } : {}) }));
  const target = temporalTarget(config);
  const client = await connectTemporal(target);
  try {
    await ensureSearchAttributes(client, target.namespace);
  } catch (err) {
    console.warn(`steward worker: could not register search attributes: ${err instanceof Error ? err.message : err}`);
  } finally {
    await client.close();
  }
  const { worker, pool, connection, version, flushTraces } = await createWorker({ ...config, keys });
  if (version) {
    console.log(
      `steward worker: Worker Deployment ${version.deploymentName}, build ${version.buildId}; new runs reach it once ` +
        `it is the current version: temporal worker deployment set-current-version --deployment-name ` +
        `${version.deploymentName} --build-id ${version.buildId}`,
    );
  }
  try {
    await worker.run();
  } finally {
    // Each, whatever the others do: sessions closed, the connection closed, the buffered spans sent.
    await Promise.allSettled([pool.closeAll(), connection.close(), flushTraces()]);
  }
}
