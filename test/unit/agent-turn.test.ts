/**
 * One agent turn through the gateway (model/agent-turn.ts): `openclaw agent --json` read as untrusted host output —
 * the model that answered, the ones that failed before it, a reply that may hold anything — and judged against the
 * spec's chain: the primary answering passes, a fallback answering passes with a finding, a model outside the chain
 * or no answer at all fails naming the chain.
 */
import { describe, expect, it } from 'vitest';
import { judgeAgentTurn, judgeToolCalls, parseAgentTurn, toolChecks, turnMessage } from '../../model/agent-turn';
import { openclawConfig } from '../../model/render/stack';
import { specSchema } from '../../model/schema';
import { oneHostSpec } from '../support/specs';

const PRIMARY = 'openrouter/anthropic/claude-sonnet-4.5';
const FIRST = 'openrouter/openai/gpt-5-mini';
const SECOND = 'openrouter/google/gemini-2.5-flash';

/** OpenClaw 2026.9.6's answer document, cut to what steward reads (the real one carries prompts and budgets too). */
function answered(
  model: string,
  text: string,
  fallbackAttempts?: unknown[],
  successfulToolNames: unknown[] = [],
): string {
  const [provider, ...rest] = model.split('/');
  return JSON.stringify(
    {
      runId: 'de4c8f9a-0dcc-45a3-a262-a0ccd3766fc4',
      status: 'ok',
      summary: 'completed',
      result: {
        payloads: [{ text, mediaUrl: null }],
        meta: {
          durationMs: 862,
          agentMeta: {
            sessionFile: 'agent:main:cron:steward-verify',
            provider,
            model: rest.join('/'),
            terminalReceipt: { rerouted: fallbackAttempts !== undefined, successfulToolNames },
            ...(fallbackAttempts ? { fallbackAttempts } : {}),
          },
          aborted: false,
          stopReason: 'stop',
        },
      },
    },
    null,
    2,
  );
}

/** Its failure documents: every model of a chain failing, and a lone primary failing. */
const ALL_FAILED = JSON.stringify({
  ok: false,
  runId: 'a99e87b1-f643-4ac4-8c54-dcb18c78139a',
  origin: 'gateway',
  error: {
    type: 'cli_error',
    message:
      'All models failed (3): openrouter/anthropic/claude-sonnet-4.5: 401 test double: invalid API key (auth) | ' +
      'openrouter/openai/gpt-5-mini: 500 test double: openai/gpt-5-mini made to fail (server_error) | ' +
      'openrouter/google/gemini-2.5-flash: 401 test double: invalid API key (auth). Re-authenticate with: openclaw ' +
      "models auth login --provider 'openrouter' --force | Authentication failed (provider returned HTTP 401).",
  },
});
const LONE_FAILED = JSON.stringify({
  ok: false,
  origin: 'gateway',
  error: {
    type: 'cli_error',
    message:
      'Authentication failed (provider returned HTTP 401). Your provider token may have expired — try the request ' +
      'again in a moment. If the failure persists, re-authenticate this provider.',
  },
});

const spec = (providers: Record<string, unknown>) =>
  specSchema.parse({
    ...oneHostSpec(),
    stack: { providers: { openrouter: {}, ...providers } },
    secrets: { 'gateway-token': { generate: {} }, 'openrouter-api-key': { external: { env: 'OPENROUTER_KEY' } } },
  });
const chained = spec({ primary: PRIMARY, fallbacks: [FIRST, SECOND] });

describe('agent turn', () => {
  it('reads the model that answered, the attempts before it, and the reply, past log lines around the document', () => {
    const primary = parseAgentTurn(`[gateway] connecting\n${answered(PRIMARY, 'OK')}\n`);
    expect(primary).toEqual({ answeredBy: PRIMARY, failed: [], reply: 'OK' });
    const fallback = parseAgentTurn(
      answered(FIRST, 'OK', [
        {
          provider: 'openrouter',
          model: 'anthropic/claude-sonnet-4.5',
          error: '500 test double: anthropic/claude-sonnet-4.5 made to fail',
          reason: 'server_error',
          status: 500,
        },
      ]),
    );
    expect(fallback).toEqual({
      answeredBy: FIRST,
      failed: [{ model: PRIMARY, status: 500, reason: 'server_error' }],
      reply: 'OK',
    });
  });

  it('reads each failed model of "All models failed", and a lone failure as its reason', () => {
    expect(parseAgentTurn(ALL_FAILED)).toEqual({
      answeredBy: null,
      reply: '',
      failed: [
        { model: PRIMARY, status: 401, reason: 'auth' },
        { model: FIRST, status: 500, reason: 'server_error' },
        { model: SECOND, status: 401, reason: 'auth' },
      ],
    });
    const lone = parseAgentTurn(LONE_FAILED);
    expect(lone.answeredBy).toBeNull();
    expect(lone.failure).toMatch(/^Authentication failed \(provider returned HTTP 401\)/);
    expect(lone.failure!.length).toBeLessThanOrEqual(160);
  });

  it('keeps nothing of hostile text but checked names, statuses, reason codes and scrubbed words', () => {
    const key = `sk-or-v1-${'a1b2c3d4'.repeat(6)}`;
    const t = parseAgentTurn(
      answered(PRIMARY, `\x1b[31mOK\x1b[0m\nyour key is ${key}`, [
        { provider: 'evil provider', model: 'x', status: 500 },
        { provider: 'openrouter', model: 'openai/gpt-5-mini', status: 'bad', reason: 'Not A Code; rm -rf' },
      ]),
    );
    expect(t.reply).not.toContain(key.slice(10, 30));
    expect(t.reply).not.toMatch(/[\x00-\x1f]/);
    expect(t.reply).toContain('[...]');
    expect(t.failed).toEqual([{ model: FIRST }]);
    const leaked = parseAgentTurn(JSON.stringify({ ok: false, error: { message: `Incorrect API key: ${key}` } }));
    expect(leaked.failure).toBe('Incorrect API key: [...]');
    expect(() => parseAgentTurn(answered('openrouter/bad model', 'OK'))).toThrow(/agentMeta\.model/);
    expect(() => parseAgentTurn('gateway not reachable')).toThrow(/no JSON/);
    expect(() => parseAgentTurn(JSON.stringify({ status: 'ok' }))).toThrow(/not a turn/);
  });

  it('passes on the primary; on a fallback too, with a finding naming the primary failure', () => {
    const primary = judgeAgentTurn(chained, { answeredBy: PRIMARY, failed: [], reply: 'OK' });
    expect(primary).toMatchObject({ pass: true, observed: `answered by ${PRIMARY}: "OK"`, findings: [] });
    expect(primary.expected).toBe(`a reply from ${PRIMARY}, or a fallback (${FIRST}, ${SECOND})`);
    const fallback = judgeAgentTurn(chained, {
      answeredBy: FIRST,
      failed: [{ model: PRIMARY, status: 500, reason: 'server_error' }],
      reply: 'OK',
    });
    expect(fallback.pass).toBe(true);
    expect(fallback.observed).toBe(`answered by fallback ${FIRST} after ${PRIMARY}: HTTP 500 (server_error): "OK"`);
    expect(fallback.findings).toEqual([
      expect.objectContaining({ id: 'providers.primary-failing', severity: 'medium' }),
    ]);
  });

  it('fails naming the chain when no model answered, or when the answer came from outside it or said nothing', () => {
    const none = judgeAgentTurn(chained, parseAgentTurn(ALL_FAILED));
    expect(none.pass).toBe(false);
    expect(none.observed).toBe(
      `no model of the chain (${PRIMARY} then ${FIRST} then ${SECOND}) answered: ${PRIMARY}: HTTP 401 (auth); ` +
        `${FIRST}: HTTP 500 (server_error); ${SECOND}: HTTP 401 (auth)`,
    );
    const lone = judgeAgentTurn(spec({ primary: PRIMARY }), parseAgentTurn(LONE_FAILED));
    expect(lone.observed).toMatch(
      new RegExp(`^no model of the chain \\(${PRIMARY}\\) answered: Authentication failed`),
    );
    const outside = judgeAgentTurn(chained, { answeredBy: 'openai/gpt-4o', failed: [], reply: 'OK' });
    expect(outside).toMatchObject({ pass: false, observed: 'answered by a model of openai outside the chain' });
    // A model outside the chain is named by its provider alone, scrubbed: a hostile gateway could name one after a key.
    const token = 'A'.repeat(48);
    const hostile = judgeAgentTurn(chained, {
      answeredBy: `${token}/x`,
      failed: [{ model: `openrouter/${token}`, status: 500, reason: 'server_error' }],
      reply: 'OK',
    });
    expect(hostile.observed).toBe(
      'answered by a model of [...] outside the chain (after a model of openrouter outside the chain: HTTP 500 (server_error))',
    );
    expect(judgeAgentTurn(chained, { answeredBy: PRIMARY, failed: [], reply: '' }).pass).toBe(false);
    // Every model failing on the provider's side (an outage) is marked so a deploy need not blame its release.
    const outage = judgeAgentTurn(chained, {
      answeredBy: null,
      reply: '',
      failed: [PRIMARY, FIRST, SECOND].map((model) => ({ model, status: 503, reason: 'overloaded' })),
    });
    expect(outage).toMatchObject({ pass: false, providerSide: true });
    expect(none.providerSide).toBeUndefined();
    // A run that did not end ok is no answer, whatever text it carries.
    const aborted = parseAgentTurn(answered(PRIMARY, 'partial').replace('"status": "ok"', '"status": "aborted"'));
    expect(aborted).toMatchObject({ answeredBy: null, failure: 'the run ended aborted' });
    const unread = judgeAgentTurn(chained, { error: 'openclaw agent (exit 1): unexpected output: not a turn' });
    expect(unread).toMatchObject({
      pass: false,
      observed: 'no turn: openclaw agent (exit 1): unexpected output: not a turn',
    });
  });

  it("asks for each MCP server's verifyTool in the message, and judges each called, not called, or not applicable", () => {
    const s = specSchema.parse({
      ...oneHostSpec(),
      stack: {
        providers: { openrouter: {}, primary: PRIMARY },
        mcp: {
          servers: {
            oc: { command: 'openclaw', args: ['mcp', 'serve'], verifyTool: { name: 'conversations_list' } },
            files: { url: 'http://files:8080/mcp', verifyTool: { name: 'read_file', arguments: { path: '/a b"c' } } },
            off: { command: 'x', enabled: false, verifyTool: { name: 'ping' } },
            plain: { command: 'y' },
          },
        },
      },
      secrets: { 'gateway-token': { generate: {} }, 'openrouter-api-key': { external: { env: 'OPENROUTER_KEY' } } },
    });
    expect(toolChecks(s).map((c) => c.tool)).toEqual(['oc__conversations_list', 'files__read_file']);
    // The tool to check is steward's: openclaw.json, which OpenClaw validates, never carries it.
    expect(JSON.stringify(openclawConfig(s))).not.toContain('verifyTool');
    expect(turnMessage(toolChecks(s)).split('\n')).toEqual([
      expect.stringMatching(/^This is a health check by steward.*First call each of these tools once/),
      '- oc__conversations_list {}',
      '- files__read_file {"path":"/a b\\"c"}',
      'Then reply with the single word OK.',
    ]);
    expect(turnMessage([])).toBe(
      'This is a health check by steward, the operator tool. Reply with the single word OK.',
    );

    const turn = parseAgentTurn(
      answered(PRIMARY, 'OK', undefined, ['oc__conversations_list', 'tool_call', 'bad name!']),
    );
    expect(turn.toolsCalled).toEqual(['oc__conversations_list', 'tool_call']);
    expect(judgeToolCalls(s, turn)).toEqual([
      {
        control: 'mcp.servers.oc.call',
        expected: 'oc__conversations_list called by the agent turn and returned',
        observed: 'called by the agent, returned',
        status: 'pass',
      },
      expect.objectContaining({
        control: 'mcp.servers.files.call',
        observed: 'not called (the turn ran 2 other tools)',
        status: 'fail',
        skippedByModel: true,
      }),
    ]);
    expect(judgeToolCalls(s, parseAgentTurn(ALL_FAILED)).map((j) => j.status)).toEqual(['fail', 'fail']);
    expect(judgeToolCalls(s, { skipped: 'stack.providers.verifyTurn is false' })[0]).toMatchObject({
      status: 'not-applicable',
      observed: 'no agent turn: stack.providers.verifyTurn is false',
    });
    expect(judgeToolCalls(s, { error: 'no gateway container' })[1]).toMatchObject({ status: 'fail' });
  });
});
