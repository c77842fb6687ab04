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
