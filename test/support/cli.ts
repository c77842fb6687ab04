/** Runs the real `steward` CLI as a subprocess, the way operators do. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const STEWARD_BIN = fileURLToPath(new URL('../../bin/steward.js', import.meta.url));

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * `steward <args>` with this process's environment and `env` over it (a variable set to undefined is removed), in
 * `cwd` (default this process's).
 */
export function steward(args: readonly string[], env: NodeJS.ProcessEnv = {}, cwd?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [STEWARD_BIN, ...args], {
      env: { ...process.env, ...env },
      ...(cwd ? { cwd } : {}),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}
