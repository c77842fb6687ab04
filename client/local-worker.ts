/**
 * The CLI's short way to Temporal: a `steward worker` of the same build on this machine, for the same server,
 * namespace and task queue, runs a host operation on the CLI's behalf over a Unix socket, with the Temporal client it
 * keeps connected. The CLI then loads no Temporal SDK and opens no connection: about a third of a second of every
 * operation command, most of `steward drift`'s time on a converged host.
 *
 * The socket lives in a directory only this user can enter (`$XDG_RUNTIME_DIR/steward`, else
 * `$TMPDIR/steward-<uid>`, 0700, checked before every use), so only this user's processes reach it; a worker started
 * by another user, or holding other codec keys, is never used. The worker accepts a command only from a CLI of its
 * own build (the code that runs it is the code the operator invoked) and with the same key ring (the payloads are
 * what the CLI would have sent); it declines anything else, and the CLI then connects on its own. After the worker
 * accepts, the run is its: a lost socket ends the CLI with exit 1 and the run goes on, as when a CLI is interrupted.
 * `STEWARD_LOCAL_WORKER=0` makes the CLI always connect itself.
 *
 * One JSON document per line. CLI → worker: {@link LocalRequest}. Worker → CLI: `{"accepted":true}` or
 * `{"declined":"why"}`. CLI → worker: `{"go":true}`, sent only by a CLI that has not given up waiting — the worker
 * starts nothing before it, so a CLI that timed out and connected itself is never doubled by the worker. Then worker →
 * CLI: `{"out":"line"}`… and one `{"exit":n}` or `{"error":"message","exit":n}`.
 */
import { createHash } from 'node:crypto';
import { lstatSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { GlobalOptions } from './globals';
import type { OperationCommand } from './operation-command';
import { CLI_BUILD } from './spec-cache';
import { cliUser } from './user';

export const LOCAL_WORKER_ENV = 'STEWARD_LOCAL_WORKER';
export const PROTOCOL = 1;

/** The global options a CLI hands a local worker. */
export type WireGlobals = Pick<GlobalOptions, 'spec' | 'address' | 'namespace' | 'json' | 'wait' | 'taskQueue'>;

export interface LocalRequest {
  readonly v: typeof PROTOCOL;
  /** The CLI's build ({@link CLI_BUILD}). */
  readonly build: string;
  /** {@link keyFingerprint} of the CLI's codec keys. */
  readonly keys: string;
  /** The CLI's global options, the spec as an absolute path. */
  /** The CLI's options without its Temporal target: the worker connects with its own (no key crosses the socket). */
  readonly globals: WireGlobals;
  readonly command: OperationCommand;
  /** {@link cliUser} of the CLI: the run's trigger. */
  readonly user: string;
  /** The CLI's stdout is not a terminal: one line per finished step. */
  readonly quiet: boolean;
}

export type LocalReply =
  | { readonly accepted: true }
  | { readonly declined: string }
  | { readonly out: string }
  | { readonly exit: number; readonly error?: string };

/** The directory of the workers' sockets, or undefined (with why) when it is not this user's alone. */
export function socketDir(env: NodeJS.ProcessEnv = process.env): { dir: string } | { unsafe: string } {
  const runtime = env.XDG_RUNTIME_DIR;
  const uid = process.getuid?.() ?? 0;
  // $XDG_RUNTIME_DIR only when it is this user's and nobody else may write in it (after `su` it may be another's).
  const dir =
    runtime?.startsWith('/') && checkPrivate(runtime, uid, 0o022) === undefined && exists(runtime)
      ? join(runtime, 'steward')
      : join(tmpdir(), `steward-${uid}`);
  return { dir, ...checkPrivate(dir, uid) };
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Why `dir` is not a private directory of `uid` (undefined when it is, or does not exist yet): not a directory (a
 * symlink included), another owner, or a mode giving group or others any of `open` (default: all).
 */
export function checkPrivate(dir: string, uid: number, open = 0o077): { unsafe: string } | undefined {
  let st;
  try {
    st = lstatSync(dir);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : { unsafe: `${dir}: ${String(err)}` };
  }
  if (!st.isDirectory()) return { unsafe: `${dir} is not a directory` };
  if (st.uid !== uid) return { unsafe: `${dir} belongs to uid ${st.uid}, not ${uid}` };
  if ((st.mode & open) !== 0) return { unsafe: `${dir} has mode ${(st.mode & 0o777).toString(8)}` };
  return undefined;
}

/** The socket of the worker for this server, namespace and task queue. */
export function socketPath(dir: string, g: Pick<GlobalOptions, 'address' | 'namespace' | 'taskQueue'>): string {
  const name = createHash('sha256').update(`${g.address}\0${g.namespace}\0${g.taskQueue}`).digest('hex');
  return join(dir, `${name.slice(0, 20)}.sock`);
}

/** A digest of a key ring's ids and keys (one-way: a key cannot be had from it). */
export function keyFingerprint(keys: { readonly keys: readonly { id: string; key: Buffer }[] }): string {
  const h = createHash('sha256');
  for (const k of keys.keys) h.update(`${k.id}\0`).update(k.key).update('\0');
  return h.digest('hex');
}

/**
 * Runs `cmd` through the local worker and returns its exit code, or undefined when there is none to use (not
 * compiled, disabled, no socket, no key, declined): the caller then connects itself. Nothing has started then.
 */
export async function viaLocalWorker(g: GlobalOptions, cmd: OperationCommand): Promise<number | undefined> {
  if (!CLI_BUILD || process.env[LOCAL_WORKER_ENV] === '0') return undefined;
  const where = socketDir();
  if ('unsafe' in where) return undefined;
  const path = socketPath(where.dir, g);
  try {
    if (!lstatSync(path).isSocket()) return undefined;
  } catch {
    return undefined;
  }
  let keys: string;
  try {
    const { loadCodecKeys } = await import('../common/codec-keys');
    keys = keyFingerprint(await loadCodecKeys(g));
  } catch {
    return undefined; // connecting ourselves reports it
  }
  const request: LocalRequest = {
    v: PROTOCOL,
    build: CLI_BUILD,
    keys,
    globals: {
      spec: resolve(g.spec),
      address: g.address,
      namespace: g.namespace,
      json: g.json,
      wait: g.wait,
      taskQueue: g.taskQueue,
    },
    command: cmd,
    user: cliUser(),
    quiet: !process.stdout.isTTY,
  };
  return exchange(path, request);
}

/** How long the worker may take to accept or decline before the CLI connects on its own. */
const ACCEPT_TIMEOUT_MS = 5_000;

/** Sends `request` to the worker at `path` and prints what it answers; {@link viaLocalWorker}'s result. */
export function exchange(
  path: string,
  request: LocalRequest,
  acceptTimeoutMs = ACCEPT_TIMEOUT_MS,
): Promise<number | undefined> {
  return new Promise((settle) => {
    const socket: Socket = connect(path);
    let accepted = false;
    let done = false;
    const finish = (code: number | undefined) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      settle(code);
    };
    const timer = setTimeout(() => finish(undefined), acceptTimeoutMs);
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`));
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let reply: LocalReply;
        try {
          reply = JSON.parse(line) as LocalReply;
        } catch {
          reply = undefined as unknown as LocalReply;
        }
        if (typeof reply !== 'object' || reply === null) return finish(lost(accepted, 'an unreadable reply'));
        if ('accepted' in reply) {
          accepted = true;
          clearTimeout(timer);
          socket.write(`${JSON.stringify({ go: true })}\n`);
        } else if ('declined' in reply) {
          return finish(undefined);
        } else if ('out' in reply && typeof reply.out === 'string') {
          console.log(reply.out);
        } else if ('exit' in reply && typeof reply.exit === 'number') {
          if (reply.error !== undefined) console.error(`steward: ${reply.error}`);
          return finish(reply.exit);
        }
      }
    });
    socket.on('error', () => done || finish(lost(accepted, 'a socket error')));
    socket.on('close', () => done || finish(lost(accepted, 'the socket closing')));
  });
}

/** Before the worker accepted, nothing started: the CLI goes on by itself. After, the run is the worker's. */
function lost(accepted: boolean, what: string): number | undefined {
  if (!accepted) return undefined;
  console.error(
    `steward: lost the local worker (${what}) while it followed the run; the run goes on: see \`steward status\` or the UI`,
  );
  return 1;
}
