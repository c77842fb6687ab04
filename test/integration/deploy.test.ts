/**
 * deploy end to end on a provisioned and hardened simulator, through the CLI, with the real OpenClaw image and Caddy:
 * a verified first deploy and a no-op re-run; a changed fallback and an added MCP server (OpenClaw's own
 * `openclaw mcp serve`, a real stdio server in the image) are taken live, the server reached and its tools listed by
 * the verification; a changed image changes only that and restarts the gateway once; a config OpenClaw rejects changes nothing live; a release that fails its health check rolls back; no secret
 * value reaches a rendered file, the CLI's output or the workflow history.
 *
 * Test double: the OpenRouter base URL points at 127.0.0.1:9 on the host, where nothing listens (no paid provider is
 * ever called; deploy makes no model call), and its API key is a random value from this process's environment.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatorExec, type Simulator } from '../../client/dev/simulator';
import type { SpecInput } from '../../model/schema';
import { stage, writeSpec, type Stage } from '../support/fixtures';
import { phase } from '../support/phases';
import { historyText, rawHistoryText } from '../support/temporal';

const IMAGE = 'steward/openclaw:2026.9.6';
const NEXT = 'steward/openclaw:2026.9.6-next';
const BROKEN = 'steward/openclaw:2026.9.6-broken';
const KEY_ENV = 'STEWARD_TEST_OPENROUTER_KEY';

let world: Stage;
let sim: Simulator;
const outputs: string[] = [];
const runs: { workflowId: string; runId: string }[] = [];

/** A real MCP server the gateway's image carries: OpenClaw's own channel bridge over stdio. */
const MCP_SERVERS = { openclaw: { command: 'openclaw', args: ['mcp', 'serve'] } };
const LIVE_FALLBACKS = ['openrouter/openai/gpt-5-mini', 'openrouter/google/gemini-2.5-flash'];

function stack(
  over: {
    image?: string;
    fallbacks?: string[];
    settings?: Record<string, unknown>;
    websocketPath?: string;
    mcp?: typeof MCP_SERVERS;
  } = {},
): Partial<SpecInput> {
  return {
    harden: { confirmSeconds: 30 },
    stack: {
      image: over.image ?? IMAGE,
      providers: {
        openrouter: { baseUrl: 'http://127.0.0.1:9/api/v1' },
        primary: 'openrouter/anthropic/claude-sonnet-4.5',
        fallbacks: over.fallbacks ?? ['openrouter/openai/gpt-5-mini'],
      },
      settings: over.settings ?? {},
      ...(over.mcp ? { mcp: { servers: over.mcp } } : {}),
    },
    proxy: { domain: 'agent.steward.test', ...(over.websocketPath ? { websocketPath: over.websocketPath } : {}) },
    secrets: {
      'gateway-token': { generate: { length: 48 } },
      'openrouter-api-key': { external: { env: KEY_ENV } },
    },
  };
}

async function deploy(extra: Partial<SpecInput>, ...args: string[]) {
  const file = writeSpec(world.keys, [sim], extra, `deploy-${randomBytes(3).toString('hex')}.yaml`);
  const r = await world.cli(file, 'deploy', ...args);
  outputs.push(r.stdout, r.stderr);
  if (r.doc) runs.push({ workflowId: r.doc.workflowId, runId: r.doc.runId });
  return r;
}

async function onHost(script: string): Promise<string> {
  const r = await simulatorExec(sim.container, ['sh', '-c', script]);
  return r.stdout.trim();
}

/** Service → container ID, image ID and restart count. */
async function containers(): Promise<Record<string, { id: string; image: string; restarts: number }>> {
  const out = await onHost(
    'docker ps -q --filter label=com.docker.compose.project=openclaw | xargs docker inspect -f \'{{index .Config.Labels "com.docker.compose.service"}} {{.Id}} {{.Image}} {{.RestartCount}}\'',
  );
  return Object.fromEntries(
    out.split('\n').map((l) => {
      const [service, id, image, restarts] = l.split(' ');
      return [service!, { id: id!, image: image!, restarts: Number(restarts) }];
    }),
  );
}

function buildImage(tag: string, dockerfile: string): void {
  execFileSync('docker', ['build', '-q', '-t', tag, '-'], { input: dockerfile, stdio: 'pipe' });
}

beforeAll(async () => {
  process.env[KEY_ENV] = `sk-or-v1-${randomBytes(24).toString('hex')}`;
  buildImage(NEXT, `FROM ${IMAGE}\nLABEL steward.test=next\n`);
  buildImage(
    BROKEN,
    `FROM ${IMAGE}\nLABEL steward.test=broken\nHEALTHCHECK --interval=2s --timeout=2s --start-period=1s --retries=2 CMD false\n`,
  );
  world = await stage({ taskQueue: 'deploy-test', simulators: 1, golden: 'hardened' });
  sim = world.sims[0]!;
  const hardened = await phase("harden with this file's spec", () =>
    world.cli(writeSpec(world.keys, [sim], stack()), 'harden'),
  );
  if (hardened.code !== 0) throw new Error(`harden failed: ${hardened.stderr || hardened.stdout}`);
}, 600_000);

afterAll(async () => {
  await world?.close();
  delete process.env[KEY_ENV];
});

describe('steward deploy', () => {
  it('deploys the stack, verifies it from the outside, and a re-run changes nothing', async () => {
    const first = await deploy(stack());
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    const host = first.doc!.hosts[0]!;
    expect(host.controls?.filter((c) => c.status === 'fail')).toEqual([]);
    expect(host.controls?.map((c) => c.control)).toEqual(
      expect.arrayContaining([
        'proxy.tls-healthz',
        'proxy.canvas',
        'gateway.ws-token',
        'gateway.ws-wrong-token',
        'gateway.ws-no-token',
        'gateway.port-outside',
        'gateway.port-binding',
        'gateway.security-audit',
      ]),
    );
    expect(host.changes.map((c) => c.resource)).toEqual(
      expect.arrayContaining([
        `image:${IMAGE}`,
        'secret:gateway-token',
        'secret:openrouter-api-key',
        'container:gateway',
        'container:proxy',
      ]),
    );

    // Secrets: files of the gateway's uid, 0600; the gateway port on loopback only.
    expect(
      await onHost('stat -c "%u:%g %a" /opt/openclaw/secrets/gateway-token /opt/openclaw/secrets/openrouter-api-key'),
    ).toBe('1000:1000 600\n1000:1000 600');
    expect(await onHost('docker port openclaw_gateway_1')).toBe('18789/tcp -> 127.0.0.1:18789');

    const again = await deploy(stack());
    expect(again.code).toBe(0);
    expect(again.doc!.hosts[0]!.changes).toEqual([]);
  }, 600_000);

  it('a config change is taken live: the gateway reloads openclaw.json, Caddy its Caddyfile; nothing is recreated', async () => {
    const before = await containers();
    const fallbacks = LIVE_FALLBACKS;
    // Another fallback, an MCP server and a WebSocket path: openclaw.json and the Caddyfile.
    const r = await deploy(stack({ fallbacks, websocketPath: '/ws', mcp: MCP_SERVERS }));
    expect(r.code).toBe(0);
    expect(r.doc!.hosts[0]!.changes.map((c) => `${c.action} ${c.resource}`)).toEqual([
      'update file:/opt/openclaw/state/openclaw.json',
      'update file:/opt/openclaw/proxy/Caddyfile',
      'reload container:gateway',
      'reload container:proxy',
      'update file:/opt/openclaw/.steward/release.json',
    ]);
    const after = await containers();
    expect(after.gateway!.id).toBe(before.gateway!.id);
    expect(after.proxy!.id).toBe(before.proxy!.id);
    expect(after.gateway!.restarts).toBe(0);
    // The running gateway accepted exactly the file written; Caddy sees the new file through its directory mount.
    expect(await onHost('sha256sum < /opt/openclaw/state/openclaw.json.last-good')).toBe(
      await onHost('sha256sum < /opt/openclaw/state/openclaw.json'),
    );
    expect(await onHost('docker exec openclaw_proxy_1 cat /etc/caddy/Caddyfile')).toContain('WebSocket URL (/ws)');
    expect(JSON.parse(await onHost('cat /opt/openclaw/state/openclaw.json')).agents.defaults.model.fallbacks).toEqual(
      fallbacks,
    );
    expect(r.doc!.hosts[0]!.controls?.filter((c) => c.status === 'fail')).toEqual([]);
    // The MCP server, added live, is reached through the running gateway's own MCP client and lists its tools.
    expect(r.doc!.hosts[0]!.controls?.find((c) => c.control === 'mcp.servers.openclaw')).toMatchObject({
      status: 'pass',
      observed: expect.stringMatching(/^\d+ tools? listed: [a-z_]+/),
    });
    expect(r.stdout).toMatch(/mcp\.servers\.openclaw/);

    // Back to the default path: the Caddyfile alone changes, and only Caddy reloads.
    const back = await deploy(stack({ fallbacks, mcp: MCP_SERVERS }));
    expect(back.code).toBe(0);
    expect(back.doc!.hosts[0]!.changes.map((c) => `${c.action} ${c.resource}`)).toEqual([
      'update file:/opt/openclaw/proxy/Caddyfile',
      'reload container:proxy',
      'update file:/opt/openclaw/.steward/release.json',
    ]);
    expect(await containers()).toEqual(after);
  }, 600_000);

  it('changing only the pinned image streams it and recreates only the gateway', async () => {
    const before = await containers();
    const r = await deploy(stack({ image: NEXT, fallbacks: LIVE_FALLBACKS, mcp: MCP_SERVERS }));
    expect(r.code).toBe(0);
    const changed = r.doc!.hosts[0]!.changes.map((c) => c.resource);
    expect(changed).toEqual([
      `image:${NEXT}`,
      'file:/opt/openclaw/compose.yaml',
      'container:gateway',
      'file:/opt/openclaw/.steward/release.json',
    ]);
    const after = await containers();
    const nextId = execFileSync('docker', ['image', 'inspect', '-f', '{{.Id}}', NEXT]).toString().trim();
    expect(after.gateway!.image).toBe(nextId);
    expect(after.gateway!.image).not.toBe(before.gateway!.image);
    expect(after.proxy!.id).toBe(before.proxy!.id);
  }, 600_000);

  it('a config OpenClaw rejects changes nothing live and names the field', async () => {
    const liveConfig = await onHost('sha256sum /opt/openclaw/state/openclaw.json /opt/openclaw/compose.yaml');
    const before = await containers();
    const r = await deploy(stack({ image: NEXT, settings: { gateway: { bind: 'moon' } } }));
    expect(r.code).toBe(1);
    expect(r.stderr + r.stdout).toMatch(/gateway\.bind: Invalid input/);
    expect(await onHost('sha256sum /opt/openclaw/state/openclaw.json /opt/openclaw/compose.yaml')).toBe(liveConfig);
    expect(await containers()).toEqual(before);
  }, 300_000);

  it('a release that fails its health check is rolled back and the previous one serves', async () => {
    const before = await containers();
    const r = await deploy(stack({ image: BROKEN }));
    expect(r.code).toBe(1);
    const host = r.doc!.hosts[0]!;
    expect(host.error).toMatch(/gateway: running\/unhealthy.*rolled back to the previous release/);
    const after = await containers();
    expect(after.gateway!.image).toBe(before.gateway!.image);
    expect(await onHost('docker image inspect -f "{{.Id}}" ' + NEXT)).toBe(before.gateway!.image);

    // The previous release is whole again: the spec that made it deploys as a no-op and verifies.
    const back = await deploy(stack({ image: NEXT, fallbacks: LIVE_FALLBACKS, mcp: MCP_SERVERS }));
    expect(back.code).toBe(0);
    expect(back.doc!.hosts[0]!.changes.map((c) => c.resource)).toEqual([]);
    expect(back.doc!.hosts[0]!.controls?.filter((c) => c.status === 'fail')).toEqual([]);
  }, 600_000);

  it('no secret value is in a rendered file, the CLI output or any workflow history', async () => {
    const token = await onHost('cat /opt/openclaw/secrets/gateway-token');
    const key = process.env[KEY_ENV]!;
    expect(token).toMatch(/^[A-Za-z0-9]{48}$/);
    expect(await onHost('cat /opt/openclaw/secrets/openrouter-api-key')).toBe(key);

    const files = await onHost(
      'cat /opt/openclaw/compose.yaml /opt/openclaw/state/openclaw.json /opt/openclaw/proxy/Caddyfile /opt/openclaw/.steward/release.json',
    );
    expect(files).toContain('gateway-token');
    expect(runs.length).toBeGreaterThanOrEqual(6);
    const histories = await Promise.all(runs.map((r) => historyText(world.env, r)));
    expect(histories.join('\n')).toContain('"operation":"deploy"');
    for (const text of [files, outputs.join('\n'), ...histories]) {
      for (const secret of [token, key]) {
        expect(text).not.toContain(secret);
        expect(text).not.toContain(Buffer.from(secret).toString('base64'));
      }
    }
    // What the failed deploys observed (OpenClaw's validation output, the unhealthy state) is in their decrypted
    // histories, and nowhere in the histories a client without the codec key reads.
    const observed = ['Invalid input', 'running/unhealthy'];
    for (const o of observed) expect(histories.join('\n')).toContain(o);
    const raw = (await Promise.all(runs.map((r) => rawHistoryText(world.env, r)))).join('\n');
    expect(raw).toContain('"eventType"');
    for (const text of [...observed, token, key]) expect(raw).not.toContain(text);
  }, 300_000);
});
