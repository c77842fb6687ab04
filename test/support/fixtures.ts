/** Test fixtures: a key pair made at run time, specs for simulators, an in-process worker. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { stringify } from 'yaml';
import type { Simulator } from '../../client/dev/simulator';
import type { SpecInput } from '../../spec/schema';
import { createWorker } from '../../workers/worker';
import { workflowBundle, type TestEnv } from './temporal';

export interface KeyPair {
  readonly dir: string;
  readonly privateKeyPath: string;
  readonly publicKey: string;
}

/** An ed25519 key pair in a fresh temp dir. */
export function makeKeyPair(): KeyPair {
  const dir = mkdtempSync(join(tmpdir(), 'steward-test-'));
  const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'steward-test' });
  const privateKeyPath = join(dir, 'id_ed25519');
  writeFileSync(privateKeyPath, pair.private, { mode: 0o600 });
  return { dir, privateKeyPath, publicKey: pair.public };
}

/** A spec for the given simulators (host keys pinned out of band), merged with `extra`, written to a file. */
export function writeSpec(
  keys: KeyPair,
  sims: readonly Simulator[],
  extra: Partial<SpecInput> = {},
  name = 'steward.yaml',
): string {
  const spec: SpecInput = {
    version: 1,
    hosts: sims.map((s) => ({
      name: s.name.replace(/^steward-vps-/, ''),
      address: s.address,
      port: s.port,
      user: s.user,
      identityFile: keys.privateKeyPath,
      hostKey: s.hostKey,
    })),
    ...extra,
  };
  const path = join(keys.dir, name);
  writeFileSync(path, stringify(spec));
  return path;
}

/** Host name in the spec for a simulator. */
export function hostName(sim: Simulator): string {
  return sim.name.replace(/^steward-vps-/, '');
}

/** Runs steward's worker in this process on `taskQueue` until `stop()`. */
export async function startWorker(env: TestEnv, taskQueue: string): Promise<{ stop(): Promise<void> }> {
  const { worker, pool, connection } = await createWorker({
    address: env.address,
    namespace: env.namespace,
    taskQueue,
    workflowBundle: await workflowBundle(),
  });
  const running = worker.run();
  return {
    async stop() {
      worker.shutdown();
      await running;
      await pool.closeAll();
      await connection.close();
    },
  };
}
