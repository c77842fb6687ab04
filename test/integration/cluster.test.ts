/**
 * docker-compose.dev.yml as an operator runs it: `scripts/cluster.sh up` (what `make cluster` runs) builds and starts
 * Temporal on PostgreSQL with TLS and client certificates, its Web UI and a VPS, all from this machine; steward's
 * worker and CLI reach it through the profile the script writes. A provision runs through it while the Temporal
 * server is restarted, and completes; a drift plan follows. A client without a certificate is refused.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STEWARD_BIN, steward } from '../support/cli';

const run = promisify(execFile);
const CLUSTER = new URL('../../scripts/cluster.sh', import.meta.url).pathname;
const PROJECT = `steward-cluster-test-${process.pid}`;

let dir: string;
let clusterEnv: NodeJS.ProcessEnv;
let stewardEnv: NodeJS.ProcessEnv;
let spec: string;
let worker: ChildProcess | undefined;
let workerLog = '';

function cluster(...args: string[]): Promise<{ stdout: string; stderr: string }> {
  return run('bash', [CLUSTER, ...args], { env: clusterEnv, maxBuffer: 16 * 1024 * 1024 });
}

/** This process's environment with {@link stewardEnv} over it (a variable set to undefined removed), as steward() does. */
function withStewardEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...stewardEnv };
  for (const [k, v] of Object.entries(stewardEnv)) if (v === undefined) delete env[k];
  return env;
}

async function serverStartedAt(): Promise<string> {
  const id = (await cluster('compose', 'ps', '-q', 'temporal')).stdout.trim();
  const { stdout } = await run('docker', ['inspect', '--format', '{{.State.StartedAt}}', id]);
  return stdout.trim();
}

/** A port free on loopback now (the frontend's must stay the same across the restart: docker picks a new one). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function waitFor(what: string, probe: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'steward-cluster-'));
  clusterEnv = {
    ...process.env,
    STEWARD_CLUSTER_DIR: join(dir, 'cluster'),
    STEWARD_CLUSTER_PROJECT: PROJECT,
    // Free ports on loopback: the operator's own cluster (7243, 8243, 2243) may be up beside this one.
    STEWARD_CLUSTER_FRONTEND: `127.0.0.1:${await freePort()}`,
    STEWARD_CLUSTER_UI: '127.0.0.1:',
    STEWARD_CLUSTER_SSH: '127.0.0.1:',
  };
  await cluster('up');
  spec = join(dir, 'cluster', 'steward.yaml');
  // As the script's last lines say: the profile it wrote, and the spec's own codec key (beside the spec).
  stewardEnv = {
    TEMPORAL_CONFIG_FILE: join(dir, 'cluster', 'temporal.toml'),
    TEMPORAL_PROFILE: 'cluster',
    STEWARD_CODEC_KEY_FILE: undefined,
    STEWARD_CODEC_KEYS: undefined,
    STEWARD_LOCAL_WORKER: '0', // the CLI holds its own connection through the restart
  };
  worker = spawn(process.execPath, [STEWARD_BIN, '--spec', spec, 'worker'], {
    env: withStewardEnv(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  worker.stdout!.on('data', (d: Buffer) => (workerLog += d.toString()));
  worker.stderr!.on('data', (d: Buffer) => (workerLog += d.toString()));
  await waitFor('the worker to poll the cluster', () => workerLog.includes("state: 'RUNNING'"), 60_000);
});

afterAll(async () => {
  if (worker && worker.exitCode === null && worker.signalCode === null) {
    worker.kill('SIGTERM');
    await new Promise((r) => worker!.once('exit', r));
  }
  if (clusterEnv) await cluster('down', '-v').catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('docker-compose.dev.yml (scripts/cluster.sh)', () => {
  it('made its TLS material and profile: steward reaches the frontend with a client certificate only', async () => {
    const profile = readFileSync(stewardEnv.TEMPORAL_CONFIG_FILE!, 'utf8');
    expect(profile).toMatch(/client_cert_path = ".*\/tls\/steward\/client\.pem"/);
    const withoutCertificate = join(dir, 'no-certificate.toml');
    writeFileSync(withoutCertificate, profile.replace(/^client_(cert|key)_path.*$/gm, ''));
    const refused = await steward(['--spec', spec, 'drift', '--no-audit'], {
      ...stewardEnv,
      TEMPORAL_CONFIG_FILE: withoutCertificate,
    });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('the server asks for a client certificate');
  });

  it('a provision completes though the Temporal server restarts mid-run; drift then plans the host', async () => {
    const before = await serverStartedAt();
    const cli = spawn(process.execPath, [STEWARD_BIN, '--spec', spec, 'provision'], {
      env: withStewardEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    cli.stdout.on('data', (d: Buffer) => (out += d.toString()));
    cli.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number>((r) => cli.once('close', (code) => r(code ?? -1)));
    // Mid-run: the first step has completed, the others are still to come.
    await waitFor('the first provision step', () => /✓ cluster-vps\s+\w+/.test(out), 120_000);
    const stepsBefore = out.match(/✓ cluster-vps/g)!.length;
    await cluster('compose', 'restart', '--timeout', '10', 'temporal');
    expect(cli.exitCode, 'the run was still going when the server came back').toBeNull();
    const after = await serverStartedAt();
    expect(after).not.toBe(before);

    const code = await exited;
    expect(code, out).toBe(0);
    expect(out).toMatch(/completed in [\d.]+s — workflow provision\/cluster-vps\//);
    expect(out.match(/✓ cluster-vps/g)!.length).toBeGreaterThan(stepsBefore);

    const drift = await steward(['--spec', spec, 'drift', '--no-audit'], stewardEnv);
    expect(drift.code, drift.stdout + drift.stderr).toBe(0);
    expect(drift.stdout).toContain('cluster-vps: 0 resources would change');
  });

  it('the Web UI lists the runs, reaching the frontend with its own client certificate', async () => {
    const ui = (await cluster('compose', 'port', 'temporal-ui', '8080')).stdout.trim();
    const response = await fetch(`http://${ui}/api/v1/namespaces/default/workflows`);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { executions?: { execution: { workflowId: string } }[] };
    expect(body.executions?.map((e) => e.execution.workflowId)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^provision\/cluster-vps\//)]),
    );
  });
});
