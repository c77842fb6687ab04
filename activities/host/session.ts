/**
 * One SSH session per host, reused across activities in a worker: host-key pinning, first-login fallback,
 * non-interactive sudo, a timeout on every command, and batched probes that observe many things in one round trip.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { NodeSSH } from 'node-ssh';
import type { ClientChannel, ConnectConfig } from 'ssh2';
import ssh2 from 'ssh2';
import {
  AuthenticationFailed,
  CommandFailed,
  CommandTimedOut,
  ConnectionFailed,
  HostKeyMismatch,
  HostKeyNotPinned,
  KnownHostsUnavailable,
} from './errors';
import type { KnownHosts } from '../../common/known-hosts';
import { KeyedLimiter } from './limiter';
import { probeBatch, type ProbeResult } from './probe-framing';
import { sh } from './shell';

export type { ProbeResult } from './probe-framing';

/** Everything needed to reach a host; built from the spec by the workflow. */
export interface HostTarget {
  readonly name: string;
  readonly address: string;
  readonly port: number;
  /** First-login user (root or a cloud image's sudo user). */
  readonly loginUser: string;
  /** The user provision creates; preferred once it exists. */
  readonly opsUser: string;
  /** Absolute path of the private key; undefined → SSH agent. */
  readonly identityFile?: string;
  /** Pinned key line `ssh-ed25519 AAAA…`. */
  readonly hostKey?: string;
  /** Where the pinned key came from, for the error when the host presents another: the spec, or a known-hosts file. */
  readonly hostKeySource?: string;
  readonly trustOnFirstUse: boolean;
}

export interface ExecOptions {
  /** Run through `sudo -n` when not connected as root. Default true: steward manages system state. */
  readonly sudo?: boolean;
  /** Default 60 s. The remote side is wrapped in `timeout` too, so nothing outlives it on the host. */
  readonly timeoutMs?: number;
  readonly stdin?: string;
  /** Short description for errors and logs; defaults to the first word of the command. */
  readonly label?: string;
  /** Called with output chunks, e.g. to heartbeat during long installs. */
  readonly onOutput?: () => void;
}

export interface ExecResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number | null;
}

const DEFAULT_TIMEOUT_MS = 60_000;
/** steward's own spans; a no-op until the worker registers a tracer provider (workers/tracing.ts). */
const tracer = trace.getTracer('steward');
const CONNECT_TIMEOUT_MS = 15_000;

/** A connected SSH session to one host as one user. */
export class HostSession {
  constructor(
    readonly target: HostTarget,
    readonly user: string,
    /** The key the host presented, as an OpenSSH line. */
    readonly hostKey: string,
    private readonly ssh: NodeSSH,
  ) {}

  get connected(): boolean {
    return this.ssh.isConnected();
  }

  /**
   * Runs a shell script (given on stdin to `sh -s`, so it is never an argument) and returns its output.
   * Does not throw on a non-zero exit: callers decide.
   * @throws CommandTimedOut when the timeout passes; ConnectionFailed when the session drops.
   */
  async script(script: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const seconds = Math.ceil(timeoutMs / 1000);
    const command = this.command(['timeout', '-k', '5', String(seconds), 'sh', '-s'], opts.sudo ?? true);
    return this.exec(command, `${script}\n`, timeoutMs + 10_000, opts);
  }

  /**
   * Runs a script and throws unless it exits 0.
   * @throws CommandFailed with the exit code and stderr tail.
   */
  async check(script: string, opts: ExecOptions & { label: string }): Promise<ExecResult> {
    const result = await this.script(script, opts);
    if (result.code !== 0) throw new CommandFailed(this.target.name, opts.label, result.code, result.stderr);
    return result;
  }

  /**
   * Observes many things in one round trip. Each probe is a script fragment; its stdout and exit code come back
   * under its name. Probes run with `set +e`, so one failing does not hide the others: in order, or with `lanes`
   * that many side by side (only for probes that do not depend on one another).
   */
  async probe<K extends string>(
    probes: Record<K, string>,
    opts: ExecOptions & { lanes?: number } = {},
  ): Promise<Record<K, ProbeResult>> {
    const names = Object.keys(probes) as K[];
    const batch = probeBatch(
      names.map((n) => probes[n]),
      { lanes: opts.lanes ?? 1 },
    );
    const { stdout, code } = await this.script(batch.script, { label: 'observe', ...opts });
    const { results, missing } = batch.parse(stdout);
    if (missing.length > 0) {
      const which = missing.map((i) => names[i]).join(', ');
      throw new CommandFailed(this.target.name, `observe (${which})`, code, 'probe output incomplete');
    }
    return Object.fromEntries(names.map((n, i) => [n, results[i]!])) as Record<K, ProbeResult>;
  }

  /**
   * Writes a file atomically (temp file, checked by `validate` if given, then renamed over the path) with owner and
   * mode, creating missing parent directories. The content travels on stdin, never in a command line. In a directory
   * someone other than root may write under a root-only one (a container's volume under the install dir), the temp
   * file is made, owned and moded in a root-only staging directory beside it on the same filesystem, so nobody can
   * swap it for a symlink between those steps; the rename then replaces whatever the name held (a planted symlink
   * included) without following it, and refuses a directory there. (A user's own directory, such as the ops user's
   * `.ssh`, keeps the temp file beside the target: its owner holds sudo anyway.)
   * @throws CommandFailed when writing or validation fails; the old file is then untouched.
   */
  async writeFile(path: string, content: string, owner: string, mode: string, validate: string[] = []): Promise<void> {
    const script = [
      'set -eu',
      'p=$1 owner=$2 mode=$3',
      'shift 3',
      'd=$(dirname "$p")',
      'mkdir -p "$d"',
      'rootonly() { [ "$(stat -c %u "$1")" = 0 ] && [ -z "$(find "$1" -maxdepth 0 -perm /022)" ]; }',
      'u=$(dirname "$d")',
      'if ! rootonly "$d" && rootonly "$u" && install -d -m 0700 "$u/.steward-staging" &&',
      '  [ "$(stat -c %d "$u/.steward-staging")" = "$(stat -c %d "$d")" ]; then',
      '  t=$(mktemp "$u/.steward-staging/write.XXXXXX")',
      'else',
      '  t=$(mktemp "$p.steward.XXXXXX")',
      'fi',
      'trap \'rm -f "$t"\' EXIT',
      'cat > "$t"',
      'chown "$owner" "$t"',
      'chmod "$mode" "$t"',
      'if [ $# -gt 0 ]; then "$@" "$t"; fi',
      'mv -fT "$t" "$p"',
      'trap - EXIT',
    ].join('\n');
    const label = `write ${path}`;
    const command = this.command(['sh', '-c', script, 'sh', path, owner, mode, ...validate]);
    const result = await this.exec(command, content, DEFAULT_TIMEOUT_MS, { label });
    if (result.code !== 0) throw new CommandFailed(this.target.name, label, result.code, result.stderr);
  }

  /**
   * Opens a raw exec channel (a duplex stream) for protocols spoken over stdin/stdout, such as the Docker API
   * through `docker system dial-stdio`. The caller closes it.
   */
  channel(argv: readonly string[], sudo = true): Promise<ClientChannel> {
    const connection = this.ssh.connection;
    if (!connection) return Promise.reject(new ConnectionFailed(this.target.name, 'session is closed'));
    return new Promise((resolve, reject) => {
      connection.exec(this.command(argv, sudo), (err, channel) =>
        err ? reject(new ConnectionFailed(this.target.name, err.message)) : resolve(channel),
      );
    });
  }

  /** Quotes argv into a command line, behind `sudo -n` unless connected as root or told not to. */
  private command(argv: readonly string[], sudo = true): string {
    return sh(sudo && this.user !== 'root' ? ['sudo', '-n', '--', ...argv] : argv);
  }

  async close(): Promise<void> {
    this.ssh.dispose();
  }

  /**
   * Runs `command` in a span `ssh <label>` (a child of the activity's span when the worker traces, workers/tracing.ts)
   * carrying the host, the login user, the label and the exit code: never the command's text or its output.
   */
  private async exec(command: string, stdin: string, timeoutMs: number, opts: ExecOptions): Promise<ExecResult> {
    const label = opts.label ?? command.split(' ')[0] ?? 'command';
    const named = opts.label ?? 'command'; // an unlabelled command is named by no word of its text
    return tracer.startActiveSpan(
      `ssh ${named}`,
      {
        kind: SpanKind.CLIENT,
        attributes: { 'steward.host': this.target.name, 'steward.ssh.user': this.user, 'steward.command': named },
      },
      async (span) => {
        try {
          const result = await this.run(command, stdin, timeoutMs, opts, label);
          span.setAttribute('steward.exit_code', result.code ?? -1);
          return result;
        } catch (err) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.name : 'error' });
          throw err;
        } finally {
          span.end();
        }
      },
    );
  }

  private async run(
    command: string,
    stdin: string,
    timeoutMs: number,
    opts: ExecOptions,
    label: string,
  ): Promise<ExecResult> {
    let channel: ClientChannel | undefined;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        channel?.close();
        reject(new CommandTimedOut(this.target.name, label, timeoutMs));
      }, timeoutMs);
    });
    try {
      const running = this.ssh.execCommand(command, {
        stdin,
        noTrim: true,
        onChannel: (c) => (channel = c),
        ...(opts.onOutput ? { onStdout: opts.onOutput, onStderr: opts.onOutput } : {}),
      });
      const r = await Promise.race([running, timedOut]);
      return { stdout: r.stdout, stderr: r.stderr, code: r.code };
    } catch (err) {
      if (err instanceof CommandTimedOut) throw err;
      throw new ConnectionFailed(this.target.name, err instanceof Error ? err.message : String(err));
    } finally {
      clearTimeout(timer);
    }
  }
}

/** OpenSSH-style fingerprint of a key line or raw key blob: `SHA256:…`. */
export function fingerprint(key: string | Buffer): string {
  const blob = typeof key === 'string' ? Buffer.from(key.split(' ')[1] ?? '', 'base64') : key;
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** Converts the raw key blob ssh2 hands to hostVerifier into an OpenSSH line. */
function keyLine(blob: Buffer): string {
  const parsed = ssh2.utils.parseKey(blob);
  const type = parsed instanceof Error ? 'unknown' : (Array.isArray(parsed) ? parsed[0] : parsed)?.type;
  return `${type ?? 'unknown'} ${blob.toString('base64')}`;
}

/** The `serverHostKey` algorithms that make a host present the pinned key's type. */
function hostKeyAlgorithms(pinned: string): string[] {
  const type = pinned.split(' ')[0] ?? '';
  return type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256'] : [type];
}

/** SSH keepalive interval; a session whose host misses three in a row is closed. */
const KEEPALIVE_MS = 15_000;

export interface SessionOptions {
  /** Keepalive interval in ms (default 15 s); the session ends after three unanswered. */
  readonly keepaliveMs?: number;
}

export interface PoolOptions extends SessionOptions {
  /**
   * The worker's known-hosts file: the key it holds for a host the spec does not pin is the only one accepted, and
   * the key of a host trusted on first use is pinned there.
   */
  readonly knownHosts?: KnownHosts;
  /**
   * SSH handshakes in flight at once per address and port (default {@link HANDSHAKES_PER_ADDRESS}); more wait their
   * turn. sshd drops unauthenticated connections beyond its `MaxStartups` (10 by default).
   */
  readonly handshakesPerAddress?: number;
}

/** Below sshd's default `MaxStartups` start (10), leaving room for an operator's own logins. */
export const HANDSHAKES_PER_ADDRESS = 6;

/**
 * Opens a session as `user`, verifying the host key before authentication.
 * @throws HostKeyMismatch / HostKeyNotPinned (nothing was sent), AuthenticationFailed, ConnectionFailed.
 */
export async function openSession(
  target: HostTarget,
  user: string,
  { keepaliveMs = KEEPALIVE_MS }: SessionOptions = {},
): Promise<HostSession> {
  let presented: string | undefined;
  let rejection: Error | undefined;
  const config: ConnectConfig = {
    username: user,
    readyTimeout: CONNECT_TIMEOUT_MS,
    keepaliveInterval: keepaliveMs,
    keepaliveCountMax: 3,
    hostVerifier: (blob: Buffer) => {
      presented = keyLine(blob);
      if (target.hostKey) {
        const pinnedBlob = target.hostKey.split(' ')[1];
        if (blob.toString('base64') === pinnedBlob) return true;
        rejection = new HostKeyMismatch(
          target.name,
          fingerprint(target.hostKey),
          fingerprint(blob),
          target.hostKeySource,
        );
        return false;
      }
      if (target.trustOnFirstUse) return true;
      rejection = new HostKeyNotPinned(target.name, fingerprint(blob));
      return false;
    },
    ...(target.hostKey ? { algorithms: { serverHostKey: hostKeyAlgorithms(target.hostKey) as never } } : {}),
  };
  if (target.identityFile) config.privateKey = await readFile(target.identityFile, 'utf8');
  else if (process.env.SSH_AUTH_SOCK) config.agent = process.env.SSH_AUTH_SOCK;

  const sock = await connectTcp(target);
  const ssh = new NodeSSH();
  try {
    await ssh.connect({ ...config, sock } as never);
  } catch (err) {
    sock.destroy();
    if (rejection) throw rejection;
    const message = err instanceof Error ? err.message : String(err);
    if ((err as { level?: string }).level === 'client-authentication')
      throw new AuthenticationFailed(target.name, [user]);
    throw new ConnectionFailed(target.name, message);
  }
  // node-ssh listens for errors only while connecting. A later one (keepalive timeout: the host went away) would
  // otherwise be an unhandled 'error' event that ends the worker; it ends this session instead, and the pool's next
  // get opens a new one. Commands in flight fail with ConnectionFailed when the connection closes.
  ssh.connection?.on('error', () => ssh.dispose());
  return new HostSession(target, user, presented ?? 'unknown', ssh);
}

/** A TCP socket with Nagle off: SSH's small packets otherwise wait on delayed ACKs (~40 ms per command). */
function connectTcp(target: HostTarget): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: target.address, port: target.port });
    sock.setNoDelay(true);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new ConnectionFailed(target.name, `TCP connect to ${target.address}:${target.port} timed out`));
    }, CONNECT_TIMEOUT_MS);
    sock.once('connect', () => {
      clearTimeout(timer);
      resolve(sock);
    });
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(new ConnectionFailed(target.name, err.message));
    });
  });
}

/**
 * Reuses one session per host across activities. Prefers the ops user; falls back to the first-login user while
 * the ops user does not exist yet (fresh host) or cannot log in.
 */
export class SessionPool {
  private readonly sessions = new Map<string, Promise<HostSession>>();
  private readonly handshakes: KeyedLimiter;

  constructor(private readonly options: PoolOptions = {}) {
    this.handshakes = new KeyedLimiter(options.handshakesPerAddress ?? HANDSHAKES_PER_ADDRESS);
  }

  /** A connected session for the host, reusing a live one. */
  async get(target: HostTarget): Promise<HostSession> {
    const key = poolKey(target);
    const existing = this.sessions.get(key);
    if (existing) {
      const session = await existing.catch(() => undefined);
      if (session?.connected) return session;
      this.sessions.delete(key);
    }
    const opening = this.open(target);
    this.sessions.set(key, opening);
    opening.catch(() => this.sessions.delete(key));
    return opening;
  }

  /** Drops a host's cached session, e.g. after users or SSH settings changed. */
  async forget(target: HostTarget): Promise<void> {
    const key = poolKey(target);
    const s = await this.sessions.get(key)?.catch(() => undefined);
    this.sessions.delete(key);
    await s?.close();
  }

  /**
   * Opens a session with the key the spec pins, else the one the known-hosts file holds; a key trusted on first use
   * is pinned in the file before the session is handed out.
   */
  private async open(target: HostTarget): Promise<HostSession> {
    const known = this.options.knownHosts;
    // Host entries that share an address (several on one machine, or a fleet behind one NAT) share its handshakes.
    const connect = (t: HostTarget) =>
      this.handshakes.run(`${t.address}:${t.port}`, () => openPreferred(t, this.options));
    if (target.hostKey || !known) return connect(target);
    const pinned = await known.lookup(target).catch((err: Error) => {
      throw new KnownHostsUnavailable(target.name, err.message);
    });
    if (pinned) return connect({ ...target, hostKey: pinned, hostKeySource: known.path });
    const session = await connect(target);
    try {
      await known.pin(target, session.hostKey);
    } catch (err) {
      await session.close();
      throw new KnownHostsUnavailable(
        target.name,
        `trusted its key on first use but could not pin it: ${(err as Error).message}`,
      );
    }
    return session;
  }

  async closeAll(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map(async (p) => (await p.catch(() => undefined))?.close()));
  }
}

function poolKey(t: HostTarget): string {
  return `${t.name}|${t.address}:${t.port}|${t.hostKey ?? 'tofu'}|${t.identityFile ?? 'agent'}`;
}

async function openPreferred(target: HostTarget, options: SessionOptions): Promise<HostSession> {
  if (target.opsUser === target.loginUser) return openSession(target, target.loginUser, options);
  try {
    return await openSession(target, target.opsUser, options);
  } catch (err) {
    if (!(err instanceof AuthenticationFailed)) throw err;
  }
  try {
    return await openSession(target, target.loginUser, options);
  } catch (err) {
    if (err instanceof AuthenticationFailed)
      throw new AuthenticationFailed(target.name, [target.opsUser, target.loginUser]);
    throw err;
  }
}
