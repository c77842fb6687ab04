/**
 * The stack images on this machine's Docker engine (no simulator): steward/openclaw runs the real gateway from a
 * minimal rendered config, steward/caddy terminates TLS with its internal CA and proxies HTTP and WebSocket traffic to
 * it. Both run hardened (no capabilities, no-new-privileges, read-only root) on an internal Docker network, which has
 * no route out: nothing here can reach a paid service or any other address. Everything is removed afterwards.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BUILD_SCRIPT = fileURLToPath(new URL('../../scripts/build-stack-images.sh', import.meta.url));
/** A cold build (npm downloads, better-sqlite3 compiled) takes about six minutes on two cores. */
const SETUP_TIMEOUT_MS = 1_500_000;
const HEALTHY_TIMEOUT_MS = 240_000;
const POLL_INTERVAL_MS = 500;
const GATEWAY_PORT = 18789;
const DOMAIN = 'openclaw.test';
const GATEWAY_ALIAS = 'openclaw-gateway';
const STATE_DIR = '/home/node/.openclaw';
const CADDY_ROOT_CA = '/data/caddy/pki/authorities/local/root.crt';
const MEM0_PLUGIN_LABEL = 'steward.openclaw.plugin-path.openclaw-mem0';
const WEBSOCKET_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
/** What compose will apply too; the gateway needs writable /tmp and ~/.cache besides its state volume. */
const HARDENING = ['--cap-drop', 'ALL', '--security-opt', 'no-new-privileges', '--read-only', '--tmpfs', '/tmp'];

interface DockerResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

/** Runs the docker CLI with `args` (no shell), feeding `input` on stdin. Never throws on a non-zero exit. */
function docker(args: string[], input?: string): Promise<DockerResult> {
  return new Promise((resolve, reject) => {
    const child = spawn('docker', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => resolve({ stdout, stderr, code }));
    child.stdin.end(input);
  });
}

/** Like {@link docker}, but a non-zero exit throws with the command and its stderr. */
async function dockerOk(args: string[], input?: string): Promise<string> {
  const result = await docker(args, input);
  if (result.code !== 0) {
    throw new Error(`docker ${args.join(' ')} exited ${result.code}: ${result.stderr.trim()}`);
  }
  return result.stdout;
}

/** The JSON document a CLI printed on stdout (tolerating log lines around it). */
function parseJson<T>(stdout: string): T {
  const start = stdout.indexOf('{');
  const end = stdout.lastIndexOf('}');
  if (start < 0 || end < start) throw new Error(`no JSON document in: ${stdout.slice(0, 500)}`);
  return JSON.parse(stdout.slice(start, end + 1)) as T;
}

/** Builds the images unless current; returns the tags the script printed (`<tag> <id> <size>` per line). */
function buildStackImages(): Promise<{ openclaw: string; caddy: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [BUILD_SCRIPT], {
      env: { ...process.env, CI: 'true' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`${BUILD_SCRIPT} exited ${code}`));
      const tags = stdout.split('\n').map((line) => line.split(' ')[0] ?? '');
      const openclaw = tags.find((tag) => tag.startsWith('steward/openclaw:'));
      const caddy = tags.find((tag) => tag.startsWith('steward/caddy:'));
      if (!openclaw || !caddy) return reject(new Error(`unexpected build output: ${stdout}`));
      resolve({ openclaw, caddy });
    });
  });
}

async function containerIp(container: string, network: string): Promise<string> {
  const format = `{{ (index .NetworkSettings.Networks "${network}").IPAddress }}`;
  return (await dockerOk(['inspect', '--format', format, container])).trim();
}

/** Polls Docker's health status until `healthy`; throws with the log tail when the container dies or turns unhealthy. */
async function waitHealthy(container: string): Promise<void> {
  const deadline = Date.now() + HEALTHY_TIMEOUT_MS;
  for (;;) {
    const status = (await dockerOk(['inspect', '--format', '{{.State.Status}} {{.State.Health.Status}}', container]))
      .trim()
      .split(' ');
    if (status[1] === 'healthy') return;
    if (status[0] !== 'running' || status[1] === 'unhealthy' || Date.now() > deadline) {
      const logs = await docker(['logs', '--tail', '40', container]);
      throw new Error(`${container} is ${status.join('/')}:\n${logs.stdout}${logs.stderr}`);
    }
    await sleep(POLL_INTERVAL_MS);
  }
}

interface HttpsAnswer {
  status: number | undefined;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/**
 * One HTTPS request to `address` for {@link DOMAIN} (SNI and Host), trusting only `ca`. With `upgrade` headers the
 * answer is the 101 (the socket is closed right away) or whatever the proxy or gateway returned instead.
 */
function httpsRequest(address: string, path: string, ca: string, headers: Record<string, string> = {}) {
  return new Promise<HttpsAnswer>((resolve, reject) => {
    const request = https.request({
      host: address,
      port: 443,
      path,
      servername: DOMAIN,
      ca,
      headers: { host: DOMAIN, ...headers },
      timeout: 10_000,
    });
    request.once('upgrade', (response, socket) => {
      socket.destroy();
      resolve({ status: response.statusCode, headers: response.headers, body: '' });
    });
    request.once('response', (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk));
      response.once('end', () => resolve({ status: response.statusCode, headers: response.headers, body }));
    });
    request.once('timeout', () => request.destroy(new Error(`https://${DOMAIN}${path} via ${address} timed out`)));
    request.once('error', reject);
    request.end();
  });
}

/**
 * The smallest openclaw.json steward renders: local gateway on every interface of its container (Caddy is the only
 * way in from outside), token auth, the public origin, the proxy as the only trusted proxy, no automatic calls home,
 * and the image's mem0 plugin selected by path in open-source mode. Strict JSON: the mem0 plugin `JSON.parse`s it.
 * The embedder and LLM point at a closed loopback port: nothing in this test makes mem0 call them.
 */
function gatewayConfig(token: string, proxyAddress: string, mem0PluginDir: string): object {
  const unusedEndpoint = { apiKey: 'not-used', baseURL: 'http://127.0.0.1:9/v1' };
  return {
    gateway: {
      mode: 'local',
      bind: 'lan',
      port: GATEWAY_PORT,
      auth: { mode: 'token', token, rateLimit: { maxAttempts: 10, windowMs: 60_000, lockoutMs: 300_000 } },
      controlUi: { allowedOrigins: [`https://${DOMAIN}`] },
      trustedProxies: [proxyAddress],
    },
    update: { checkOnStart: false },
    models: { catalogRefresh: { enabled: false } },
    plugins: {
      load: { paths: [mem0PluginDir] },
      slots: { memory: 'openclaw-mem0' },
      entries: {
        'openclaw-mem0': {
          enabled: true,
          // Without it the gateway blocks the plugin's recall/capture hooks (before_prompt_build, agent_end).
          hooks: { allowConversationAccess: true },
          config: {
            mode: 'open-source',
            oss: {
              embedder: { provider: 'openai', config: { ...unusedEndpoint, model: 'embedder', embeddingDims: 8 } },
              vectorStore: { provider: 'memory', config: { dbPath: `${STATE_DIR}/mem0/vectors.db`, dimension: 8 } },
              llm: { provider: 'openai', config: { ...unusedEndpoint, model: 'llm' } },
              historyDbPath: `${STATE_DIR}/mem0/history.db`,
            },
          },
        },
      },
    },
  };
}

const CADDYFILE = `{
	skip_install_trust
}

${DOMAIN} {
	tls internal
	reverse_proxy ${GATEWAY_ALIAS}:${GATEWAY_PORT}
}
`;

describe('stack images (OpenClaw gateway + Caddy) on the local Docker engine', () => {
  const suffix = randomBytes(4).toString('hex');
  const label = ['--label', 'steward.test=stack-images'];
  const network = `steward-test-stack-${suffix}`;
  const gateway = `steward-test-openclaw-${suffix}`;
  const caddy = `steward-test-caddy-${suffix}`;
  const volumes = [`${gateway}-state`, `${caddy}-data`, `${caddy}-config`] as const;
  const [stateVolume, caddyData, caddyConfig] = volumes;
  const token = randomBytes(24).toString('hex');
  let workDir: string | undefined;
  let images: { openclaw: string; caddy: string };
  let mem0PluginDir: string;
  let gatewayAddress: string;
  let caddyAddress: string;
  let caddyRootCa: string;

  /** `openclaw …` inside the running gateway container, as its user. */
  const openclaw = (args: string[], env: Record<string, string> = {}): Promise<DockerResult> =>
    docker(['exec', ...Object.entries(env).flatMap(([k, v]) => ['--env', `${k}=${v}`]), gateway, 'openclaw', ...args]);

  beforeAll(async () => {
    let started = Date.now();
    images = await buildStackImages();
    console.log(`stack images ${images.openclaw} ${images.caddy} ready in ${Date.now() - started} ms`);
    const labelFormat = `{{ index .Config.Labels "${MEM0_PLUGIN_LABEL}" }}`;
    mem0PluginDir = (await dockerOk(['image', 'inspect', '--format', labelFormat, images.openclaw])).trim();

    await dockerOk(['network', 'create', '--internal', ...label, network]);
    for (const volume of volumes) await dockerOk(['volume', 'create', ...label, volume]);

    workDir = await mkdtemp(join(tmpdir(), 'steward-stack-images-'));
    const caddyfile = join(workDir, 'Caddyfile');
    await writeFile(caddyfile, CADDYFILE, { mode: 0o644 });
    // prettier-ignore
    await dockerOk([
      'run', '--detach', '--name', caddy, ...label, '--network', network, '--network-alias', DOMAIN, ...HARDENING,
      '--volume', `${caddyfile}:/etc/caddy/Caddyfile:ro`, '--volume', `${caddyData}:/data`,
      '--volume', `${caddyConfig}:/config`, images.caddy,
    ]);
    caddyAddress = await containerIp(caddy, network);

    // The config enters the fresh state volume the way compose sees it: written by the image's own user, mode 600.
    const config = JSON.stringify(gatewayConfig(token, caddyAddress, mem0PluginDir), null, 2);
    // prettier-ignore
    await dockerOk(
      ['run', '--rm', '--interactive', '--network', 'none', '--volume', `${stateVolume}:${STATE_DIR}`,
        '--entrypoint', 'sh', images.openclaw, '-c', `umask 077 && cat > ${STATE_DIR}/openclaw.json`],
      config,
    );

    started = Date.now();
    // prettier-ignore
    await dockerOk([
      'run', '--detach', '--name', gateway, ...label, '--network', network, '--network-alias', GATEWAY_ALIAS,
      ...HARDENING, '--tmpfs', '/home/node/.cache:uid=1000,gid=1000,mode=0700',
      '--volume', `${stateVolume}:${STATE_DIR}`, images.openclaw,
    ]);
    gatewayAddress = await containerIp(gateway, network);
    await waitHealthy(gateway);
    console.log(`gateway container start → healthy in ${Date.now() - started} ms`);
    await waitHealthy(caddy);
    caddyRootCa = await dockerOk(['exec', caddy, 'cat', CADDY_ROOT_CA]);
  }, SETUP_TIMEOUT_MS);

  afterAll(async () => {
    await docker(['rm', '--force', '--volumes', gateway, caddy]);
    await docker(['network', 'rm', network]);
    await docker(['volume', 'rm', ...volumes]);
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('answers /healthz on the container network, every process running as uid 1000 (node)', async () => {
    const response = await fetch(`http://${gatewayAddress}:${GATEWAY_PORT}/healthz`);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ ok: true });

    const uids = (await dockerOk(['exec', gateway, 'ps', '-eo', 'uid='])).trim().split(/\s+/);
    expect(new Set(uids)).toEqual(new Set(['1000']));
    expect((await dockerOk(['exec', gateway, 'id', '-un'])).trim()).toBe('node');
    expect((await dockerOk(['exec', gateway, 'node', '--version'])).trim()).toBe('v24.16.0');
  });

  it('validates configs offline: accepts the rendered one, rejects an invalid one naming the field', async () => {
    const valid = await openclaw(['config', 'validate', '--json']);
    expect(valid.code).toBe(0);
    expect(parseJson(valid.stdout)).toMatchObject({ valid: true, path: `${STATE_DIR}/openclaw.json` });

    const broken = gatewayConfig(token, caddyAddress, mem0PluginDir) as { gateway: Record<string, unknown> };
    broken.gateway.bind = '0.0.0.0'; // a host address where a bind mode belongs
    const writeInvalid = ['exec', '--interactive', gateway, 'sh', '-c', 'umask 077 && cat > /tmp/invalid.json'];
    await dockerOk(writeInvalid, JSON.stringify(broken));
    const invalid = await openclaw(['config', 'validate', '--json'], { OPENCLAW_CONFIG_PATH: '/tmp/invalid.json' });
    expect(invalid.code).not.toBe(0);
    const report = parseJson<{ valid: boolean; issues: { path: string; message: string }[] }>(invalid.stdout);
    expect(report.valid).toBe(false);
    expect(report.issues).toContainEqual(expect.objectContaining({ path: 'gateway.bind' }));
  });

  it('runs `openclaw security audit --json` offline: findings with checkId and severity, none critical', async () => {
    const audit = await openclaw(['security', 'audit', '--json']);
    expect(audit.code).toBe(0);
    const report = parseJson<{ summary: { critical: number }; findings: { checkId: string; severity: string }[] }>(
      audit.stdout,
    );
    expect(report.findings.length).toBeGreaterThan(0);
    for (const finding of report.findings) {
      expect(finding.checkId).toMatch(/^[a-z_]+(\.[a-z_]+)+$/);
      expect(['info', 'warn', 'critical']).toContain(finding.severity);
    }
    expect(report.summary.critical).toBe(0);
  });

  it('loads the mem0 plugin from the image (not the state volume), with better-sqlite3 built for Node 24', async () => {
    const inspect = await openclaw(['plugins', 'inspect', 'openclaw-mem0', '--json']);
    expect(inspect.code).toBe(0);
    expect(parseJson<{ plugin: object }>(inspect.stdout).plugin).toMatchObject({
      id: 'openclaw-mem0',
      status: 'loaded',
      origin: 'config',
      rootDir: mem0PluginDir,
    });

    const status = await openclaw(['mem0', 'status', '--json']);
    expect(status.code).toBe(0);
    expect(parseJson(status.stdout)).toMatchObject({ ok: true, mode: 'open-source' });

    // mem0's history DB and `memory` vector store: a file database on the state volume, opened and dropped.
    const probe = `
      const Database = require(${JSON.stringify(`${mem0PluginDir}/../../better-sqlite3`)});
      const file = ${JSON.stringify(`${STATE_DIR}/sqlite-probe-${suffix}.db`)};
      const db = new Database(file);
      db.exec('create table probe (v text)');
      db.prepare('insert into probe values (?)').run('ok');
      console.log(db.prepare('select v from probe').get().v, db.prepare('select sqlite_version() as v').get().v);
      db.close();
      require('node:fs').rmSync(file);`;
    expect(await dockerOk(['exec', gateway, 'node', '-e', probe])).toMatch(/^ok 3\.\d+\.\d+\n$/);
  });

  it("serves /healthz over HTTPS through Caddy, verified against Caddy's internal root CA only", async () => {
    expect(caddyRootCa).toMatch(/^-----BEGIN CERTIFICATE-----/);
    const answer = await httpsRequest(caddyAddress, '/healthz', caddyRootCa);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toMatchObject({ ok: true });

    // The same request with Node's public roots fails verification: the CA above is what made it pass.
    const withPublicRoots = new Promise((resolve, reject) => {
      const options = { host: caddyAddress, servername: DOMAIN, path: '/healthz', headers: { host: DOMAIN } };
      https.get(options, resolve).once('error', reject);
    });
    await expect(withPublicRoots).rejects.toThrow(/certificate/i);
  });

  it('passes WebSocket upgrades through Caddy; the gateway accepts its token there and refuses a wrong one', async () => {
    const key = randomBytes(16).toString('base64');
    const upgrade = await httpsRequest(caddyAddress, '/', caddyRootCa, {
      connection: 'Upgrade',
      upgrade: 'websocket',
      'sec-websocket-version': '13',
      'sec-websocket-key': key,
    });
    expect(upgrade.status).toBe(101);
    expect(upgrade.headers['sec-websocket-accept']).toBe(
      createHash('sha1').update(`${key}${WEBSOCKET_GUID}`).digest('base64'),
    );

    // OpenClaw's own client at the public URL (name resolved by the network alias, TLS checked against Caddy's CA).
    await dockerOk(['exec', '--interactive', gateway, 'sh', '-c', 'cat > /tmp/caddy-root.crt'], caddyRootCa);
    const health = (withToken: string) =>
      openclaw(['gateway', 'health', '--url', `wss://${DOMAIN}`, '--token', withToken, '--json'], {
        NODE_EXTRA_CA_CERTS: '/tmp/caddy-root.crt',
      });
    type HealthAnswer = { ok: boolean; error?: { code?: string; details?: { code?: string } } };

    // The token passes; the CLI is a new device reaching the gateway through a proxy, so pairing is what remains.
    const accepted = parseJson<HealthAnswer>((await health(token)).stdout);
    expect(accepted.error?.details?.code ?? '').not.toMatch(/^AUTH_/);
    expect(accepted.ok || accepted.error?.code === 'NOT_PAIRED').toBe(true);

    const refused = parseJson<HealthAnswer>((await health(randomBytes(24).toString('hex'))).stdout);
    expect(refused.ok).toBe(false);
    expect(refused.error?.details?.code).toBe('AUTH_TOKEN_MISMATCH');
  });
});
