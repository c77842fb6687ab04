/**
 * `steward dev up|down|status`: the embedded default. A local Temporal dev server with the Web UI and a SQLite file
 * (history survives restarts), steward's worker, and a throwaway VPS simulator for the spec's `dev-vps` host.
 * Payloads are encrypted here too: with the environment's codec keys, else a dev key kept in `.steward/dev/codec.keys`
 * (never removed, so old histories stay readable), and the Web UI decodes them through a codec server.
 * Each part is reused when it is already up, so `dev up` is idempotent.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { openSync } from 'node:fs';
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Connection } from '@temporalio/client';
import ssh2 from 'ssh2';
import { loadSpecCached } from '../spec-cache';
import { KnownHosts } from '../../common/known-hosts';
import type { GlobalOptions } from '../context';
import { devDir, isAlive, localTemporalEnv, readDevState, writeDevState, type DevState } from '../../common/dev-state';
import { ensureSearchAttributes } from '../../common/search-attributes';
import { EXIT, UsageError } from '../errors';
import { initSpec, DEFAULT_DEV_HOST } from './init';

const STEWARD_BIN = fileURLToPath(new URL('../../bin/steward.js', import.meta.url));
const UI_PORT = Number(process.env.STEWARD_UI_PORT ?? 8233);
const CODEC_PORT = Number(process.env.STEWARD_CODEC_PORT ?? UI_PORT + 1);
const WORKER_READY_TIMEOUT_MS = 120_000;
const CODEC_READY_TIMEOUT_MS = 30_000;

function log(message: string): void {
  console.error(`dev: ${message}`);
}

export async function up(g: GlobalOptions): Promise<number> {
  const dir = devDir(g.spec);
  const state = await readDevState(g.spec);
  const temporal = await import('../dev/temporal');

  // 0. Payload encryption: codec keys for every process started here, and the codec server the UI decodes through.
  const childEnv = await ensureDevCodec(g, state);
  await writeDevState(g.spec, state);

  // 1. Temporal dev server.
  if (await temporal.isServerUp(g.address, g.namespace)) {
    log(`Temporal at ${g.address} is up`);
    state.temporal = { ...state.temporal, address: g.address };
  } else {
    const port = Number(g.address.split(':').pop());
    if (!g.address.startsWith('127.0.0.1:') && !g.address.startsWith('localhost:')) {
      throw new UsageError(`--address ${g.address} is not answering, and dev up only starts servers on 127.0.0.1`);
    }
    await temporal.ensureTemporalBinary();
    const server = await temporal.startDevServer({
      port,
      uiPort: UI_PORT,
      ...(state.codec ? { uiCodecEndpoint: state.codec.url } : {}),
      dbFile: join(dir, 'temporal.db'),
      namespace: g.namespace,
      detached: true,
      logFile: join(dir, 'temporal.log'),
    });
    log(`started Temporal dev server (pid ${server.pid}) at ${server.address}`);
    state.temporal = {
      pid: server.pid,
      address: server.address,
      logFile: server.logFile,
      dbFile: join(dir, 'temporal.db'),
      ...(server.uiUrl ? { uiUrl: server.uiUrl } : {}),
    };
  }
  const connection = await Connection.connect({ address: g.address });
  try {
    await ensureSearchAttributes(connection, g.namespace);
  } finally {
    await connection.close();
  }
  await writeDevState(g.spec, state);

  // 2. The spec: a starter one for the throwaway VPS when there is none.
  if (!(await exists(g.spec))) {
    await initSpec({ specPath: g.spec, hosts: [] });
    log(`wrote ${g.spec} for the throwaway VPS ${DEFAULT_DEV_HOST.name}`);
  }
  const { spec } = await loadSpecCached(g.spec);

  // 3. The throwaway VPS for the spec's dev-vps host.
  const devHost = spec.hosts.find((h) => h.name === DEFAULT_DEV_HOST.name);
  if (!devHost) {
    log(`the spec has no host named ${DEFAULT_DEV_HOST.name}: no throwaway VPS started`);
  } else {
    await ensureDevVps(g, state, devHost);
  }
  await writeDevState(g.spec, state);

  // 4. The worker.
  if (isAlive(state.worker?.pid)) {
    log(`worker (pid ${state.worker.pid}) is running`);
  } else {
    const logFile = join(dir, 'worker.log');
    const out = openSync(logFile, 'a');
    const args = ['--address', g.address, '--namespace', g.namespace, '--task-queue', g.taskQueue, 'worker'];
    const child = spawn(process.execPath, [STEWARD_BIN, ...args], {
      detached: true,
      stdio: ['ignore', out, out],
      env: childEnv,
    });
    child.unref();
    state.worker = { pid: child.pid!, logFile };
    await writeDevState(g.spec, state);
    await waitForWorker(g);
    log(`started worker (pid ${child.pid}), log ${logFile}`);
  }

  const summary = {
    temporal: g.address,
    ui: state.temporal?.uiUrl,
    codecServer: state.codec?.url,
    worker: state.worker?.pid,
    vps: state.vps,
  };
  if (g.json) console.log(JSON.stringify(summary));
  else {
    console.log(`Temporal  ${g.address}`);
    if (state.temporal?.uiUrl) console.log(`Web UI    ${state.temporal.uiUrl}/namespaces/${g.namespace}/workflows`);
    if (state.codec)
      console.log(
        `Codec     ${state.codec.url}  (sign in at ${state.codec.url}/login, token in ${state.codec.tokenFile})`,
      );
    if (state.vps)
      console.log(
        `VPS       ${state.vps.host}: ssh -p ${state.vps.port} ${devHost?.user}@127.0.0.1 (container ${state.vps.container.slice(0, 12)})`,
      );
    console.log(`Worker    pid ${state.worker?.pid}`);
  }
  return EXIT.ok;
}

async function ensureDevVps(
  g: GlobalOptions,
  state: DevState,
  host: { name: string; address: string; port: number; user: string; identityFile?: string },
): Promise<void> {
  const sim = await import('../dev/simulator');
  const running = (await sim.listSimulators({ 'steward.dev': devDir(g.spec) })).find((s) => s.state === 'running');
  const knownHosts = KnownHosts.fromEnv();
  if (running && running.port === host.port) {
    // Its key, read out of band again: a known-hosts file that was removed or moved gets it back.
    await knownHosts.pin(host, await sim.readHostKey(running.container), { replace: true });
    log(`throwaway VPS ${running.name} is running on 127.0.0.1:${running.port}`);
    state.vps = { container: running.container, host: host.name, port: host.port };
    return;
  }
  if (running) await sim.removeSimulator(running.container);
  if (!host.identityFile) throw new UsageError(`hosts[${host.name}].identityFile is needed for the throwaway VPS`);
  if (host.user !== 'admin' && host.user !== 'root')
    throw new UsageError(`hosts[${host.name}].user must be admin or root for the throwaway VPS`);
  const parsed = ssh2.utils.parseKey(await readFile(host.identityFile, 'utf8'));
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error) throw new UsageError(`cannot read ${host.identityFile}`);
  await sim.ensureSimulatorImage();
  const vps = await sim.startSimulator({
    name: `dev-${createHash('sha256').update(devDir(g.spec)).digest('hex').slice(0, 8)}`,
    authorizedKey: `${key.type} ${key.getPublicSSH().toString('base64')} steward`,
    loginUser: host.user,
    port: host.port,
    labels: { 'steward.dev': devDir(g.spec) },
  });
  // A new throwaway host has new keys; the one read out of band from the container replaces the old pin in the
  // known-hosts file the worker `dev up` starts reads (the spec stays as the operator wrote it).
  await knownHosts.pin({ name: host.name, address: host.address, port: vps.port }, vps.hostKey, { replace: true });
  state.vps = { container: vps.container, host: host.name, port: vps.port };
  log(`started throwaway VPS ${vps.name} on 127.0.0.1:${vps.port}, host key pinned in ${knownHosts.path}`);
}

/**
 * Codec keys and codec server for `dev up`. Keys: the environment's (STEWARD_CODEC_KEYS / STEWARD_CODEC_KEY_FILE),
 * else the dev key file, created on first use. Starts the codec server (token in `.steward/dev/codec-server.token`,
 * mode 0600) unless the one recorded is running, on the port it had so a running UI keeps finding it. Returns the
 * environment for the processes `dev up` starts, so they all use the same keys.
 */
async function ensureDevCodec(g: GlobalOptions, state: DevState): Promise<NodeJS.ProcessEnv> {
  const { ensureKeyFile, keyRingFromEnv, KEY_FILE_ENV } = await import('../../codec/keys');
  const { ensureTokenFile } = await import('../../codec/server');
  const dir = devDir(g.spec);
  let keyFile: string | undefined;
  if (!(await keyRingFromEnv())) {
    const dev = await ensureKeyFile(join(dir, 'codec.keys'));
    keyFile = dev.file;
    if (dev.created) log(`created dev codec key ${dev.ring.current.id} in ${dev.file}`);
  }
  const env = localTemporalEnv({ ...process.env, ...(keyFile ? { [KEY_FILE_ENV]: keyFile } : {}) }, g.spec);
  const tokenFile = join(dir, 'codec-server.token');
  await ensureTokenFile(tokenFile);

  if (state.codec && isAlive(state.codec.pid) && (await codecServerUp(state.codec.url))) {
    log(`codec server (pid ${state.codec.pid}) at ${state.codec.url} is running`);
    state.codec = { ...state.codec, ...(keyFile ? { keyFile } : {}) };
    return env;
  }
  const port = state.codec ? Number(new URL(state.codec.url).port) : CODEC_PORT;
  const url = `http://127.0.0.1:${port}`;
  const logFile = join(dir, 'codec-server.log');
  const out = openSync(logFile, 'a');
  const args = [
    ...['--address', g.address, '--namespace', g.namespace, 'codec-server', '--port', String(port)],
    ...[
      '--token-file',
      tokenFile,
      '--origin',
      `http://127.0.0.1:${UI_PORT}`,
      '--origin',
      `http://localhost:${UI_PORT}`,
    ],
  ];
  const child = spawn(process.execPath, [STEWARD_BIN, ...args], { detached: true, stdio: ['ignore', out, out], env });
  child.unref();
  let exited = false;
  child.once('exit', () => (exited = true));
  const deadline = Date.now() + CODEC_READY_TIMEOUT_MS;
  while (!(await codecServerUp(url))) {
    if (exited || Date.now() > deadline) {
      const last = (await readFile(logFile, 'utf8').catch(() => '')).trim().split('\n').at(-1) ?? '';
      const why = /EADDRINUSE/.test(last) ? `: port ${port} is in use (STEWARD_CODEC_PORT chooses another)` : '';
      throw new Error(`the codec server did not start on ${url}${why}; see ${logFile}`);
    }
    await sleep(200);
  }
  state.codec = { ...(keyFile ? { keyFile } : {}), tokenFile, pid: child.pid!, url, logFile };
  log(`started codec server (pid ${child.pid}) at ${url}, log ${logFile}`);
  return env;
}

async function codecServerUp(url: string): Promise<boolean> {
  try {
    return (await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2_000) })).ok;
  } catch {
    return false;
  }
}

/** Waits until a worker polls the task queue of `g`, at most `timeoutMs`. */
export async function waitForWorker(
  g: Pick<GlobalOptions, 'address' | 'namespace' | 'taskQueue'>,
  timeoutMs = WORKER_READY_TIMEOUT_MS,
): Promise<void> {
  const connection = await Connection.connect({ address: g.address });
  const deadline = Date.now() + timeoutMs;
  try {
    for (;;) {
      const r = await connection.workflowService.describeTaskQueue({
        namespace: g.namespace,
        taskQueue: { name: g.taskQueue },
        taskQueueType: 1,
      });
      if ((r.pollers?.length ?? 0) > 0) return;
      if (Date.now() > deadline)
        throw new Error(`no worker polls task queue ${g.taskQueue} after ${timeoutMs / 1000} s; see the worker log`);
      await new Promise((res) => setTimeout(res, 500));
    }
  } finally {
    await connection.close();
  }
}

export async function down(g: GlobalOptions): Promise<number> {
  const state = await readDevState(g.spec);
  const { stopProcess } = await import('../dev/temporal');
  if (isAlive(state.worker?.pid)) {
    await stopProcess(state.worker.pid);
    log(`stopped worker (pid ${state.worker.pid})`);
  }
  if (isAlive(state.codec?.pid)) {
    await stopProcess(state.codec.pid);
    log(`stopped codec server (pid ${state.codec.pid}); keys kept in ${state.codec.keyFile ?? 'the environment'}`);
  }
  if (state.vps) {
    const { removeSimulator } = await import('../dev/simulator');
    await removeSimulator(state.vps.container);
    log(`removed throwaway VPS ${state.vps.container.slice(0, 12)}`);
  }
  if (isAlive(state.temporal?.pid)) {
    await stopProcess(state.temporal.pid);
    log(`stopped Temporal dev server (pid ${state.temporal.pid}); history kept in ${state.temporal.dbFile}`);
  }
  await writeDevState(g.spec, {});
  return EXIT.ok;
}

export async function status(g: GlobalOptions): Promise<number> {
  const state = await readDevState(g.spec);
  const { isServerUp } = await import('../dev/temporal');
  const { listSimulators } = await import('../dev/simulator');
  const vps = state.vps
    ? (await listSimulators({ 'steward.dev': devDir(g.spec) })).find((s) => s.container === state.vps?.container)
    : undefined;
  const report = {
    temporal: {
      address: g.address,
      up: await isServerUp(g.address, g.namespace),
      pid: state.temporal?.pid,
      ui: state.temporal?.uiUrl,
    },
    worker: { pid: state.worker?.pid, up: isAlive(state.worker?.pid), log: state.worker?.logFile },
    codecServer: {
      url: state.codec?.url,
      pid: state.codec?.pid,
      up: isAlive(state.codec?.pid) && state.codec !== undefined && (await codecServerUp(state.codec.url)),
    },
    vps: { container: state.vps?.container, port: state.vps?.port, up: vps?.state === 'running' },
  };
  if (g.json) console.log(JSON.stringify(report, null, 2));
  else {
    const mark = (ok: boolean) => (ok ? 'up  ' : 'down');
    console.log(
      `temporal  ${mark(report.temporal.up)} ${g.address}${report.temporal.ui ? `  UI ${report.temporal.ui}` : ''}`,
    );
    console.log(`worker    ${mark(report.worker.up)} ${report.worker.pid ? `pid ${report.worker.pid}` : ''}`);
    console.log(`codec     ${mark(report.codecServer.up)} ${report.codecServer.url ?? ''}`);
    console.log(`vps       ${mark(report.vps.up)} ${report.vps.port ? `127.0.0.1:${report.vps.port}` : ''}`);
  }
  return report.temporal.up && report.worker.up && report.codecServer.up && report.vps.up ? EXIT.ok : EXIT.failed;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}
