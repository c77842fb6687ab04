/**
 * Model routing (model/routing.ts): what `openclaw models status --json` says the gateway resolved, read without any
 * key material, and compared with the routing the spec renders.
 */
import { describe, expect, it } from 'vitest';
import {
  expectedRouting,
  judgeRouting,
  parseModelsStatus,
  routingDifferences,
  type Routing,
} from '../../model/routing';
import { specSchema } from '../../model/schema';
import { DOC_HOST, DOC_HOST_KEY, oneHostSpec } from '../support/specs';

/** Trimmed from OpenClaw 2026.9.6's output with OPENAI_API_KEY set in the container's environment (fake keys). */
const STATUS = JSON.stringify({
  configPath: '/home/node/.openclaw/openclaw.json',
  defaultModel: 'openrouter/steward/primary',
  resolvedDefault: 'openrouter/steward/primary',
  fallbacks: ['openrouter/steward/fallback-1'],
  auth: {
    providers: [
      {
        provider: 'openai',
        effective: { kind: 'env', detail: 'sk-fake-...ijklmnop' },
        profiles: { count: 0, labels: [] },
        env: { value: 'sk-fake-...ijklmnop', source: 'env: OPENAI_API_KEY' },
      },
      {
        provider: 'openrouter',
        effective: { kind: 'models.json', detail: 'sk-or-te...34567890' },
        modelsJson: { value: 'sk-or-te...34567890', source: 'models.json: ~/.openclaw/agents/main/agent/models.json' },
      },
    ],
  },
});

describe('openclaw models status, read', () => {
  it('keeps the chain, provider ids, kinds and variable names, and no key material', () => {
    const routing = parseModelsStatus(`[plugins] loaded\n${STATUS}`);
    expect(routing).toEqual({
      primary: 'openrouter/steward/primary',
      fallbacks: ['openrouter/steward/fallback-1'],
      providers: [
        { id: 'openai', kind: 'env', variable: 'OPENAI_API_KEY' },
        { id: 'openrouter', kind: 'models.json' },
      ],
    });
    expect(JSON.stringify(routing)).not.toMatch(/sk-|ijklmnop|34567890/);
  });

  it('refuses output that is not the status document, naming where, and quoting none of it', () => {
    expect(() => parseModelsStatus('Error: config invalid')).toThrow('it printed no JSON');
    // A parser error would quote the text around the fault: a masked key, here.
    const broken = '{\n  "auth": { "detail": sk-or-te...34567890 }\n}\n';
    expect(() => parseModelsStatus(broken)).toThrow(/^its output is not JSON$/);
    // Log lines before and after the document are not part of it.
    expect(parseModelsStatus(`[plugins] {loaded}\n${JSON.stringify({ fallbacks: [] }, null, 2)}\n[exit] {}`)).toEqual({
      primary: null,
      fallbacks: [],
      providers: [],
    });
    expect(() => parseModelsStatus(JSON.stringify({ fallbacks: 'x' }))).toThrow('unexpected output: fallbacks');
    const forged = JSON.stringify({ resolvedDefault: 'a/b; rm -rf /', fallbacks: [] });
    expect(() => parseModelsStatus(forged)).toThrow('unexpected value at primary');
  });
});

describe('routing against the spec', () => {
  const spec = specSchema.parse({
    version: 1,
    hosts: [{ ...DOC_HOST, hostKey: DOC_HOST_KEY }],
    secrets: {
      'gateway-token': { generate: { length: 48 } },
      'openrouter-api-key': { external: { env: 'OPENROUTER_KEY' } },
    },
    stack: {
      providers: {
        openrouter: { baseUrl: 'http://llm-double:8080/v1' },
        primary: 'openrouter/steward/primary',
        fallbacks: ['openrouter/steward/fallback-1'],
      },
    },
  });
  const matching: Routing = {
    primary: 'openrouter/steward/primary',
    fallbacks: ['openrouter/steward/fallback-1'],
    providers: [{ id: 'openrouter', kind: 'models.json' }],
  };

  it('expects the chain and providers the rendered config names', () => {
    expect(expectedRouting(spec)).toEqual({
      primary: 'openrouter/steward/primary',
      fallbacks: ['openrouter/steward/fallback-1'],
      providers: ['openrouter'],
      configured: ['openrouter'],
    });
    // A spec that leaves the model to OpenClaw is not compared on it, and allows no provider.
    expect(expectedRouting(oneHostSpec())).toEqual({ providers: [], configured: [] });
  });

  it('finds nothing when the gateway runs what the spec says', () => {
    expect(routingDifferences(expectedRouting(spec), matching)).toEqual([]);
    // A provider the gateway knows of but cannot use is not routing anywhere.
    const missing = { ...matching, providers: [...matching.providers, { id: 'anthropic', kind: 'missing' }] };
    expect(routingDifferences(expectedRouting(spec), missing)).toEqual([]);
  });

  it('leaves a deploy what it renders away; an auth profile or an unread routing is a finding', () => {
    const withProfile: Routing = {
      ...matching,
      providers: [...matching.providers, { id: 'anthropic', kind: 'profiles' }],
    };
    const judged = judgeRouting(spec, withProfile);
    expect(judged.differences).toEqual([]);
    expect(judged.findings.map((f) => [f.id, f.resource])).toEqual([
      ['openclaw.routing.auth-profile', 'routing:provider:anthropic'],
    ]);
    expect(judgeRouting(spec, { error: 'its output is not JSON' })).toEqual({
      differences: [],
      findings: [
        {
          id: 'openclaw.routing.unavailable',
          severity: 'medium',
          message: 'model routing not read: its output is not JSON',
        },
      ],
    });
  });

  it('takes the provider of a default OpenClaw resolved under another name as the configured one', () => {
    const aliased = specSchema.parse({ ...oneHostSpec(), stack: { providers: { primary: 'bedrock/claude-x' } } });
    const observed: Routing = {
      primary: 'bedrock/claude-x',
      resolved: 'amazon-bedrock/claude-x',
      fallbacks: [],
      providers: [{ id: 'amazon-bedrock', kind: 'env', variable: 'AWS_ACCESS_KEY_ID' }],
    };
    expect(routingDifferences(expectedRouting(aliased), observed)).toEqual([]);
  });

  it('names an auto-detected provider, a moved default, a changed chain and an unusable configured provider', () => {
    const moved: Routing = {
      primary: 'openai/gpt-5-mini',
      fallbacks: [],
      providers: [
        { id: 'openai', kind: 'env', variable: 'OPENAI_API_KEY' },
        { id: 'anthropic', kind: 'profiles' },
        { id: 'openrouter', kind: 'missing' },
      ],
    };
    const found = routingDifferences(expectedRouting(spec), moved);
    expect(found.map((d) => [d.resource, d.expected, d.observed])).toEqual([
      ['routing:default-model', 'openrouter/steward/primary', 'openai/gpt-5-mini'],
      ['routing:fallbacks', ['openrouter/steward/fallback-1'], []],
      ['routing:provider:openai', undefined, 'auto-detected from OPENAI_API_KEY'],
      ['routing:provider:anthropic', undefined, 'auto-detected from an auth profile in the state directory'],
      ['routing:provider:openrouter', 'usable', 'no usable key'],
    ]);
    expect(found.map((d) => d.profile ?? false)).toEqual([false, false, false, true, false]);
    expect(found[2]!.message).toBe(
      'provider openai is auto-detected from OPENAI_API_KEY; the spec does not configure it',
    );
  });
});
