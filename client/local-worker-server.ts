/**
 * The worker's side of client/local-worker.ts: `steward worker` listens on its socket and runs the operation
 * commands of this user's CLIs with a Temporal client it keeps connected. A request is checked whole before anything
 * runs (the protocol, the build, the key ring, the server, the shape of the command); what it may ask is exactly what
 * the CLI could do by itself, with the CLI's spec file, options and user.
 */
import { mkdirSync, unlinkSync, lstatSync, chmodSync } from 'node:fs';
import { createServer, connect, type Server, type Socket } from 'node:net';
import { z } from 'zod';
import type { Connection } from '@temporalio/client';
import { type Client } from '@temporalio/client';
import { loadCodecKeys } from '../common/codec-keys';
import type { KeyRing } from '../codec/keys';
import { connectTemporal } from '../common/temporal-client';
import { clientOn } from './context';
import { failureExit } from './errors';
import type { GlobalOptions } from './globals';
import {
  checkPrivate,
  keyFingerprint,
  PROTOCOL,
  socketDir,
  socketPath,
  type LocalReply,
  type LocalRequest,
} from './local-worker';
import { runOperationCommand } from './operation-command';
import { CLI_BUILD } from './spec-cache';

/** The operations the CLI hands over, each with the one workflow type that runs it. */
const WORKFLOW_OF = {
  provision: 'provisionHost',
  harden: 'hardenHost',
  deploy: 'deployHost',
  converge: 'convergeHost',
  drift: 'driftHost',
  memory: 'memoryCheckHost',
  backup: 'backupHost',
  restore: 'restoreHost',
  drill: 'restoreHost',
  verify: 'verifyHost',
} as const;

const requestSchema = z.strictObject({
  v: z.literal(PROTOCOL),
  build: z.string(),
  keys: z.string(),
  globals: z.strictObject({
    spec: z.string().startsWith('/'),
    address: z.string(),
    namespace: z.string(),
    json: z.boolean(),
    wait: z.boolean(),
    taskQueue: z.string(),
  }),
  command: z
    .strictObject({
      operation: z.enum(Object.keys(WORKFLOW_OF) as [keyof typeof WORKFLOW_OF]),
      workflowType: z.string(),
      hosts: z.array(z.string()),
      mode: z.enum(['apply', 'plan']),
      concurrency: z.string(),
      extra: z.record(z.string(), z.json()).optional(),
      uiUrl: z.string().optional(),
      waves: z.string().max(200).optional(),
      bake: z.string().max(20).optional(),
      verifyWaves: z.boolean().optional(),
      requireApproval: z.boolean().optional(),
      approvalWindow: z.string().max(20).optional(),
    })
    .refine((c) => WORKFLOW_OF[c.operation] === c.workflowType, { message: 'workflow type does not match' }),
  user: z.string().regex(/^[A-Za-z0-9._@-]{1,200}$/),
  quiet: z.boolean(),
});

/** The request, or why it is declined. */
export function checkRequest(
  raw: unknown,
  own: { readonly build: string; readonly keys: string; readonly g: GlobalOptions },
): { request: LocalRequest } | { declined: string } {
  const parsed = requestSchema.safeParse(raw);
  if (!parsed.success) return { declined: `not a request: ${parsed.error.issues[0]?.message ?? 'invalid'}` };
  const request = parsed.data as LocalRequest;
  if (request.build !== own.build) return { declined: 'another steward build' };
  if (request.keys !== own.keys) return { declined: 'other codec keys' };
  const g = request.globals;
  if (g.address !== own.g.address || g.namespace !== own.g.namespace || g.taskQueue !== own.g.taskQueue) {
    return { declined: 'another server, namespace or task queue' };
  }
  return { request };
}

export interface LocalWorkerServer {
  readonly path: string;
  close(): Promise<void>;
}

/**
 * Listens on the socket for `g`'s server, namespace and task queue, unless this is not a compiled build, the socket
 * directory is not private, or another live worker listens there already (each said on stderr, not an error: the
 * CLI then connects itself).
 */
export async function serveLocalWorker(g: GlobalOptions, log = console.error): Promise<LocalWorkerServer | undefined> {
  if (!CLI_BUILD) return undefined;
  const build = CLI_BUILD;
  const where = socketDir();
  if ('unsafe' in where) {
    log(`steward worker: not serving local CLIs: ${where.unsafe}`);
    return undefined;
  }
  try {
    mkdirSync(where.dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    log(`steward worker: not serving local CLIs: ${where.dir}: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
  const unsafe = checkPrivate(where.dir, process.getuid?.() ?? 0);
  if (unsafe) {
    log(`steward worker: not serving local CLIs: ${unsafe.unsafe}`);
    return undefined;
  }
  const path = socketPath(where.dir, g);
  if (await listening(path)) {
    log(`steward worker: another worker serves local CLIs at ${path}`);
    return undefined;
  }
  removeStale(path);

  const keys: KeyRing = await loadCodecKeys(g);
  const own = { build, keys: keyFingerprint(keys), g };
  // Connected now, so that the first command finds the client ready; a failed connection is tried again when asked.
  let connection: Promise<Connection> | undefined;
  const connected = (): Promise<Connection> => {
    connection ??= connectTemporal(g.temporal);
    return connection.catch((err: unknown) => {
      connection = undefined;
      throw err;
    });
  };
  connected().catch(() => undefined);
  const clients = new Map<string, Client>();
  const clientFor = async (user: string): Promise<Client> => {
    const conn = await connected();
    let client = clients.get(user);
    if (!client) clients.set(user, (client = clientOn(conn, g.namespace, keys, user)));
    return client;
  };

  // Each CLI being served, to be told when the worker stops (a listener closes only once its connections have).
  const serving = new Set<Socket>();
  const server: Server = createServer((socket) => {
    serving.add(socket);
    socket.on('close', () => serving.delete(socket));
    serve(socket, own, clientFor, log);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => resolve());
    });
  } catch (err) {
    log(`steward worker: not serving local CLIs: ${path}: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
  let ino: number;
  try {
    chmodSync(path, 0o600);
    ino = lstatSync(path).ino;
  } catch (err) {
    server.close();
    log(`steward worker: not serving local CLIs: ${path}: ${err instanceof Error ? err.message : String(err)}`);
    return undefined;
  }
  return {
    path,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const stopping: LocalReply = {
        exit: 1,
        error: 'the local worker is stopping; the run goes on: see `steward status` or the UI',
      };
      for (const socket of serving) socket.end(`${JSON.stringify(stopping)}\n`, () => socket.destroy());
      await closed;
      try {
        if (lstatSync(path).ino === ino) unlinkSync(path);
      } catch {
        // gone already
      }
      if (connection) await (await connection.catch(() => undefined))?.close();
    },
  };
}

function serve(
  socket: Socket,
  own: { readonly build: string; readonly keys: string; readonly g: GlobalOptions },
  clientFor: (user: string) => Promise<Client>,
  log: (line: string) => void,
): void {
  let open = true;
  socket.on('close', () => (open = false));
  socket.on('error', () => (open = false));
  const send = (reply: LocalReply) => {
    if (open) socket.write(`${JSON.stringify(reply)}\n`);
  };
  let buffered = '';
  let request: LocalRequest | undefined;
  let started = false;
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    if (started) return;
    buffered += chunk;
    if (buffered.length > 1 << 20) return void socket.destroy();
    const nl = buffered.indexOf('\n');
    if (nl < 0) return;
    const line = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    if (request) {
      // The CLI's go-ahead: it did not give up waiting. Anything else ends the exchange with nothing started.
      if (line !== '{"go":true}') return void socket.destroy();
      started = true;
      return start(request);
    }
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      send({ declined: 'not JSON' });
      return void socket.end();
    }
    const checked = checkRequest(raw, own);
    if ('declined' in checked) {
      log(`steward worker: declined a local CLI request: ${checked.declined}`);
      send(checked);
      return void socket.end();
    }
    request = checked.request;
    send({ accepted: true });
  });

  const start = (request: LocalRequest) => {
    const { command: cmd } = request;
    log(`steward worker: ${cmd.operation} ${cmd.hosts.join(' ') || '(every host)'} for ${request.user}`);
    const by = { user: request.user, quiet: request.quiet, print: (out: string) => send({ out }) };
    runOperationCommand(
      { ...request.globals, temporal: own.g.temporal },
      cmd,
      async (use) => use(await clientFor(request.user)),
      by,
    )
      .then(
        (exit) => send({ exit }),
        (err: unknown) => {
          const { code, message } = failureExit(err);
          send({ exit: code, error: message });
        },
      )
      .finally(() => socket.end());
  };
}

/** Whether a process accepts connections on `path`. */
function listening(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Removes a socket left by a worker that ended without closing it; anything else at the path is left alone. */
function removeStale(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // nothing there
  }
}
