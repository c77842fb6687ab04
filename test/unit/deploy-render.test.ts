/** What deploy renders from the spec: openclaw.json, the compose project and the Caddyfile, and the spec's checks. */
/* eslint-disable @typescript-eslint/no-explicit-any -- rendered JSON documents, inspected by shape */
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import {
  composeProject,
  deepMerge,
  openclawConfig,
  renderCaddyfile,
  secretDeliveries,
  stackAddresses,
} from '../../model/render/stack';
import { renderCompose, renderStack } from '../../activities/deploy/stack';
import { specSchema, type SpecInput } from '../../model/schema';
import { validate, ValidationError } from '../../model/validate';

const base = { version: 1, hosts: [{ name: 'vps1', address: '203.0.113.7' }] } as const;

function specOf(extra: Partial<SpecInput> = {}) {
  return validate(specSchema, { ...base, ...extra }, 'steward.yaml');
}

const fullInput = {
  stack: {
    providers: {
      mode: 'replace',
      openrouter: { baseUrl: 'https://openrouter.ai/api/v1', models: [{ id: 'openai/gpt-5-mini' }] },
      primary: 'openrouter/anthropic/claude-sonnet-4.5',
      fallbacks: ['openrouter/openai/gpt-5-mini'],
    },
    mcp: {
      servers: { docs: { url: 'https://mcp.example.com/mcp' }, fetch: { command: 'uvx', args: ['mcp-server-fetch'] } },
    },
    integrations: {
      telegram: { allowFrom: ['12345'] },
      googleOAuth: { clientId: 'client-1.apps.googleusercontent.com' },
    },
    memory: { embedder: { baseUrl: 'http://embedder.internal:8080/v1', apiKeySecret: 'embedder-key', dimension: 256 } },
  },
  proxy: { domain: 'agent.example.com', tls: 'acme', acmeEmail: 'ops@example.com' },
  secrets: {
    'gateway-token': { generate: { length: 48 } },
    'openrouter-api-key': { external: { env: 'OPENROUTER_API_KEY' } },
    'telegram-bot-token': { external: { file: '/run/keys/telegram' } },
    'google-oauth-client-secret': { external: { command: ['pass', 'show', 'google'] } },
    'embedder-key': { external: { env: 'EMBEDDER_KEY' } },
  },
} satisfies Partial<SpecInput>;
const full = specOf(fullInput);

describe('openclaw.json', () => {
  const config = openclawConfig(full) as Record<string, any>;

  it('takes every credential from a file or the env, never a value', () => {
    expect(config.gateway.auth).toMatchObject({
      mode: 'token',
      token: { source: 'file', provider: 'steward-gateway-token', id: 'value' },
    });
    expect(config.secrets.providers['steward-gateway-token']).toEqual({
      source: 'file',
      path: '/run/secrets/gateway-token',
      mode: 'singleValue',
    });
    expect(config.models.providers.openrouter.apiKey).toEqual({
      source: 'file',
      provider: 'steward-openrouter-api-key',
      id: 'value',
    });
    expect(config.channels.telegram.tokenFile).toBe('/run/secrets/telegram-bot-token');
    expect(config.plugins.entries['openclaw-mem0'].config.oss.embedder.config.apiKey).toBe(
      '${STEWARD_MEM0_EMBEDDER_API_KEY}',
    );
  });

  it('routes models, trusts only the proxy and allows the public origin', () => {
    expect(config.models.mode).toBe('replace');
    expect(config.models.providers.openrouter.baseUrl).toBe('https://openrouter.ai/api/v1');
    expect(config.agents.defaults.model).toEqual({
      primary: 'openrouter/anthropic/claude-sonnet-4.5',
      fallbacks: ['openrouter/openai/gpt-5-mini'],
    });
    expect(config.gateway.trustedProxies).toEqual(['172.31.250.2']);
    expect(config.gateway.controlUi.allowedOrigins).toEqual(['https://agent.example.com']);
    expect(config.mcp.servers.docs).toEqual({
      url: 'https://mcp.example.com/mcp',
      transport: 'streamable-http',
      enabled: true,
    });
  });

  it('keeps the mem0 data on the memory volume with absolute paths', () => {
    const mem0 = config.plugins.entries['openclaw-mem0'].config;
    expect(mem0.mode).toBe('open-source');
    expect(mem0.oss.historyDbPath).toBe('/home/node/memory/history.db');
    expect(mem0.oss.vectorStore.config).toEqual({ dbPath: '/home/node/memory/vector_store.db', dimension: 256 });
  });

  it('deep-merges the operator settings last', () => {
    const spec = specOf({ stack: { settings: { gateway: { controlUi: { environment: { label: 'edge' } } } } } });
    const c = openclawConfig(spec) as Record<string, any>;
    expect(c.gateway.controlUi).toEqual({
      allowedOrigins: ['https://openclaw.home.arpa'],
      environment: { label: 'edge' },
    });
    expect(deepMerge({ a: [1], b: { c: 1 } }, { a: [2], b: { d: 2 } })).toEqual({ a: [2], b: { c: 1, d: 2 } });
  });
});

describe('compose project', () => {
  /** A stand-in digest that shows what it was given. */
  const digestOf = (definition: unknown) => `digest of ${JSON.stringify(definition)}`;
  const project = composeProject(full, digestOf) as Record<string, any>;
  const gateway = project.services.gateway;

  it('publishes the gateway on loopback only and Caddy on 80/443', () => {
    expect(gateway.ports).toEqual(['127.0.0.1:18789:18789']);
    expect(project.services.proxy.ports).toEqual(['80:80', '443:443']);
  });

  it('runs both read-only, without capabilities or new privileges, restarting unless stopped', () => {
    for (const s of [gateway, project.services.proxy]) {
      expect(s).toMatchObject({
        read_only: true,
        cap_drop: ['ALL'],
        security_opt: ['no-new-privileges:true'],
        restart: 'unless-stopped',
      });
    }
    expect(gateway.user).toBe('1000:1000');
  });

  it('hands secrets over as files and an env file, naming them only', () => {
    expect(gateway.secrets).toEqual(['gateway-token', 'openrouter-api-key', 'telegram-bot-token']);
    expect(project.secrets['gateway-token']).toEqual({ file: '/opt/openclaw/secrets/gateway-token' });
    expect(gateway.env_file).toEqual(['/opt/openclaw/secrets/gateway.env']);
    expect(secretDeliveries(full).filter((d) => d.kind === 'env')).toEqual([
      { secret: 'google-oauth-client-secret', kind: 'env', variable: 'OPENCLAW_GOOGLE_MEET_CLIENT_SECRET' },
      { secret: 'embedder-key', kind: 'env', variable: 'STEWARD_MEM0_EMBEDDER_API_KEY' },
    ]);
  });

  it('pins addresses on the stack network and labels each container with the digest of its own definition', () => {
    expect(gateway.networks.edge.ipv4_address).toBe('172.31.250.3');
    expect(project.services.proxy.networks.edge).toEqual({
      ipv4_address: '172.31.250.2',
      aliases: ['agent.example.com'],
    });
    const { labels, ...definition } = gateway;
    expect(labels).toEqual({ 'steward.definition-sha256': digestOf(definition) });
    const rendered = parse(renderCompose(full));
    expect(rendered.services.gateway.labels).toEqual({
      'steward.definition-sha256': renderStack(full).digests.gateway,
    });
    expect(rendered.services.proxy.labels).toEqual({ 'steward.definition-sha256': renderStack(full).digests.proxy });
  });

  it('config files are not part of it: a settings or proxy change recreates nothing, an image change does', () => {
    const settings = specOf({ ...fullInput, stack: { ...fullInput.stack, settings: { logging: { level: 'warn' } } } });
    expect(openclawConfig(settings)).not.toEqual(openclawConfig(full));
    expect(renderStack(settings).digests).toEqual(renderStack(full).digests);
    const acme = specOf({ ...fullInput, proxy: { ...fullInput.proxy, acmeEmail: 'security@example.com' } });
    expect(renderCaddyfile(acme)).not.toEqual(renderCaddyfile(full));
    expect(renderStack(acme).digests).toEqual(renderStack(full).digests);
    const image = specOf({ ...fullInput, stack: { ...fullInput.stack, image: 'steward/openclaw:2026.10.1' } });
    expect(renderStack(image).digests.gateway).not.toEqual(renderStack(full).digests.gateway);
    expect(renderStack(image).digests.proxy).toEqual(renderStack(full).digests.proxy);
    // Caddy reads the directory, so a Caddyfile replaced by rename is what `caddy reload` loads.
    expect(project.services.proxy.volumes[0]).toBe('/opt/openclaw/proxy:/etc/caddy:ro');
  });

  it('derives the addresses from any block', () => {
    const spec = specOf({ proxy: { subnet: '10.9.8.37/29' } });
    expect(stackAddresses(spec)).toEqual({ subnet: '10.9.8.32/29', proxy: '10.9.8.34', gateway: '10.9.8.35' });
  });
});

describe('Caddyfile', () => {
  it('uses the internal CA for internal TLS and the ACME account otherwise', () => {
    const internal = renderCaddyfile(specOf());
    expect(internal).toContain('openclaw.home.arpa {');
    expect(internal).toContain('\ttls internal');
    expect(internal).toContain(
      'reverse_proxy 172.31.250.3:18789 {\n\t\tlb_try_duration 30s\n\t\tlb_try_interval 250ms\n\t}',
    );
    const acme = renderCaddyfile(full);
    expect(acme).toContain('\temail ops@example.com');
    expect(acme).not.toContain('tls internal');
  });
});

describe('spec checks for the stack', () => {
  function issues(extra: Partial<SpecInput>): { path: string; message: string }[] {
    try {
      specOf(extra);
    } catch (err) {
      expect(err).toBeInstanceOf(ValidationError);
      return [...(err as ValidationError).issues];
    }
    throw new Error('expected the spec to be rejected');
  }

  it('names the field that refers to an undeclared secret', () => {
    expect(issues({ stack: { providers: { openrouter: {} } } })).toEqual([
      {
        path: 'stack.providers.openrouter.apiKeySecret',
        message: 'names secret "openrouter-api-key", which is not declared under secrets',
      },
    ]);
  });

  it('requires exactly one source per secret, an ACME contact and a model reference', () => {
    const found = issues({
      secrets: { 'gateway-token': {} },
      proxy: { tls: 'acme' },
      stack: { providers: { primary: 'gpt' } },
    });
    expect(found).toEqual(
      expect.arrayContaining([
        { path: 'secrets.gateway-token', message: 'must set exactly one of generate or external' },
        { path: 'proxy.acmeEmail', message: 'is required when tls is acme' },
        expect.objectContaining({ path: 'stack.providers.primary' }),
      ]),
    );
  });
});
