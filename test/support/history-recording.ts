/**
 * Recording histories of runs started on old workflow code, which today's workflows must replay
 * (test/unit/*-histories/record.ts): the old code bundled as a worker loads it, beside this tree's, on a dev server
 * of the recorder's own.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { bundleWorkflowCode, DefaultLogger, NativeConnection, Runtime } from '@temporalio/worker';
import { findFreePort, startDevServer, stopProcess } from '../../client/dev/temporal';
import { buildWorkflowBundle } from '../../workers/bundle';
import { AesGcmPayloadCodec, isEncrypted } from '../../codec/aes-gcm';
import type { KeyRing } from '../../codec/keys';
import type { Payload } from '@temporalio/common';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** `workflows/` and the model (`spec/` before it was renamed `model/`) at `commit`, bundled. */
export async function legacyWorkflowBundle(commit: string): Promise<{ code: string }> {
  // Under the tree, so webpack finds node_modules; .steward/ is ignored by git.
  const dir = join(ROOT, '.steward', `legacy-workflows-${commit}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const folders = execFileSync('git', ['ls-tree', '--name-only', commit], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    .filter((f) => ['workflows', 'spec', 'model'].includes(f));
  execFileSync('sh', ['-c', `git archive "$0" "$@" | tar -x -C "${dir}"`, commit, ...folders], { cwd: ROOT });
  try {
    return await bundleWorkflowCode({
      workflowsPath: join(dir, 'workflows/index.ts'),
      workflowInterceptorModules: [join(dir, 'workflows/interceptors.ts')],
      logger: new DefaultLogger('WARN'),
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface Recording {
  /** The workflow code at the legacy commit, and this tree's. */
  readonly legacy: { code: string };
  readonly current: { code: string };
  readonly connection: NativeConnection;
  readonly client: Client;
  /** Writes a run's history to `dir/name` as binary protobuf (temporal.api.history.v1.History). */
  save(name: string, workflowId: string): Promise<void>;
}

/** Runs `body` against a fresh dev server with both bundles, then stops the server. */
export async function recordHistories(
  legacyCommit: string,
  dir: string,
  body: (r: Recording) => Promise<void>,
): Promise<void> {
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const server = await startDevServer({ port: await findFreePort() });
  try {
    const [legacy, current] = await Promise.all([legacyWorkflowBundle(legacyCommit), buildWorkflowBundle()]);
    const connection = await NativeConnection.connect({ address: server.address });
    const client = new Client({ connection: await Connection.connect({ address: server.address }) });
    const save = async (name: string, workflowId: string) => {
      const history = await client.workflow.getHandle(workflowId).fetchHistory();
      writeFileSync(join(dir, name), proto.temporal.api.history.v1.History.encode(history).finish());
      console.log(`wrote ${name}: ${history.events?.length} events`);
    };
    try {
      await body({ legacy, current: { code: current }, connection, client, save });
    } finally {
      await connection.close();
      await client.connection.close();
    }
  } finally {
    await stopProcess(server.pid);
  }
}

/** Every workflow type the steward worker registers (workflows/index.ts), which the replay fixtures must cover. */
export async function stewardWorkflowTypes(): Promise<string[]> {
  const workflows: Record<string, unknown> = await import('../../workflows/index');
  return Object.entries(workflows)
    .filter(([, v]) => typeof v === 'function')
    .map(([name]) => name)
    .sort();
}

/** Replaces, in place, every encrypted payload anywhere in `node` with its plaintext. */
async function decryptPayloads(node: unknown, codec: AesGcmPayloadCodec): Promise<void> {
  if (!node || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) {
      const item: unknown = node[i];
      if (isPayload(item) && isEncrypted(item)) node[i] = (await codec.decode([item]))[0];
      else await decryptPayloads(item, codec);
    }
    return;
  }
  const record = node as Record<string, unknown>;
  for (const [key, value] of Object.entries(record)) {
    if (isPayload(value) && isEncrypted(value)) record[key] = (await codec.decode([value]))[0];
    else await decryptPayloads(value, codec);
  }
}

function isPayload(v: unknown): v is Payload {
  return !!v && typeof v === 'object' && 'metadata' in v && 'data' in v && !!(v as Payload).metadata;
}

/**
 * Saves, for every steward workflow type, the longest completed run and the longest failed run on the server (when
 * there are such) as `<type>.<status>.binpb`, payloads decrypted so that they replay without the key. Called by the
 * test run's global setup when STEWARD_RECORD_HISTORIES names a directory: the integration suite's runs against the
 * simulators are the recordings (test/unit/replay.test.ts says how to re-record).
 * @returns the workflow types no run was found for.
 */
export async function saveRunHistories(
  address: string,
  namespace: string,
  dir: string,
  keys: KeyRing,
): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const codec = new AesGcmPayloadCodec(keys, { readPlaintext: true });
  const connection = await Connection.connect({ address });
  // Listing decodes each run's memo: the client needs the key too.
  const client = new Client({ connection, namespace, dataConverter: { payloadCodecs: [codec] } });
  const missing: string[] = [];
  try {
    for (const type of await stewardWorkflowTypes()) {
      let saved = 0;
      for (const status of ['Completed', 'Failed'] as const) {
        let longest: { workflowId: string; runId: string; length: number } | undefined;
        for await (const run of client.workflow.list({
          query: `WorkflowType = '${type}' AND ExecutionStatus = '${status}'`,
        })) {
          if (!longest || run.historyLength > longest.length)
            longest = { workflowId: run.workflowId, runId: run.runId, length: run.historyLength };
        }
        if (!longest) continue;
        const history = await client.workflow.getHandle(longest.workflowId, longest.runId).fetchHistory();
        await decryptPayloads(history, codec);
        const name = `${type}.${status.toLowerCase()}.binpb`;
        writeFileSync(join(dir, name), proto.temporal.api.history.v1.History.encode(history).finish());
        console.log(`wrote ${name}: ${history.events?.length} events (${longest.workflowId})`);
        saved++;
      }
      if (saved === 0) missing.push(type);
    }
  } finally {
    await connection.close();
  }
  return missing;
}
