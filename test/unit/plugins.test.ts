/**
 * OpenClaw plugins as the gateway's image has them (model/plugins.ts): `openclaw plugins list --json` read as untrusted
 * host output, and the spec's Google OAuth client judged by whether the plugin that uses it is loaded.
 */
import { describe, expect, it } from 'vitest';
import { judgeGoogleOAuth, parsePluginList } from '../../model/plugins';
import { specSchema } from '../../model/schema';
import { oneHostSpec } from '../support/specs';

/** OpenClaw 2026.9.6's list, cut to three of its 63 plugins and the fields around them. */
const LISTED = JSON.stringify({
  workspaceDir: '/home/node/.openclaw/workspace',
  registry: { source: 'derived', diagnostics: [] },
  plugins: [
    { id: 'telegram', name: 'Telegram', version: '2026.9.6', origin: 'bundled', enabled: false, status: 'disabled' },
    { id: 'openrouter', name: 'OpenRouter', version: '2026.9.6', origin: 'bundled', enabled: true, status: 'loaded' },
    { id: 'bad id!', status: 'loaded' },
  ],
  diagnostics: [],
});

const spec = (googleOAuth?: Record<string, unknown>) =>
  specSchema.parse({
    ...oneHostSpec(),
    stack: { integrations: googleOAuth ? { googleOAuth } : {} },
    secrets: {
      'gateway-token': { generate: {} },
      'google-oauth-client-secret': { external: { env: 'GOOGLE_SECRET' } },
    },
  });

describe('plugins', () => {
  it('reads each plugin id with its status, passing over ids it cannot check', () => {
    expect(parsePluginList(`[plugins] scanning\n${LISTED}`)).toEqual({
      plugins: { telegram: 'disabled', openrouter: 'loaded' },
    });
    expect(() => parsePluginList('{"plugins": "many"}')).toThrow(/plugins/);
  });

  it('fails a Google OAuth client when the plugin that uses it is not installed (OpenClaw 2026.9.6 bundles none)', () => {
    const s = spec({ clientId: '1234.apps.googleusercontent.com' });
    expect(judgeGoogleOAuth(s, parsePluginList(LISTED))).toEqual([
      {
        control: 'integrations.google-oauth',
        expected: 'plugin google-meet loaded, using client 1234.apps.googleusercontent.com',
        observed: "plugin google-meet is not installed in the gateway's image: nothing uses the client id and secret",
        pass: false,
      },
    ]);
    expect(judgeGoogleOAuth(s, { plugins: { 'google-meet': 'loaded' } })[0]).toMatchObject({ pass: true });
    expect(judgeGoogleOAuth(s, { plugins: { 'google-meet': 'disabled' } })[0]).toMatchObject({
      observed: 'plugin google-meet disabled',
      pass: false,
    });
    expect(judgeGoogleOAuth(s, { error: 'openclaw plugins list (exit 1): it printed no JSON' })[0]).toMatchObject({
      pass: false,
    });
    expect(judgeGoogleOAuth(spec(), parsePluginList(LISTED))).toEqual([]);
  });
});
