/** What `steward dev up` started, kept next to the spec in `.steward/dev/state.json` so `dev down` stops only that. */
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
