/** The keys a drifted openclaw.json row names (activities/drift.ts `differingKeys`): where, never what. */
import { describe, expect, it } from 'vitest';
import { differingKeys } from '../../activities/drift';

describe('differing keys of a drifted config', () => {
  const rendered = {
    gateway: { port: 18789, auth: { mode: 'token' } },
    models: { providers: { openrouter: { baseUrl: 'https://openrouter.ai/api/v1', apiKey: { source: 'file' } } } },
    mcp: { servers: { files: { command: 'files-mcp', args: ['--root', '/srv'] } } },
  };

  it('names each changed value by its path, and a removed or added object by its single-key chain', () => {
    const live = {
      gateway: { port: 18789, auth: { mode: 'token' } },
      models: { providers: { openrouter: { baseUrl: 'http://elsewhere/v1', apiKey: { source: 'file' } } } },
      meta: { lastTouchedVersion: '2026.9.6' },
    };
    expect(differingKeys(rendered, live)).toEqual(['mcp.servers.files', 'meta', 'models.providers.openrouter.baseUrl']);
    // An object of several keys is named where it branches; arrays and values compare whole.
    expect(differingKeys({ a: { b: 1, c: 2 } }, {})).toEqual(['a']);
    expect(differingKeys({ x: { y: { enabled: true } } }, {})).toEqual(['x.y']);
    expect(differingKeys({ a: [1, 2] }, { a: [2, 1] })).toEqual(['a']);
    expect(differingKeys(rendered, structuredClone(rendered))).toEqual([]);
    expect(differingKeys('x', { a: 1 })).toEqual(['(root)']);
  });
});
