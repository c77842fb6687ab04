/** Test fixtures: a key pair made at run time, specs for simulators, an in-process worker, golden hosts. */
import { publicKeyOf } from '../../activities/provision/resources';
import type { Simulator } from '../../client/dev/simulator';
import type { ResultDocument } from '../../client/operation';
import type { KeyRing } from '../../codec/keys';
import { createWorker } from '../../workers/worker';
import { steward, type CliResult } from './cli';
import { inject } from 'vitest';
import { GOLDEN_OPS_USER, goldenImage, type GoldenKind } from './golden';
import { phase } from './phases';
import { startSimulators, type SimulatorFleet } from './simulators';
import { startFrontStage, type FrontStage } from './temporal-front';
import { startOtlpReceiver } from '../doubles/otlp-receiver';
import { writeSpans } from './span-profile';
import type { TemporalTarget } from '../../common/temporal-connection';
import { testCodecKeys, testEnv, workflowBundle, type TestEnv } from './temporal';

import { hostName, makeKeyPair, writeSpec, type KeyPair } from './spec-files';

export { hostName, makeKeyPair, writeSpec, type KeyPair };

/** Runs steward's worker in this process on `taskQueue` until `stop()`, with the run's codec keys or `keys`. */
export async function startWorker(
  env: TestEnv,
  taskQueue: string,
  keys: KeyRing = env.keys,
  temporal?: TemporalTarget,
  traces?: string,
): Promise<{ stop(): Promise<void> }> {
  const { worker, pool, connection, flushTraces } = await createWorker({
    // With a target, the worker knows nothing else of the server: not the dev server's own address.
    address: temporal?.address ?? env.address,
    namespace: env.namespace,
    ...(temporal ? { temporal } : {}),
    taskQueue,
    workflowBundle: await workflowBundle(),
    keys,
    ...(traces ? { traces } : {}),
  });
  const running = worker.run();
  return {
    async stop() {
      worker.shutdown();
      await running;
      await pool.closeAll();
      await connection.close();
      await flushTraces();
    },
  };
}

/** `steward --json …` against the test server and a task queue, with the result document parsed. */
export type StewardCli = (spec: string, ...args: string[]) => Promise<CliResult & { doc?: ResultDocument }>;

export function cliFor(env: TestEnv, taskQueue: string, front?: FrontStage): StewardCli {
  return async (spec, ...args) => {
    // Through the front, the CLI finds the server, its TLS settings and API key in its temporal.toml profile alone.
    const server = front ? [] : ['--address', env.address];
    const r = await steward(['--spec', spec, ...server, '--task-queue', taskQueue, '--json', ...args], front?.cliEnv);
    return { ...r, ...(r.stdout.startsWith('{') ? { doc: JSON.parse(r.stdout) as ResultDocument } : {}) };
  };
}

/** The run's golden host image of `kind` (golden.ts), waiting for it or building it, timed as a setup phase. */
export async function goldenHostImage(kind: GoldenKind): Promise<string> {
  await testCodecKeys(); // the build's worker and CLI take the run's codec keys from the environment
  const run = {
    runId: inject('testRunId'),
    address: inject('temporalAddress'),
    namespace: inject('temporalNamespace'),
    bundlePath: inject('workflowBundlePath'),
  };
  return goldenImage(kind, run, phase);
}

/**
 * `count` simulators more, booted from the run's golden image of `kind` with the stage's key (a machine from a
 * provider's image, say), for a test that needs a new host late in its file; `cleanup` removes them.
 */
export async function goldenSimulators(keys: KeyPair, kind: GoldenKind, count = 1): Promise<SimulatorFleet> {
  const image = await goldenHostImage(kind);
  const authorizedKey = await publicKeyOf(keys.privateKeyPath);
  return phase(`start ${count} ${kind} simulator(s)`, () =>
    startSimulators(count, { authorizedKey, aptCache: true, image, keyUsers: [GOLDEN_OPS_USER] }),
  );
}

/** What an integration test file works with: server, key, simulators, a worker on its own queue, the CLI. */
export interface Stage {
  readonly env: TestEnv;
  readonly keys: KeyPair;
  readonly sims: readonly Simulator[];
  readonly cli: StewardCli;
  /** With `front`: the production-style frontend the worker and the CLI reach the server through. */
  readonly front?: FrontStage;
  /** Stops the worker, removes the simulators, closes connections. */
  close(): Promise<void>;
}

/**
 * Starts `count` simulators and a worker on `taskQueue`. With `golden`, every simulator boots from the run's golden
 * image of that kind (provisioned, or provisioned and hardened, through the CLI once per run; see golden.ts). With
 * `provision`, the first `provision` simulators (fresh ones) are provisioned through the CLI, each with its own spec,
 * before returning. Each phase is timed for the CI summary.
 */
export async function stage(opts: {
  taskQueue: string;
  simulators: number;
  provision?: number;
  golden?: GoldenKind;
  /**
   * The worker and the CLI reach the server only through a frontend that takes TLS with a client certificate and an
   * API key (test/support/temporal-front.ts).
   */
  front?: boolean;
  /** `host:port` of a Prometheus endpoint for this file's workers (the first stage of the file decides). */
  metrics?: string;
  /** An OTLP/HTTP traces endpoint the worker exports its spans to (the first stage of the file decides). */
  traces?: string;
}): Promise<Stage> {
  const env = await testEnv(opts.metrics ? { metrics: opts.metrics } : {});
  // STEWARD_TEST_SPANS=DIR: the file's worker traces to a receiver of its own, its spans written to DIR at close
  // (test/support/span-profile.ts sums them: where a file's minutes go, by activity and SSH command).
  const profile = !opts.traces && process.env.STEWARD_TEST_SPANS ? await startOtlpReceiver() : undefined;
  const traces = opts.traces ?? profile?.endpoint;
  const front = opts.front ? await startFrontStage(env.address, env.namespace) : undefined;
  const keys = makeKeyPair();
  const image = opts.golden ? await goldenHostImage(opts.golden) : undefined;
  // A golden host's ops user holds its key as provision writes it (with provision's comment), or drift would see it.
  const authorizedKey = image ? await publicKeyOf(keys.privateKeyPath) : keys.publicKey;
  const [fleet, worker] = await Promise.all([
    phase(`start ${opts.simulators} ${opts.golden ?? 'fresh'} simulator(s)`, () =>
      startSimulators(opts.simulators, {
        authorizedKey,
        aptCache: true,
        ...(image ? { image, keyUsers: [GOLDEN_OPS_USER] } : {}),
      }),
    ),
    startWorker(env, opts.taskQueue, env.keys, front?.workerTarget, traces),
  ]);
  const cli = cliFor(env, opts.taskQueue, front);
  const close = async () => {
    await worker.stop();
    if (profile) {
      await writeSpans(process.env.STEWARD_TEST_SPANS!, opts.taskQueue, profile.spans);
      await profile.close();
    }
    await front?.close();
    await fleet.cleanup();
    await env.teardown();
  };
  try {
    const toProvision = fleet.simulators.slice(0, opts.provision ?? 0);
    if (toProvision.length > 0) {
      const results = await phase(`provision ${toProvision.length} host(s)`, () =>
        Promise.all(toProvision.map((s) => cli(writeSpec(keys, [s], {}, `${hostName(s)}.yaml`), 'provision'))),
      );
      const failed = results.find((r) => r.code !== 0);
      if (failed) throw new Error(`provision failed: ${failed.stderr || failed.stdout}`);
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { env, keys, sims: fleet.simulators, cli, ...(front ? { front } : {}), close };
}
