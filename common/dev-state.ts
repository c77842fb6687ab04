/** What `steward dev up` started, kept next to the spec in `.steward/dev/state.json` so `dev down` stops only that. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { processAlive } from './process';

export interface DevState {
  temporal?: { pid?: number; address: string; uiUrl?: string; logFile?: string; dbFile?: string };
  worker?: { pid: number; logFile: string };
  /**
   * Payload encryption: the dev key file (absent when the keys come from the environment) and the codec server that
   * the Web UI decodes through.
   */
  codec?: { keyFile?: string; tokenFile: string; pid?: number; url: string; logFile?: string };
  vps?: { container: string; host: string; port: number };
}

export function devDir(specPath: string): string {
  return join(dirname(resolve(specPath)), '.steward', 'dev');
}

/**
 * The environment `steward dev` resolves its Temporal target in, and gives the processes it starts: the local dev
 * server in plaintext, whatever the operator's shell holds for a production Temporal (TEMPORAL_* variables, a
 * default profile with TLS or an API key). Those variables are dropped; the profile file is an empty one in the dev
 * directory.
 */
export function localTemporalEnv(env: NodeJS.ProcessEnv, specPath: string): NodeJS.ProcessEnv {
  const dir = devDir(specPath);
  const file = join(dir, 'temporal-local.toml');
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    file,
    '# steward dev: the local dev server, in plaintext (an empty default profile)\n[profile.default]\n',
  );
  const kept = Object.fromEntries(Object.entries(env).filter(([k]) => !k.startsWith('TEMPORAL_')));
  return { ...kept, TEMPORAL_CONFIG_FILE: file };
}

export async function readDevState(specPath: string): Promise<DevState> {
  try {
    return JSON.parse(await readFile(join(devDir(specPath), 'state.json'), 'utf8')) as DevState;
  } catch {
    return {};
  }
}

export async function writeDevState(specPath: string, state: DevState): Promise<void> {
  await mkdir(devDir(specPath), { recursive: true });
  await writeFile(join(devDir(specPath), 'state.json'), `${JSON.stringify(state, null, 2)}\n`);
}

/** Whether a process we recorded is still running. */
export function isAlive(pid: number | undefined): pid is number {
  return pid !== undefined && pid > 0 && processAlive(pid);
}
