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

/** A `steward` run still going: its output so far, a wait for a line of it, and its end. */
export interface LiveCli {
  readonly stdout: () => string;
  /** The first match of `pattern` in stdout, once it appears. @throws when the process ends or `timeoutMs` passes first. */
  waitFor(pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  readonly done: Promise<CliResult>;
}

/** `steward <args>` as {@link steward} runs it, followed while it runs (a command that waits for someone else). */
export function stewardLive(args: readonly string[], env: NodeJS.ProcessEnv = {}): LiveCli {
  let stdout = '';
  let ended = false;
  const done = new Promise<CliResult>((resolve, reject) => {
    const child = spawn(process.execPath, [STEWARD_BIN, ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      ended = true;
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
  return {
    stdout: () => stdout,
    done,
    async waitFor(pattern, timeoutMs = 120_000) {
      for (const deadline = Date.now() + timeoutMs; ;) {
        const m = stdout.match(pattern);
        if (m) return m;
        if (ended) throw new Error(`steward ended without printing ${pattern}:\n${stdout}`);
        if (Date.now() > deadline)
          throw new Error(`steward did not print ${pattern} within ${timeoutMs} ms:\n${stdout}`);
        await new Promise((r) => setTimeout(r, 250));
      }
    },
  };
}
