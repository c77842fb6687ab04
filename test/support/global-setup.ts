/**
 * Vitest global setup, once per run for every project (unit and integration share it):
 * - one Temporal dev server: in-memory, headless, on a free 127.0.0.1 port (building the `temporal` CLI first if
 *   needed), or the server at `STEWARD_TEST_TEMPORAL_ADDRESS` when set; either way steward's search attributes are
 *   registered;
 * - one bundle of steward's workflow code, built the way the worker builds it (in a child process), handed to every
 *   worker the tests start: in-process ones through `workflowBundle()`, `steward worker` processes through
 *   STEWARD_WORKFLOW_BUNDLE;
 * - a run id, which names the run's golden host images (golden.ts), built ahead while the unit tests run
 *   (golden-prebuild.ts); they are removed when the run ends.
 * Tests get all of it with `inject(…)` (see `test/support/temporal.ts`).
 *
 * Payloads are encrypted in tests as everywhere: unless the environment names codec keys, the run uses the test key
 * file `.steward/test-codec.keys` (made once, mode 0600), exported as STEWARD_CODEC_KEY_FILE to test files, the
 * workers they start and the CLI processes they run.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Connection } from '@temporalio/client';
import type { TestProject } from 'vitest/node';
import { ensureKeyFile, KEY_FILE_ENV, KEYS_ENV, keyRingFromEnv } from '../../codec/keys';
import { ensureSearchAttributes } from '../../common/search-attributes';
import { ensureTemporalBinary, findFreePort, startDevServer, stopProcess } from '../../client/dev/temporal';
import { removeOrphanedSimulators } from '../../client/dev/simulator';
import { writeWorkflowBundle } from '../../workers/bundle';
import { bundleInChild } from '../../workers/worker';
import { removeGoldenImages } from './golden';
import { goldenPrebuildSettled, goldenRunReady } from './golden-prebuild';

declare module 'vitest' {
  export interface ProvidedContext {
    /** `host:port` of the Temporal frontend shared by all test files. */
    temporalAddress: string;
    /** Namespace the tests use; steward's search attributes are registered in it. */
    temporalNamespace: string;
    /** The codec key file of the run, when the keys do not come from STEWARD_CODEC_KEYS. */
    codecKeyFile: string | undefined;
    /** The run's workflow bundle (a JavaScript file). */
    workflowBundlePath: string;
    /** Names this run's golden host images. */
    testRunId: string;
  }
}

interface Run {
  readonly temporalAddress: string;
  readonly temporalNamespace: string;
  readonly codecKeyFile: string | undefined;
  readonly workflowBundlePath: string;
  readonly testRunId: string;
  readonly teardown: () => Promise<void>;
}

/** Shared by the projects' setups, which vitest loads as separate module instances in one process. */
const shared = globalThis as typeof globalThis & { stewardTestRun?: Promise<Run>; stewardTestRunUsers?: number };

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  shared.stewardTestRunUsers = (shared.stewardTestRunUsers ?? 0) + 1;
  shared.stewardTestRun ??= startRun();
  const run = await shared.stewardTestRun;
  project.provide('temporalAddress', run.temporalAddress);
  project.provide('temporalNamespace', run.temporalNamespace);
  project.provide('codecKeyFile', run.codecKeyFile);
  project.provide('workflowBundlePath', run.workflowBundlePath);
  project.provide('testRunId', run.testRunId);
  return async () => {
    shared.stewardTestRunUsers = (shared.stewardTestRunUsers ?? 1) - 1;
    if (shared.stewardTestRunUsers === 0) await run.teardown();
  };
}

async function startRun(): Promise<Run> {
  const testRunId = randomBytes(4).toString('hex');
  (globalThis as { stewardTestRunId?: string }).stewardTestRunId = testRunId; // for the durations reporter
  mkdirSync(resolve('.steward'), { recursive: true });
  // The tests choose their Temporal settings themselves: none of this machine's (TEMPORAL_* variables, a profile in
  // the user's temporal.toml) may reach a CLI or worker they start.
  for (const k of Object.keys(process.env)) {
    if (k.startsWith('TEMPORAL_') || ['STEWARD_ADDRESS', 'STEWARD_NAMESPACE', 'STEWARD_METRICS_ADDRESS'].includes(k))
      delete process.env[k];
  }
  writeFileSync(resolve('.steward/temporal-none.toml'), '# the tests: an empty default profile\n[profile.default]\n');
  process.env.TEMPORAL_CONFIG_FILE = resolve('.steward/temporal-none.toml');
  process.env.STEWARD_TEST_OWNER_PID ??= String(process.pid);
  const orphans = await removeOrphanedSimulators().catch(() => [] as string[]); // no engine: nothing to reap
  if (orphans.length > 0) console.log(`removed ${orphans.length} simulators a killed run left: ${orphans.join(', ')}`);
  if (!process.env[KEYS_ENV] && !process.env[KEY_FILE_ENV]) {
    process.env[KEY_FILE_ENV] = (await ensureKeyFile('.steward/test-codec.keys')).file;
  }
  const namespace = process.env.STEWARD_TEST_TEMPORAL_NAMESPACE || 'default';
  const [server, workflowBundlePath] = await Promise.all([startServer(namespace), bundle(testRunId)]);
  goldenRunReady({ runId: testRunId, address: server.address, namespace, bundlePath: workflowBundlePath });
  return {
    temporalAddress: server.address,
    temporalNamespace: namespace,
    codecKeyFile: process.env[KEY_FILE_ENV],
    workflowBundlePath,
    testRunId,
    async teardown() {
      await goldenPrebuildSettled();
      try {
        await saveHistoriesWhenAsked(server.address, namespace);
      } finally {
        await server.stop();
        rmSync(workflowBundlePath, { force: true });
        await removeGoldenImages(testRunId);
      }
    },
  };
}

/** With STEWARD_RECORD_HISTORIES=<dir>: the run's workflow histories become replay fixtures (history-recording.ts). */
async function saveHistoriesWhenAsked(address: string, namespace: string): Promise<void> {
  const dir = process.env.STEWARD_RECORD_HISTORIES;
  if (!dir) return;
  const keys = await keyRingFromEnv();
  if (!keys) throw new Error('STEWARD_RECORD_HISTORIES: no codec keys to decrypt the histories with');
  const { saveRunHistories } = await import('./history-recording'); // loads the worker: only when recording
  const missing = await saveRunHistories(address, namespace, resolve(dir), keys);
  if (missing.length > 0) console.log(`no run recorded of: ${missing.join(', ')}`);
}

async function startServer(namespace: string): Promise<{ address: string; stop(): Promise<void> }> {
  const existing = process.env.STEWARD_TEST_TEMPORAL_ADDRESS;
  if (existing) {
    const connection = await Connection.connect({ address: existing });
    try {
      await ensureSearchAttributes(connection, namespace);
    } finally {
      await connection.close();
    }
    return { address: existing, stop: async () => {} };
  }
  await ensureTemporalBinary(); // builds the CLI once per machine; without Go the SDK downloads the server
  const started = Date.now();
  const server = await startDevServer({
    port: await findFreePort(),
    namespace,
    logFile: '.steward/temporal-test-server.log',
  });
  console.log(`Temporal dev server ${server.address} (pid ${server.pid}) ready in ${Date.now() - started} ms`);
  return { address: server.address, stop: () => stopProcess(server.pid) };
}

async function bundle(runId: string): Promise<string> {
  const started = Date.now();
  const path = resolve(`.steward/test-workflows-${runId}.js`);
  await writeWorkflowBundle(path, (await bundleInChild()).code);
  console.log(`workflow bundle ${path} ready in ${Date.now() - started} ms`);
  return path;
}
