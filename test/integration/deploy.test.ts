/**
 * deploy end to end on a provisioned and hardened simulator, through the CLI, with the real OpenClaw image and Caddy:
 * a verified first deploy and a no-op re-run; a changed fallback and an added MCP server (OpenClaw's own
 * `openclaw mcp serve`, a real stdio server in the image) are taken live, the server reached and its tools listed by
 * the verification, and an agent turn through the gateway answered by the primary model; `steward verify` proves the
 * running stack without changing it, shows the first fallback answering while the primary fails and exits 1 naming
 * the chain when every model fails; the Telegram bot connects and answers a user's message through the agent, and an
 * MCP server removed, a base URL changed and a bot token replaced by hand are drift a repair undoes, and a rotated bot
 * token is proven by the channel's getMe; under `models.mode` merge the chain comes from OpenClaw's own model
 * catalogue, under replace the catalogue is the configured models alone; a changed image changes only that and restarts the gateway once; a config OpenClaw rejects changes nothing live; a release that
 * fails its health check rolls back; no secret value reaches a rendered file, the CLI's output or the workflow
 * history.
 *
 * Test doubles: the OpenRouter base URL points at the LLM test double (test/doubles/llm.ts) and the Telegram API root
 * at the Bot API test double (test/doubles/telegram.ts), both on the stack's network — no paid or external service is
 * ever called; the API key and bot token are random values from this process's environment.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatorExec, type Simulator } from '../../client/dev/simulator';
import type { SpecInput } from '../../model/schema';
import { stage, writeSpec, type Stage } from '../support/fixtures';
import { keyDigest, LLM_DOUBLE_URL, llmCalls, resetLlmDouble, setLlmMode, startLlmDouble } from '../support/llm-double';
import { botCalls, botSent, messageBot, startTelegramDouble, TELEGRAM_DOUBLE_URL } from '../support/telegram-double';
import { phase } from '../support/phases';
import { historyText, rawHistoryText } from '../support/temporal';

const IMAGE = 'steward/openclaw:2026.9.6';
const NEXT = 'steward/openclaw:2026.9.6-next';
const BROKEN = 'steward/openclaw:2026.9.6-broken';
const KEY_ENV = 'STEWARD_TEST_OPENROUTER_KEY';
const BOT_TOKEN_ENV = 'STEWARD_TEST_TELEGRAM_TOKEN';
/** The Telegram user the bot answers (`allowFrom`). */
const TELEGRAM_USER = 4242;

let world: Stage;
let sim: Simulator;
const outputs: string[] = [];
const runs: { workflowId: string; runId: string }[] = [];
/** The bot token the rotation replaced. */
let retiredBotToken = '';

/**
 * A real MCP server the gateway's image carries: OpenClaw's own channel bridge over stdio; verification has the agent
 * call its read-only `conversations_list`.
 */
const MCP_SERVERS = {
  openclaw: { command: 'openclaw', args: ['mcp', 'serve'], verifyTool: { name: 'conversations_list' } },
};
const PRIMARY = 'openrouter/anthropic/claude-sonnet-4.5';
const LIVE_FALLBACKS = ['openrouter/openai/gpt-5-mini', 'openrouter/google/gemini-2.5-flash'];

function stack(
  over: {
    image?: string;
    fallbacks?: string[];
    settings?: Record<string, unknown>;
    websocketPath?: string;
    mcp?: typeof MCP_SERVERS;
    /** false: no agent turn in the verification (the first deploy, before the LLM double is on the stack's network). */
    turn?: boolean;
    /** The Telegram bot, at the Bot API test double. */
    telegram?: boolean;
    /** `models.mode: replace`, with the chain's models configured (OpenClaw's default, merge, needs none). */
    replace?: boolean;
  } = {},
): Partial<SpecInput> {
  const chain = [PRIMARY, ...(over.fallbacks ?? ['openrouter/openai/gpt-5-mini'])];
  return {
    harden: { confirmSeconds: 30 },
    stack: {
      image: over.image ?? IMAGE,
      providers: {
        openrouter: {
          baseUrl: LLM_DOUBLE_URL,
          ...(over.replace ? { models: chain.map((m) => ({ id: m.slice('openrouter/'.length) })) } : {}),
        },
        ...(over.replace ? { mode: 'replace' as const } : {}),
        primary: PRIMARY,
        fallbacks: over.fallbacks ?? ['openrouter/openai/gpt-5-mini'],
        verifyTurn: over.turn ?? true,
      },
      settings: {
        // The bot's turns are real DM sessions: no memory recall or capture, which would call the embedding provider
        // (memory.test.ts proves memory, with its own test double).
        ...(over.telegram
          ? { plugins: { entries: { 'openclaw-mem0': { config: { autoRecall: false, autoCapture: false } } } } }
          : {}),
        ...over.settings,
      },
      ...(over.mcp ? { mcp: { servers: over.mcp } } : {}),
      ...(over.telegram
        ? {
            integrations: {
              telegram: { apiRoot: TELEGRAM_DOUBLE_URL, dmPolicy: 'allowlist', allowFrom: [String(TELEGRAM_USER)] },
            },
          }
        : {}),
    },
    proxy: { domain: 'agent.steward.test', ...(over.websocketPath ? { websocketPath: over.websocketPath } : {}) },
    secrets: {
      'gateway-token': { generate: { length: 48 } },
      'openrouter-api-key': { external: { env: KEY_ENV } },
      ...(over.telegram ? { 'telegram-bot-token': { external: { env: BOT_TOKEN_ENV } } } : {}),
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

async function verify(extra: Partial<SpecInput>) {
  const file = writeSpec(world.keys, [sim], extra, `verify-${randomBytes(3).toString('hex')}.yaml`);
  const r = await world.cli(file, 'verify');
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
  process.env[BOT_TOKEN_ENV] = `7000000001:${randomBytes(26).toString('base64url')}`;
  buildImage(NEXT, `FROM ${IMAGE}\nLABEL steward.test=next\n`);
  buildImage(
    BROKEN,
    `FROM ${IMAGE}\nLABEL steward.test=broken\nHEALTHCHECK --interval=2s --timeout=2s --start-period=1s --retries=2 CMD false\n`,
  );
  world = await stage({ taskQueue: 'deploy-test', simulators: 1, golden: 'hardened' });
  sim = world.sims[0]!;
  const hardened = await phase("harden with this file's spec", () =>
    world.cli(writeSpec(world.keys, [sim], stack({ turn: false })), 'harden'),
  );
  if (hardened.code !== 0) throw new Error(`harden failed: ${hardened.stderr || hardened.stdout}`);
}, 600_000);

afterAll(async () => {
  await world?.close();
  delete process.env[KEY_ENV];
  delete process.env[BOT_TOKEN_ENV];
});

describe('steward deploy', () => {
  it('deploys the stack, verifies it from the outside, and a re-run changes nothing', async () => {
    const first = await deploy(stack({ turn: false }));
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
    // models.mode merge (the default): no model configured, the chain's two come from OpenClaw's own catalogue.
    expect(host.controls?.find((c) => c.control === 'providers.catalogue')).toMatchObject({
      status: 'pass',
      expected: "merge: the 0 configured models and OpenClaw's catalogue, the chain's among them",
      observed: "2 models listed: 0 configured, 2 from OpenClaw's catalogue",
    });
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

    const again = await deploy(stack({ turn: false }));
    expect(again.code).toBe(0);
    expect(again.doc!.hosts[0]!.changes).toEqual([]);
    expect(again.doc!.hosts[0]!.controls?.map((c) => c.control)).not.toContain('providers.agent-turn');
  }, 600_000);

  it('a config change is taken live: the gateway reloads openclaw.json, Caddy its Caddyfile; nothing is recreated', async () => {
    await startLlmDouble(sim, IMAGE);
    const before = await containers();
    const fallbacks = LIVE_FALLBACKS;
    // Another fallback, an MCP server, the model catalogue replaced by the chain's models, and a WebSocket path:
    // openclaw.json and the Caddyfile.
    const r = await deploy(stack({ fallbacks, websocketPath: '/ws', mcp: MCP_SERVERS, replace: true }));
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
    // models.mode replace: the catalogue is the three models configured (the chain's), nothing of OpenClaw's own.
    expect(r.doc!.hosts[0]!.controls?.find((c) => c.control === 'providers.catalogue')).toMatchObject({
      status: 'pass',
      expected: "replace: the 3 configured models only, the chain's among them",
      observed: "3 models listed: 3 configured, 0 from OpenClaw's catalogue",
    });
    // The MCP server, added live, is reached through the running gateway's own MCP client and lists its tools.
    expect(r.doc!.hosts[0]!.controls?.find((c) => c.control === 'mcp.servers.openclaw')).toMatchObject({
      status: 'pass',
      observed: expect.stringMatching(/^\d+ tools? listed: [a-z_]+/),
    });
    expect(r.stdout).toMatch(/mcp\.servers\.openclaw/);
    // One agent turn through the gateway reached the primary model, with the spec's key, and the model's call of the
    // server's tool (through OpenClaw's tool_call, as MCP tools are reached) executed.
    expect(r.doc!.hosts[0]!.controls?.find((c) => c.control === 'providers.agent-turn')).toMatchObject({
      status: 'pass',
      // The reply as kept: scrubbed of every run of 16 or more characters (the model's name in the double's answer).
      observed: `answered by ${PRIMARY}: "test double [...] answering"`,
    });
    expect(r.doc!.hosts[0]!.controls?.find((c) => c.control === 'mcp.servers.openclaw.call')).toMatchObject({
      status: 'pass',
      observed: 'called by the agent, returned',
    });
    const calls = await llmCalls(sim);
    expect(new Set(calls.map((c) => `${c.model} ${c.mode} ${c.key}`))).toEqual(
      new Set([`anthropic/claude-sonnet-4.5 answer ${keyDigest(process.env[KEY_ENV]!)}`]),
    );
    expect(calls.flatMap((c) => c.called)).toContain('tool_call');
    // The turn's session is gone from the agent's state.
    const sessions = JSON.parse(
      await onHost('docker exec openclaw_gateway_1 openclaw sessions --json 2>/dev/null'),
    ) as {
      sessions: { key: string }[];
    };
    expect(Array.isArray(sessions.sessions)).toBe(true);
    expect(sessions.sessions.map((x) => x.key)).not.toContain('agent:main:cron:steward-verify');
  }, 600_000);

  it('the Telegram bot connects through its Bot API root and answers a message; a hand-made MCP removal, base URL and bot token are drift a repair undoes; a rotated token connects', async () => {
    await startTelegramDouble(sim, IMAGE);
    // No verification turn in these deploys: the bot's own turn below is the one this test is about.
    const spec = stack({ fallbacks: LIVE_FALLBACKS, mcp: MCP_SERVERS, telegram: true, turn: false });
    const proxyBefore = (await containers()).proxy!.id;
    const r = await deploy(spec);
    expect(r.code, r.stdout.slice(-2000)).toBe(0);
    const controls = r.doc!.hosts[0]!.controls ?? [];
    expect(controls.filter((c) => c.status === 'fail')).toEqual([]);
    // From the live-config test's stack (this test runs after it): the default WebSocket path back in the Caddyfile,
    // and OpenClaw's own catalogue back under models.mode merge (the chain's three models from it, none configured).
    expect(r.doc!.hosts[0]!.changes.map((c) => c.resource)).toContain('file:/opt/openclaw/proxy/Caddyfile');
    expect((await containers()).proxy!.id).toBe(proxyBefore); // Caddy took its new file live
    expect(await onHost('docker exec openclaw_proxy_1 cat /etc/caddy/Caddyfile')).not.toContain('WebSocket URL (/ws)');
    expect(controls.find((c) => c.control === 'providers.catalogue')).toMatchObject({
      status: 'pass',
      observed: "3 models listed: 0 configured, 3 from OpenClaw's catalogue",
    });
    expect(controls.find((c) => c.control === 'integrations.telegram')).toMatchObject({
      status: 'pass',
      observed: 'connected as @steward_test_bot (polling)',
    });
    const token = keyDigest(process.env[BOT_TOKEN_ENV]!);
    expect((await botCalls(sim)).filter((c) => c.method === 'getMe').map((c) => c.token)).toContain(token);

    // A user's message reaches the agent through the channel, and the model's answer comes back to that user.
    await messageBot(sim, TELEGRAM_USER, 'hello from the steward test');
    const answer = 'test double anthropic/claude-sonnet-4.5 answering';
    const deadline = Date.now() + 150_000;
    let replies: string[] = [];
    while (Date.now() < deadline && !replies.includes(answer)) {
      await new Promise((resolve) => setTimeout(resolve, 2000));
      replies = (await botSent(sim)).filter((m) => m.chat === TELEGRAM_USER).map((m) => m.text);
    }
    expect(replies, JSON.stringify(replies)).toContain(answer);

    // By hand: the MCP server removed and the provider's base URL changed in the running config, the bot token
    // replaced. The gateway takes the config live; drift names each; a repair puts the spec's back and verifies.
    const inGateway = (args: string) => onHost(`docker exec openclaw_gateway_1 openclaw ${args}`);
    await inGateway('mcp unset openclaw');
    await inGateway('config set models.providers.openrouter.baseUrl http://llm-double:8080/elsewhere');
    await onHost('echo 7000000001:replaced-by-hand > /opt/openclaw/secrets/telegram-bot-token');
    const file = writeSpec(world.keys, [sim], spec, `drift-${randomBytes(3).toString('hex')}.yaml`);
    const drift = await world.cli(file, 'drift', '--no-audit');
    outputs.push(drift.stdout, drift.stderr);
    expect(drift.code, drift.stdout.slice(-2000)).toBe(2);
    const rows = drift.doc!.hosts[0]!.changes;
    const config = JSON.stringify(rows.find((c) => c.resource === 'file:/opt/openclaw/state/openclaw.json')?.before);
    expect(config).toContain('mcp.servers.openclaw');
    expect(config).toContain('models.providers.openrouter.baseUrl');
    expect(rows.map((c) => c.resource)).toContain('secret:telegram-bot-token');
    const repair = await world.cli(file, 'drift', '--repair');
    outputs.push(repair.stdout, repair.stderr);
    if (repair.doc) runs.push({ workflowId: repair.doc.workflowId, runId: repair.doc.runId });
    expect(repair.code, repair.stdout.slice(-3000)).toBe(0);
    expect(await onHost('cat /opt/openclaw/secrets/telegram-bot-token')).toBe(process.env[BOT_TOKEN_ENV]);
    // The repair deployed the spec again, and its verification (which rolls back on a failing control) proved the MCP
    // server, the routing and the bot.
    const live = JSON.parse(await onHost('cat /opt/openclaw/state/openclaw.json')) as {
      mcp: { servers: Record<string, unknown> };
      models: { providers: { openrouter: { baseUrl: string } } };
    };
    expect(Object.keys(live.mcp.servers)).toEqual(['openclaw']);
    expect(live.models.providers.openrouter.baseUrl).toBe(LLM_DOUBLE_URL);
    const clean = await world.cli(file, 'drift', '--no-audit');
    expect(clean.code, clean.stdout.slice(-2000)).toBe(0);

    // A new bot token from its source, rotated: the gateway restarts with it, and rotation's proof is the channel's
    // getMe answered for the new token; the bot polls with it from then on.
    retiredBotToken = process.env[BOT_TOKEN_ENV]!;
    process.env[BOT_TOKEN_ENV] = `7000000001:${randomBytes(26).toString('base64url')}`;
    const seen = (await botCalls(sim)).length;
    const rotated = await world.cli(file, 'rotate', 'telegram-bot-token');
    outputs.push(rotated.stdout, rotated.stderr);
    if (rotated.doc) runs.push({ workflowId: rotated.doc.workflowId, runId: rotated.doc.runId });
    expect(rotated.code, rotated.stdout.slice(-2000)).toBe(0);
    const proof = rotated.doc!.hosts[0]!.controls ?? [];
    expect(proof.find((c) => c.control === 'secret.telegram-bot-token.new-accepted')).toMatchObject({
      status: 'pass',
      observed: 'connected as @steward_test_bot (polling)',
    });
    expect(proof.find((c) => c.control === 'secret.telegram-bot-token.old-refused')?.status).toBe('not-applicable');
    const after = (await botCalls(sim)).slice(seen);
    const fresh = keyDigest(process.env[BOT_TOKEN_ENV]!);
    expect(after.filter((c) => c.method === 'getMe').map((c) => c.token)).toContain(fresh);
    // The old token's last calls are those of the gateway it restarted; the last call is the new token's.
    expect(after.at(-1)?.token).toBe(fresh);
    expect(await onHost('cat /opt/openclaw/secrets/telegram-bot-token')).toBe(process.env[BOT_TOKEN_ENV]);
  }, 600_000);

  it('verify proves the running stack without changing it; a failing primary is answered by the first fallback, and every model failing exits 1 naming the chain', async () => {
    // The stack as the Telegram test left it; its failing models come last in the file's turns (OpenClaw may cool a
    // failing provider down for a while, and no later test asks a model).
    const spec = stack({ fallbacks: LIVE_FALLBACKS, mcp: MCP_SERVERS, telegram: true });
    const before = await containers();
    const files = () => onHost('sha256sum /opt/openclaw/state/openclaw.json /opt/openclaw/compose.yaml');
    const liveFiles = await files();
    await resetLlmDouble(sim);

    // The primary answers HTTP 500: OpenClaw retries it, then asks the first fallback, which answers. OpenClaw retries
    // a failing model up to 8 times over about a minute; the agent's own settings (settings.json in its agent
    // directory, which steward does not manage) cut that to one retry here, to keep the test short.
    await onHost(
      'd=/opt/openclaw/state/agents/main/agent && mkdir -p $d && echo \'{"retry":{"provider":{"maxRetries":1}}}\' > $d/settings.json && chown -R 1000:1000 /opt/openclaw/state/agents',
    );
    await setLlmMode(sim, 'anthropic/claude-sonnet-4.5', 'fail');
    const fallback = await verify(spec);
    expect(fallback.code, fallback.stdout.slice(-2000)).toBe(0);
    const host = fallback.doc!.hosts[0]!;
    expect(host.changes).toEqual([]);
    expect(host.controls?.filter((c) => c.status === 'fail')).toEqual([]);
    expect(host.controls?.map((c) => c.control)).toEqual(
      expect.arrayContaining([
        'proxy.tls-healthz',
        'gateway.ws-token',
        'gateway.security-audit',
        'gateway.model-routing',
        'mcp.servers.openclaw',
        'mcp.servers.openclaw.call',
        'integrations.telegram',
        'providers.agent-turn',
      ]),
    );
    expect(fallback.stdout).toMatch(/providers\.agent-turn/);
    const turn = host.controls?.find((c) => c.control === 'providers.agent-turn');
    expect(turn).toMatchObject({
      status: 'pass',
      observed: `answered by fallback ${LIVE_FALLBACKS[0]} after ${PRIMARY}: HTTP 500 (server_error): "test double [...] answering"`,
    });
    expect(fallback.doc!.hosts[0]!.findings.map((f) => f.id)).toContain('providers.primary-failing');
    expect((await llmCalls(sim)).map((c) => c.model).slice(-1)).toEqual(['openai/gpt-5-mini']);

    // Every model of the chain fails (HTTP 500, an outage): no answer. A deploy would keep its release and report it;
    // verify counts it: exit 1 naming the chain and each model's failure.
    for (const m of ['anthropic/claude-sonnet-4.5', 'openai/gpt-5-mini', 'google/gemini-2.5-flash'])
      await setLlmMode(sim, m, 'fail');
    const none = await verify(spec);
    expect(none.code, none.stdout.slice(-2000)).toBe(1);
    const error = none.doc!.hosts[0]!.error ?? '';
    expect(error).toContain(
      `providers.agent-turn: no model of the chain (${PRIMARY} then ${LIVE_FALLBACKS.join(' then ')}) answered: `,
    );
    for (const m of [PRIMARY, ...LIVE_FALLBACKS]) expect(error).toContain(`${m}: HTTP 500`);
    await resetLlmDouble(sim);
    await onHost('rm -f /opt/openclaw/state/agents/main/agent/settings.json');

    // Nothing was changed or restarted by any of it.
    expect(await containers()).toEqual(before);
    expect(await files()).toBe(liveFiles);
  }, 600_000);

  it('changing only the pinned image streams it and recreates only the gateway', async () => {
    const before = await containers();
    const r = await deploy(
      stack({ image: NEXT, fallbacks: LIVE_FALLBACKS, mcp: MCP_SERVERS, telegram: true, turn: false }),
    );
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
    const r = await deploy(stack({ image: BROKEN, telegram: true, turn: false }));
    expect(r.code).toBe(1);
    const host = r.doc!.hosts[0]!;
    expect(host.error).toMatch(/gateway: running\/unhealthy.*rolled back to the previous release/);
    const after = await containers();
    expect(after.gateway!.image).toBe(before.gateway!.image);
    expect(await onHost('docker image inspect -f "{{.Id}}" ' + NEXT)).toBe(before.gateway!.image);

    // The previous release is whole again: the spec that made it deploys as a no-op and verifies.
    const back = await deploy(
      stack({ image: NEXT, fallbacks: LIVE_FALLBACKS, mcp: MCP_SERVERS, telegram: true, turn: false }),
    );
    expect(back.code).toBe(0);
    expect(back.doc!.hosts[0]!.changes.map((c) => c.resource)).toEqual([]);
    expect(back.doc!.hosts[0]!.controls?.filter((c) => c.status === 'fail')).toEqual([]);
  }, 600_000);

  it('no secret value is in a rendered file, the CLI output or any workflow history', async () => {
    const token = await onHost('cat /opt/openclaw/secrets/gateway-token');
    const key = process.env[KEY_ENV]!;
    const botTokens = [process.env[BOT_TOKEN_ENV]!, retiredBotToken].filter(Boolean);
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
      for (const secret of [token, key, ...botTokens]) {
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
    for (const text of [...observed, token, key, ...botTokens]) expect(raw).not.toContain(text);
  }, 300_000);
});
