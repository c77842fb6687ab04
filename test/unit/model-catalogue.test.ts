/**
 * The model catalogue against `models.mode` (model/model-catalogue.ts): what `openclaw models list --all --json`
 * printed, judged for `merge` (OpenClaw's own catalogue kept beside the configured models) and `replace` (only the
 * configured ones, so a chain model left out cannot answer).
 */
import { describe, expect, it } from 'vitest';
import { judgeCatalogue, parseModelsList } from '../../model/model-catalogue';
import { specSchema, type SpecInput } from '../../model/schema';
import { DOC_HOST, DOC_HOST_KEY } from '../support/specs';

const PRIMARY = 'openrouter/anthropic/claude-sonnet-4.5';
const FALLBACK = 'openrouter/openai/gpt-5-mini';

function spec(mode: 'merge' | 'replace', models: string[]) {
  return specSchema.parse({
    version: 1,
    hosts: [{ ...DOC_HOST, hostKey: DOC_HOST_KEY }],
    secrets: {
      'gateway-token': { generate: { length: 48 } },
      'openrouter-api-key': { external: { env: 'OPENROUTER_KEY' } },
    },
    stack: {
      providers: {
        mode,
        openrouter: { baseUrl: 'http://llm-double:8080/v1', models: models.map((id) => ({ id })) },
        primary: PRIMARY,
        fallbacks: [FALLBACK],
      },
    },
  } satisfies SpecInput);
}

/** The shape OpenClaw 2026.9.6 prints (trimmed). */
function printed(keys: string[]) {
  const models = keys.map((key) => ({ key, name: key, input: 'text', available: true, tags: [] }));
  return `[plugins] loaded\n${JSON.stringify({ count: keys.length, models }, null, 2)}\n`;
}

describe('the model catalogue against models.mode', () => {
  it("merge passes with the chain from OpenClaw's catalogue, configured or not", () => {
    // As a deployed gateway lists it with no model configured: the chain's OpenRouter models, from OpenClaw's own.
    expect(judgeCatalogue(spec('merge', []), parseModelsList(printed([PRIMARY, FALLBACK])))).toEqual({
      control: 'providers.catalogue',
      expected: "merge: the 0 configured models and OpenClaw's catalogue, the chain's among them",
      observed: "2 models listed: 0 configured, 2 from OpenClaw's catalogue",
      pass: true,
    });
    const s = spec('merge', ['anthropic/claude-sonnet-4.5', 'mistral/small']);
    expect(judgeCatalogue(s, parseModelsList(printed([PRIMARY, FALLBACK, 'openrouter/mistral/small'])))).toMatchObject({
      observed: "3 models listed: 2 configured, 1 from OpenClaw's catalogue",
      pass: true,
    });
    expect(judgeCatalogue(s, parseModelsList(printed([PRIMARY])))).toMatchObject({
      observed: `1 models listed: 1 configured, 0 from OpenClaw's catalogue; not listed: openrouter/mistral/small, ${FALLBACK}`,
      pass: false,
    });
  });

  it('replace passes with only the configured models; one more fails, and so does a chain model not configured', () => {
    const s = spec('replace', ['anthropic/claude-sonnet-4.5', 'openai/gpt-5-mini']);
    expect(judgeCatalogue(s, parseModelsList(printed([PRIMARY, FALLBACK])))).toMatchObject({
      expected: "replace: the 2 configured models only, the chain's among them",
      observed: "2 models listed: 2 configured, 0 from OpenClaw's catalogue",
      pass: true,
    });
    expect(judgeCatalogue(s, parseModelsList(printed([PRIMARY, FALLBACK, 'claude-cli/claude-opus-5'])))).toMatchObject({
      observed: "3 models listed: 2 configured, 1 from OpenClaw's catalogue",
      pass: false,
    });
    // OpenClaw under replace lists only what is configured: the fallback left out is not routable.
    const primaryOnly = spec('replace', ['anthropic/claude-sonnet-4.5']);
    expect(judgeCatalogue(primaryOnly, parseModelsList(printed([PRIMARY])))).toMatchObject({
      observed: `1 models listed: 1 configured, 0 from OpenClaw's catalogue; not listed: ${FALLBACK}`,
      pass: false,
    });
  });

  it('never quotes a key the host printed, and refuses output that is not the list', () => {
    const s = spec('replace', ['anthropic/claude-sonnet-4.5', 'openai/gpt-5-mini']);
    const odd = judgeCatalogue(
      s,
      parseModelsList(printed([PRIMARY, FALLBACK, 'evil/$(reboot) sk-or-v1-0123456789abcdef'])),
    );
    expect(odd).toMatchObject({ observed: "3 models listed: 2 configured, 1 from OpenClaw's catalogue", pass: false });
    expect(() => parseModelsList('Error: config invalid')).toThrow('it printed no JSON');
    expect(() => parseModelsList(JSON.stringify({ models: [{ key: 7 }] }))).toThrow('unexpected output: models.0.key');
    expect(judgeCatalogue(s, { error: 'openclaw models list (exit 1): it printed no JSON' })).toMatchObject({
      observed: 'not read: openclaw models list (exit 1): it printed no JSON',
      pass: false,
    });
  });
});
