// VPS simulators: containers of steward/vps:bookworm (Debian 12, systemd as PID 1, sshd) on the local Docker
// engine, reachable over SSH on 127.0.0.1 like a fresh cloud server. For tests and local development only.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdir } from 'node:fs/promises';
import net from 'node:net';
import { hostname } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import Docker from 'dockerode';
import { processAlive } from '../../common/process';

export const SIMULATOR_IMAGE = 'steward/vps:bookworm';
/** Every simulator carries this label with value `1`. */
export const SIMULATOR_LABEL = 'steward.simulator';
export const SIMULATOR_NAME_PREFIX = 'steward-vps-';

const BUILD_SCRIPT = fileURLToPath(new URL('../../scripts/build-vps-image.sh', import.meta.url));
const BOOT_TIMEOUT_MS = 90_000;
const POLL_INTERVAL_MS = 250;
const BANNER_TIMEOUT_MS = 2_000;
const STOP_TIMEOUT_S = 10;
const PORT_ATTEMPTS = 3;

/** What systemd as PID 1 and a nested Docker engine need (verified on a cgroup v1 host, dockerd 20.10). */
const RUN_OPTIONS = {
  CapAdd: ['ALL'], // nested dockerd, nftables; ALL alone fails: SYS_RESOURCE is missing from the bounding set
  CapDrop: ['SYS_RESOURCE'],
  SecurityOpt: ['seccomp=unconfined', 'apparmor=unconfined'], // nested runc needs keyctl; AppArmor blocks mounts
  Tmpfs: { '/run': 'rw,nosuid,nodev,exec,mode=755', '/run/lock': 'rw,nosuid,nodev,noexec' },
  // The recursive bind keeps the controllers below writable (only the top tmpfs is read-only): systemd and the
  // nested dockerd create their cgroups there. With a private cgroup namespace the nested `docker run` fails.
  CgroupnsMode: 'host',
  // A reboot from inside (systemctl reboot ends the container's systemd) starts it again, as a VM would boot.
  RestartPolicy: { Name: 'unless-stopped' },
} satisfies Docker.HostConfig & { CgroupnsMode: 'host' | 'private' };

const docker = new Docker({ socketPath: '/var/run/docker.sock' });

export interface Simulator {
  /** Container id. */
  container: string;
  /** Container name, also the simulator's hostname. */
  name: string;
  address: '127.0.0.1';
  port: number;
  /** The login user whose authorized_keys holds the key (root's always does too). */
  user: string;
  /** `ssh-ed25519 AAAA…`, read from the container out of band: pin it, never trust on first use. */
  hostKey: string;
}

export interface StartSimulatorOptions {
  /** Suffix of the container name `steward-vps-<name>`; random when absent. */
  name?: string;
  /** One OpenSSH public key line, installed for `loginUser` and root. */
  authorizedKey: string;
  loginUser?: 'admin' | 'root';
  /** Host port on 127.0.0.1 for the simulator's port 22; a free one when absent. */
  port?: number;
  /**
   * Host directory bind-mounted on /var/cache/apt/archives (created when missing) to share downloaded .debs. apt
   * locks that directory: two simulators sharing it cannot run apt at the same moment (the second fails with
   * "Could not get lock /var/cache/apt/archives/lock").
   */
  aptCacheDir?: string;
  labels?: Record<string, string>;
  /**
   * The image to boot, default steward/vps:bookworm. A snapshot of a simulator (see {@link snapshotSimulator})
   * boots with new host keys and a new machine id, like a server restored from an image.
   */
  image?: string;
  /**
   * Further users (besides `loginUser` and root) whose authorized_keys get `authorizedKey` instead of what they
   * held, when they exist: the ops user of a snapshot of a provisioned host.
   */
  keyUsers?: readonly string[];
}

export interface SimulatorSummary {
  container: string;
  name: string;
  port: number | undefined;
  /** Docker's state: `running`, `exited`, … */
  state: string;
  labels: Record<string, string>;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** A simulator that could not be built, started, reached or changed. */
export class SimulatorError extends Error {
  constructor(
    message: string,
    readonly container?: string,
  ) {
    super(message);
    this.name = 'SimulatorError';
  }
}

/**
 * Builds steward/vps:bookworm unless it is current (scripts/build-vps-image.sh; the first build debootstraps a
 * base image, which needs root and ~1 min). Output goes to this process's stdout/stderr. Safe to call again and
 * concurrently.
 * @throws SimulatorError when the script fails.
 */
export async function ensureSimulatorImage(): Promise<void> {
  const child = spawn('bash', [BUILD_SCRIPT], { stdio: ['ignore', 'inherit', 'inherit'] });
  const [code, signal] = (await once(child, 'exit')) as [number | null, NodeJS.Signals | null];
  if (code !== 0) {
    throw new SimulatorError(`${BUILD_SCRIPT} failed (${signal ?? `exit code ${code}`})`);
  }
}

/**
 * Creates and boots a simulator, waits until systemd reports the system up and sshd sends its banner, then installs
 * `authorizedKey` and reads the ed25519 host key. The image must exist (see {@link ensureSimulatorImage}).
 * @throws SimulatorError when the key is not one OpenSSH public key line, or the container does not come up within
 *   90 s (the message carries its logs and journal tail); the container is removed then.
 */
export async function startSimulator(opts: StartSimulatorOptions): Promise<Simulator> {
  const authorizedKey = opts.authorizedKey.trim();
  if (!/^(ssh|ecdsa|sk)-\S+ [A-Za-z0-9+/=]+( [^\n]*)?$/.test(authorizedKey)) {
    throw new SimulatorError('authorizedKey must be one OpenSSH public key line, e.g. "ssh-ed25519 AAAA… comment"');
  }
  const user = opts.loginUser ?? 'admin';
  const name = SIMULATOR_NAME_PREFIX + (opts.name ?? randomBytes(4).toString('hex'));
  const binds = ['/sys/fs/cgroup:/sys/fs/cgroup:ro'];
  if (opts.aptCacheDir) {
    const cacheDir = path.resolve(opts.aptCacheDir);
    await mkdir(cacheDir, { recursive: true });
    binds.push(`${cacheDir}:/var/cache/apt/archives`);
  }

  const { container, port } = await createAndStart(name, binds, opts);
  try {
    await waitUntilReachable(container.id, port);
    await installAuthorizedKey(container.id, [...new Set([user, 'root', ...(opts.keyUsers ?? [])])], authorizedKey);
    return {
      container: container.id,
      name,
      address: '127.0.0.1',
      port,
      user,
      hostKey: await readHostKey(container.id),
    };
  } catch (error) {
    await container.remove({ force: true, v: true }).catch(() => undefined);
    throw error;
  }
}

/** Starts the container on the requested port, or on a free one (retrying if another process takes it first). */
async function createAndStart(
  name: string,
  binds: string[],
  opts: StartSimulatorOptions,
): Promise<{ container: Docker.Container; port: number }> {
  for (let attempt = 1; ; attempt++) {
    const port = opts.port ?? (await freePort());
    const container = await docker.createContainer({
      name,
      Hostname: name,
      Image: opts.image ?? SIMULATOR_IMAGE,
      Labels: { ...opts.labels, [SIMULATOR_LABEL]: '1' },
      ExposedPorts: { '22/tcp': {} },
      HostConfig: {
        ...RUN_OPTIONS,
        Binds: binds,
        PortBindings: { '22/tcp': [{ HostIp: '127.0.0.1', HostPort: String(port) }] },
      },
    });
    try {
      await container.start();
      return { container, port };
    } catch (error) {
      await container.remove({ force: true, v: true }).catch(() => undefined);
      const portTaken = /port is already allocated|address already in use/i.test(String(error));
      if (!portTaken || opts.port !== undefined || attempt === PORT_ATTEMPTS) throw error;
    }
  }
}

/**
 * Force-removes a simulator and its /var/lib/docker volume. Does nothing if it is already gone.
 */
export async function removeSimulator(idOrName: string): Promise<void> {
  try {
    await docker.getContainer(idOrName).remove({ force: true, v: true });
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode !== 404) throw error;
  }
}

/**
 * Labels of a simulator a test run or a benchmark starts: the process that removes it when done (`pid`, on this
 * machine). See {@link removeOrphanedSimulators}.
 */
export const OWNER_PID_LABEL = 'steward.owner-pid';
export const OWNER_HOST_LABEL = 'steward.owner-host';
export const ownerLabels = (pid: number = process.pid): Record<string, string> => ({
  [OWNER_PID_LABEL]: String(pid),
  [OWNER_HOST_LABEL]: hostname(),
});

/**
 * Removes the simulators whose owner ({@link ownerLabels}) on this machine has ended without removing them — a
 * test run or a benchmark that was killed. A simulator restarts with the engine, as a server boots, so without this
 * they came back with every engine start and took CPU from whatever ran next. A process that still exists (also
 * one that is not ours to signal) keeps its simulators. Returns the names removed.
 */
export async function removeOrphanedSimulators(): Promise<string[]> {
  const removed: string[] = [];
  for (const sim of await listSimulators()) {
    const pid = Number(sim.labels[OWNER_PID_LABEL]);
    if (!Number.isInteger(pid) || pid <= 0 || sim.labels[OWNER_HOST_LABEL] !== hostname() || processAlive(pid))
      continue;
    await removeSimulator(sim.container);
    removed.push(sim.name);
  }
  return removed;
}

/** Simulators on the local engine, running or not, that carry all `labels` (besides steward.simulator=1). */
export async function listSimulators(labels: Record<string, string> = {}): Promise<SimulatorSummary[]> {
  const label = [`${SIMULATOR_LABEL}=1`, ...Object.entries(labels).map(([key, value]) => `${key}=${value}`)];
  const containers = await docker.listContainers({ all: true, filters: { label } });
  return containers.map((c) => ({
    container: c.Id,
    name: (c.Names[0] ?? '').replace(/^\//, ''),
    port: c.Ports.find((p) => p.PrivatePort === 22 && p.PublicPort)?.PublicPort,
    state: c.State,
    labels: c.Labels,
  }));
}

/** The simulator's address on this machine's Docker network: where its published services answer from here. */
export async function simulatorAddress(id: string): Promise<string | undefined> {
  const info = await docker.getContainer(id).inspect();
  return Object.values(info.NetworkSettings.Networks ?? {}).find((n) => n.IPAddress)?.IPAddress || undefined;
}

/**
 * Runs `argv` as root inside the simulator, out of band (docker exec, not SSH): for tests that inspect or tamper
 * with a host behind steward's back. A non-zero exit code is returned, not thrown.
 * @throws when the container does not exist or is not running.
 */
export async function simulatorExec(id: string, argv: string[], stdin?: string | Buffer): Promise<ExecResult> {
  const exec = await docker.getContainer(id).exec({
    Cmd: argv,
    AttachStdin: true,
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({ hijack: true, stdin: true });
  const stdout = collect();
  const stderr = collect();
  docker.modem.demuxStream(stream, stdout.sink, stderr.sink);
  const ended = new Promise<void>((resolve, reject) => {
    stream.once('end', resolve);
    stream.once('close', resolve);
    stream.once('error', reject);
  });
  stream.end(stdin ?? '');
  await ended;

  // The stream can end a moment before the engine records the exit code.
  for (;;) {
    const { Running, ExitCode } = await exec.inspect();
    if (!Running && ExitCode !== null) return { stdout: stdout.text(), stderr: stderr.text(), exitCode: ExitCode };
    await sleep(20);
  }
}

/**
 * Restarts the simulator's container (a reboot: same disk, same host keys, same port) and waits until SSH answers.
 * @throws SimulatorError when it does not come back within 90 s.
 */
export async function restartSimulator(id: string): Promise<void> {
  const container = docker.getContainer(id);
  const info = await container.inspect();
  const port = Number(info.HostConfig.PortBindings?.['22/tcp']?.[0]?.HostPort);
  await container.restart({ t: STOP_TIMEOUT_S });
  await waitUntilReachable(info.Id, port);
}

/**
 * Replaces all SSH host keys with new ones and restarts sshd (open sessions survive): what a reinstalled server
 * looks like to a client that pinned the old key.
 * @returns the new `ssh-ed25519 AAAA…` host key.
 * @throws SimulatorError when a step fails.
 */
export async function regenerateHostKeys(id: string): Promise<string> {
  await mustExec(id, ['sh', '-c', 'rm -f /etc/ssh/ssh_host_* && ssh-keygen -A >/dev/null && systemctl restart ssh']);
  return readHostKey(id);
}

/**
 * Commits a simulator's disk as image `ref` (labels added), the way a cloud snapshot of a server is taken: its SSH
 * host keys and machine id are removed first so every simulator booted from the image gets its own, then systemd is
 * shut down cleanly and the stopped container committed and removed. The nested Docker engine's data
 * (/var/lib/docker) is a volume and is not part of the image: a simulator from it starts with an empty engine.
 * @returns the image ID.
 * @throws SimulatorError when a step fails.
 */
export async function snapshotSimulator(id: string, ref: string, labels: Record<string, string> = {}): Promise<string> {
  await mustExec(id, [
    'sh',
    '-c',
    'rm -f /etc/ssh/ssh_host_* && : > /etc/machine-id && rm -f /var/lib/dbus/machine-id',
  ]);
  const container = docker.getContainer(id);
  await container.stop({ t: STOP_TIMEOUT_S });
  const [repo, tag] = ref.split(':') as [string, string | undefined];
  const { Id } = (await container.commit({
    repo,
    tag: tag ?? 'latest',
    ...(Object.keys(labels).length > 0
      ? {
          changes: `LABEL ${Object.entries(labels)
            .map(([k, v]) => `${JSON.stringify(k)}=${JSON.stringify(v)}`)
            .join(' ')}`,
        }
      : {}),
  })) as { Id: string };
  await removeSimulator(id);
  return Id;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as net.AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

async function waitUntilReachable(id: string, port: number): Promise<void> {
  const deadline = Date.now() + BOOT_TIMEOUT_MS;
  let systemState = 'not checked';
  while (Date.now() < deadline) {
    const { State } = await docker.getContainer(id).inspect();
    if (!State.Running) {
      throw new SimulatorError(`simulator ${id} stopped while booting\n${await diagnostics(id)}`, id);
    }
    systemState = (await simulatorExec(id, ['systemctl', 'is-system-running'])).stdout.trim();
    if ((systemState === 'running' || systemState === 'degraded') && (await sshBannerOn(port))) return;
    await sleep(POLL_INTERVAL_MS);
  }
  throw new SimulatorError(
    `simulator ${id} did not get ready within ${BOOT_TIMEOUT_MS / 1000} s ` +
      `(systemctl is-system-running: ${systemState}, SSH banner on 127.0.0.1:${port}: none)\n${await diagnostics(id)}`,
    id,
  );
}

/** Whether something on 127.0.0.1:port greets like an SSH server. */
async function sshBannerOn(port: number): Promise<boolean> {
  const socket = net.connect(port, '127.0.0.1');
  socket.setTimeout(BANNER_TIMEOUT_MS);
  try {
    const banner = await new Promise<string>((resolve, reject) => {
      socket.once('data', (data) => resolve(data.toString('latin1')));
      socket.once('timeout', () => reject(new Error('timeout')));
      socket.once('error', reject);
      socket.once('end', () => resolve(''));
    });
    return banner.startsWith('SSH-');
  } catch {
    return false;
  } finally {
    socket.destroy();
  }
}

async function installAuthorizedKey(id: string, users: string[], key: string): Promise<void> {
  const script = `set -eu
key=$(cat)
for user in "$@"; do
  getent passwd "$user" >/dev/null || continue
  home=$(getent passwd "$user" | cut -d: -f6)
  group=$(id -gn "$user")
  install -d -m 700 -o "$user" -g "$group" "$home/.ssh"
  printf '%s\\n' "$key" > "$home/.ssh/authorized_keys"
  chown "$user:$group" "$home/.ssh/authorized_keys"
  chmod 600 "$home/.ssh/authorized_keys"
done`;
  await mustExec(id, ['sh', '-c', script, 'sh', ...users], key);
}

/** The simulator's ed25519 host key as an OpenSSH line, read out of band (docker exec). */
export async function readHostKey(id: string): Promise<string> {
  const [type, key] = (await mustExec(id, ['cat', '/etc/ssh/ssh_host_ed25519_key.pub'])).split(/\s+/);
  return `${type} ${key}`;
}

async function mustExec(id: string, argv: string[], stdin?: string): Promise<string> {
  const result = await simulatorExec(id, argv, stdin);
  if (result.exitCode !== 0) {
    throw new SimulatorError(
      `${argv.slice(0, 2).join(' ')} failed in simulator ${id} (exit ${result.exitCode}): ${result.stderr.trim()}`,
      id,
    );
  }
  return result.stdout;
}

/** Container log tail plus, if it still runs, failed units and journal tail: what explains a failed boot. */
async function diagnostics(id: string): Promise<string> {
  const container = docker.getContainer(id);
  const logs = await container.logs({ stdout: true, stderr: true, tail: 30 }).catch(() => Buffer.alloc(0));
  const journal = await simulatorExec(id, [
    'sh',
    '-c',
    'systemctl --failed --no-pager; systemctl status ssh --no-pager -n 10; journalctl -b --no-pager -n 30',
  ]).catch((error: unknown) => ({ stdout: `(not readable: ${String(error)})` }));
  return `--- container log tail ---\n${demuxLog(logs)}\n--- failed units, sshd, journal tail ---\n${journal.stdout}`;
}

/** Docker's multiplexed log frames (8-byte header, then payload) as text. */
function demuxLog(buffer: Buffer): string {
  const parts: Buffer[] = [];
  for (let offset = 0; offset + 8 <= buffer.length;) {
    const size = buffer.readUInt32BE(offset + 4);
    parts.push(buffer.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(parts).toString('utf8');
}

function collect(): { sink: PassThrough; text: () => string } {
  const chunks: Buffer[] = [];
  const sink = new PassThrough();
  sink.on('data', (chunk: Buffer) => chunks.push(chunk));
  return { sink, text: () => Buffer.concat(chunks).toString('utf8') };
}
