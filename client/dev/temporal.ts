/**
 * A local Temporal dev server for development and tests: find the `temporal` CLI, start the server on 127.0.0.1,
 * register steward's search attributes, and stop it again by PID.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { processAlive } from '../../common/process';
import { accessSync, closeSync, constants, mkdirSync, openSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { delimiter, dirname, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
import { ensureSearchAttributes } from '../../common/search-attributes';
import { stewardSearchAttributes } from '../../model/search-attributes';

const projectRoot = fileURLToPath(new URL('../..', import.meta.url));
const ensureScript = join(projectRoot, 'scripts/ensure-temporal.sh');
const hostScript = fileURLToPath(new URL('./temporal-host.ts', import.meta.url));

const DEFAULT_READY_TIMEOUT_MS = 120_000; // the SDK fallback may download the server first
const DEFAULT_STOP_TIMEOUT_MS = 15_000;
const POLL_INTERVAL_MS = 200;
const LOG_TAIL_LINES = 40;

/** The type names `temporal server start-dev --search-attribute Name=Type` accepts. */
const cliTypeName: Record<SearchAttributeType, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

/** The dev server did not start, did not answer in time, or has search attributes of the wrong type. */
export class DevServerError extends Error {
  override readonly name = 'DevServerError';
  constructor(
    message: string,
    readonly logFile?: string,
  ) {
    super(message);
  }
}

/** Where `scripts/ensure-temporal.sh` builds and caches the CLI. */
export function temporalCachePath(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), '.cache'), 'steward/bin/temporal');
}

/**
 * Finds a `temporal` CLI without building one: `$STEWARD_TEMPORAL_BIN`, then `temporal` on PATH, then the steward
 * cache ({@link temporalCachePath}). Returns an absolute path, or undefined when there is none. Read-only.
 */
export function resolveTemporalBinary(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const candidates = [
    env.STEWARD_TEMPORAL_BIN,
    ...(env.PATH ?? '').split(delimiter).map((dir) => dir && join(dir, 'temporal')),
    temporalCachePath(env),
  ];
  const found = candidates.find((path) => path && isExecutableFile(path));
  return found ? realpathSync(found) : undefined;
}

/**
 * Like {@link resolveTemporalBinary}, but builds the CLI into the steward cache when Go is available (minutes, once
 * per machine) by running `scripts/ensure-temporal.sh`; its log goes to this process's stderr. Resolves to undefined
 * when there is neither a CLI nor Go: {@link startDevServer} then lets the SDK download the server.
 * Throws if the script itself fails. Safe to call repeatedly and concurrently.
 */
export async function ensureTemporalBinary(): Promise<string | undefined> {
  const child = spawn('bash', [ensureScript], { stdio: ['ignore', 'pipe', 'inherit'] });
  let stdout = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  const code = await new Promise<number | null>((done, fail) => child.once('error', fail).once('close', done));
  if (code !== 0) throw new DevServerError(`${ensureScript} exited with code ${code}`);
  return stdout.trim().split('\n').pop() || undefined;
}

/** Options for {@link startDevServer}. Paths may be relative to the current directory. */
export interface DevServerOptions {
  /** gRPC frontend port on 127.0.0.1. */
  port: number;
  /** Serve the Web UI on this port; headless when absent. */
  uiPort?: number;
  /** The UI decodes payloads through this codec server (`--ui-codec-endpoint`), e.g. `http://127.0.0.1:8234`. */
  uiCodecEndpoint?: string;
  /** SQLite file that keeps workflows across restarts; in memory when absent. */
  dbFile?: string;
  /** Namespace to create and wait for (default `default`). */
  namespace?: string;
  /** Run in its own process group and outlive this process; stop it later with {@link stopProcess}. */
  detached?: boolean;
  /** Where the server's output goes (appended; default `steward-temporal-<port>.log` in the OS temp dir). */
  logFile?: string;
  /** How long to wait for the frontend to answer (default 2 minutes). */
  readyTimeoutMs?: number;
}

/** A running dev server. */
export interface DevServer {
  /** The process to pass to {@link stopProcess}. */
  pid: number;
  /** `127.0.0.1:<port>`, for `Connection.connect({ address })`. */
  address: string;
  /** The Web UI, when started with `uiPort`. */
  uiUrl?: string;
  /** Absolute path of the server's log. */
  logFile: string;
}

/**
 * Starts `temporal server start-dev` on 127.0.0.1 with steward's search attributes registered, and resolves once
 * the frontend answers for the namespace. Without a CLI ({@link resolveTemporalBinary}) it runs
 * `client/dev/temporal-host.ts`, which keeps an SDK-managed (downloaded) dev server alive until SIGTERM.
 * A non-detached server is a plain child: it keeps this process running until stopped, and gets SIGTERM when this
 * process exits normally. Throws {@link DevServerError} (with the log's tail) when a port is taken, the server exits
 * early, or it does not answer in time; a server that never became ready is stopped (one that lost a port it chose
 * itself to another process is started again, at most three times). Not idempotent: each call starts a new server.
 */
export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  // The server picks its HTTP API and metrics ports itself, free when it looks and bound a moment later: another
  // process starting at the same time can take one first. Only such a port is worth another start; a taken
  // `port` or `uiPort` is the caller's to change.
  const ownPort = (m: string) => [opts.port, opts.uiPort].some((p) => p !== undefined && m.includes(`:${p}: bind:`));
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(opts);
    } catch (err) {
      const m = err instanceof DevServerError ? err.message : '';
      if (attempt >= 3 || !m.includes('bind: address already in use') || ownPort(m)) throw err;
    }
  }
}

async function startOnce(opts: DevServerOptions): Promise<DevServer> {
  const { port, uiPort, uiCodecEndpoint, namespace = 'default', detached = false } = opts;
  const address = `127.0.0.1:${port}`;
  const dbFile = opts.dbFile && resolve(opts.dbFile);
  const logFile = resolve(opts.logFile ?? join(tmpdir(), `steward-temporal-${port}.log`));
  for (const p of uiPort === undefined ? [port] : [port, uiPort]) {
    if (!(await isPortFree(p))) throw new DevServerError(`127.0.0.1:${p} is already in use`);
  }

  const binary = resolveTemporalBinary();
  const [command, args] = binary
    ? [binary, devServerArgs({ port, uiPort, uiCodecEndpoint, dbFile, namespace })]
    : [
        process.execPath,
        ['--import', 'tsx', hostScript, JSON.stringify({ port, uiPort, uiCodecEndpoint, dbFile, namespace })],
      ];
  if (dbFile) mkdirSync(dirname(dbFile), { recursive: true });
  mkdirSync(dirname(logFile), { recursive: true });
  const logStart = fileSize(logFile);
  const out = openSync(logFile, 'a');
  const env = { ...process.env, TEMPORAL_VERSION_CHECK_DISABLED: '1' }; // no calls home, on either path
  const child = spawn(command, args, { cwd: projectRoot, env, detached, stdio: ['ignore', out, out] });
  closeSync(out);

  let exited: string | undefined;
  child.once('exit', (code, sig) => (exited = sig ? `was killed by ${sig}` : `exited with code ${code}`));
  child.once('error', (err) => (exited = `could not start: ${err.message}`));
  const fail = (why: string) =>
    new DevServerError(
      `Temporal dev server on ${address} ${why} (${command} ${args.join(' ')}); log ${logFile}:\n` +
        logTail(logFile, logStart),
      logFile,
    );
  if (child.pid === undefined) {
    await new Promise((done) => setImmediate(done)); // let 'error' say why
    throw fail(exited ?? 'could not start');
  }
  const pid = child.pid;
  if (detached) child.unref();
  else stopOnExit(child, pid);

  const deadline = Date.now() + (opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS);
  while (!(await isServerUp(address, namespace))) {
    if (exited) throw fail(exited);
    if (Date.now() > deadline) {
      await stopProcess(pid);
      throw fail(`did not answer within ${opts.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS} ms`);
    }
    await sleep(POLL_INTERVAL_MS);
  }
  // start-dev registers search attributes only in a new database; this covers one made by an older steward.
  try {
    const connection = await Connection.connect({ address });
    await ensureSearchAttributes(connection, namespace).finally(() => connection.close());
  } catch (err) {
    await stopProcess(pid);
    throw err;
  }
  return { pid, address, logFile, ...(uiPort === undefined ? {} : { uiUrl: `http://127.0.0.1:${uiPort}` }) };
}

function devServerArgs(o: {
  port: number;
  uiPort?: number;
  uiCodecEndpoint?: string;
  dbFile?: string;
  namespace: string;
}): string[] {
  return [
    ...['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(o.port)],
    ...(o.uiPort === undefined ? ['--headless'] : ['--ui-port', String(o.uiPort)]),
    ...(o.uiPort !== undefined && o.uiCodecEndpoint ? ['--ui-codec-endpoint', o.uiCodecEndpoint] : []),
    ...(o.dbFile ? ['--db-filename', o.dbFile] : []),
    ...['--namespace', o.namespace, '--log-level', 'warn'],
    // The frontend otherwise reports to and polls temporal.io for new versions; steward talks only to 127.0.0.1.
    ...['--dynamic-config-value', 'frontend.enableServerVersionCheck=false'],
    ...stewardSearchAttributes.flatMap((key) => ['--search-attribute', `${key.name}=${cliTypeName[key.type]}`]),
  ];
}

/**
 * Whether a Temporal frontend at `address` answers and knows `namespace` (default `default`). Never throws.
 */
export async function isServerUp(address: string, namespace = 'default'): Promise<boolean> {
  if (!(await acceptsTcp(address))) return false; // a refused gRPC connect would take the whole connectTimeout
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: '2s' });
    await connection.workflowService.describeNamespace({ namespace });
    return true;
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

/**
 * Stops a process started by {@link startDevServer}: SIGTERM to its process group when it leads one (detached),
 * else to the process; SIGKILL if it is still alive after `timeoutMs`. Resolves once it is gone; a PID that is
 * already gone is fine, so this is safe to repeat.
 */
export async function stopProcess(pid: number, timeoutMs = DEFAULT_STOP_TIMEOUT_MS): Promise<void> {
  attachedPids.delete(pid);
  signal(pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (processAlive(pid)) {
    if (Date.now() > deadline) {
      signal(pid, 'SIGKILL');
      await sleep(POLL_INTERVAL_MS);
      if (processAlive(pid)) throw new DevServerError(`process ${pid} survived SIGKILL`);
      return;
    }
    await sleep(POLL_INTERVAL_MS / 2);
  }
}

/** Finds a TCP port on 127.0.0.1 that is free right now. */
export async function findFreePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((done, fail) => server.once('error', fail).listen(0, '127.0.0.1', done));
  const { port } = server.address() as { port: number };
  await new Promise((done) => server.close(done));
  return port;
}

function acceptsTcp(address: string): Promise<boolean> {
  const colon = address.lastIndexOf(':');
  const host = address.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  return new Promise((done) => {
    const socket = connect({ host, port: Number(address.slice(colon + 1)), timeout: 2_000 });
    const finish = (ok: boolean) => {
      socket.destroy();
      done(ok);
    };
    socket
      .once('connect', () => finish(true))
      .once('timeout', () => finish(false))
      .once('error', () => finish(false));
  });
}

async function isPortFree(port: number): Promise<boolean> {
  const server = createServer();
  const free = await new Promise<boolean>((done) =>
    server.once('error', () => done(false)).listen(port, '127.0.0.1', () => done(true)),
  );
  if (free) await new Promise((done) => server.close(done));
  return free;
}

/** Non-detached servers die with this process, as children should. */
const attachedPids = new Set<number>();
function stopOnExit(child: ChildProcess, pid: number): void {
  if (attachedPids.size === 0) {
    process.once('exit', () => attachedPids.forEach((p) => signal(p, 'SIGTERM')));
  }
  attachedPids.add(pid);
  child.once('exit', () => attachedPids.delete(pid));
}

function signal(pid: number, name: NodeJS.Signals): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, name);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
}

function isExecutableFile(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

function logTail(path: string, from: number): string {
  try {
    const lines = readFileSync(path).subarray(from).toString('utf8').trimEnd().split('\n');
    return lines.slice(-LOG_TAIL_LINES).join('\n') || '(empty)';
  } catch {
    return '(no log)';
  }
}
