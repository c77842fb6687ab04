/**
 * MCP servers as the gateway reaches them (model/mcp.ts): `openclaw mcp probe --json` read as untrusted host output,
 * and each enabled server of the spec judged connected with its tools listed, or named with the reason it is not.
 */
import { describe, expect, it } from 'vitest';
import { judgeMcp, parseMcpProbe } from '../../model/mcp';
import { specSchema } from '../../model/schema';
import { oneHostSpec } from '../support/specs';

/**
 * OpenClaw 2026.9.6's output for two stdio servers, `oc` (OpenClaw's own `openclaw mcp serve`) and `nothere` (a
 * command that does not exist), as a terminal shows it: its log lines (stderr) around the document (stdout). steward
 * reads stdout alone; the lines around it are the worse case. It exits 1 when a server fails.
 */
const PROBED = [
  '[bundle-mcp] failed to start server "nothere" (/nonexistent): stdin is not writable',
  JSON.stringify(
    {
      generatedAt: '2026-12-07T01:19:21.938Z',
      servers: {
        oc: { launch: 'openclaw mcp serve', tools: 9, codexApprovalMode: 'auto', requestTimeoutMs: 60000 },
      },
      tools: [
        'oc__attachments_fetch',
        'oc__conversation_get',
        'oc__conversations_list',
        'oc__events_poll',
        'oc__events_wait',
        'oc__messages_read',
        'oc__messages_send',
        'oc__permissions_list_open',
        'oc__permissions_respond',
      ],
      diagnostics: [
        {
          serverName: 'nothere',
          safeServerName: 'nothere',
          launchSummary: '/nonexistent',
          message: 'stdin is not writable',
        },
      ],
    },
    null,
    2,
  ),
  'MCP probe failed for "nothere" in /home/node/.openclaw/openclaw.json: stdin is not writable',
].join('\n');

const spec = (servers: Record<string, unknown>) => specSchema.parse({ ...oneHostSpec(), stack: { mcp: { servers } } });

describe('MCP probe', () => {
  it('reads servers, tools and failures from the output around the document', () => {
    const probe = parseMcpProbe(PROBED);
    expect(probe.servers).toEqual({ oc: 9 });
    expect(probe.tools.oc).toHaveLength(9);
    expect(probe.tools.oc![0]).toBe('attachments_fetch');
    expect(probe.failures).toEqual({ nothere: 'stdin is not writable' });
  });

  it('judges each enabled server: tools listed pass, a failure or an empty list names the server and the reason', () => {
    const probe = parseMcpProbe(PROBED);
    const judged = judgeMcp(
      spec({
        oc: { command: 'openclaw', args: ['mcp', 'serve'] },
        nothere: { command: '/nonexistent' },
        off: { command: '/bin/false', enabled: false },
        remote: { url: 'http://tools.internal:3001/mcp' },
      }),
      probe,
    );
    expect(judged).toEqual([
      {
        control: 'mcp.servers.nothere',
        expected: 'connected, tools listed',
        observed: 'not connected: stdin is not writable',
        pass: false,
      },
      {
        control: 'mcp.servers.oc',
        expected: 'connected, tools listed',
        observed:
          '9 tools listed: attachments_fetch, conversation_get, conversations_list, events_poll, events_wait (+4 more)',
        pass: true,
      },
      { control: 'mcp.servers.remote', expected: 'connected, tools listed', observed: 'not in the probe', pass: false },
    ]);
    expect(judgeMcp(spec({ files: { command: 'x' } }), { servers: { files: 0 }, tools: {}, failures: {} })).toEqual([
      { control: 'mcp.servers.files', expected: 'connected, tools listed', observed: 'tool list empty', pass: false },
    ]);
    expect(
      judgeMcp(spec({ files: { command: 'x' } }), { error: 'openclaw mcp probe (exit 137): it printed no JSON' })[0],
    ).toMatchObject({ observed: 'not probed: openclaw mcp probe (exit 137): it printed no JSON', pass: false });
    // No server configured: nothing to judge, and nothing is probed.
    expect(judgeMcp(oneHostSpec(), { error: 'never probed' })).toEqual([]);
  });

  it('keeps host text bounded and printable, and refuses what is not a probe', () => {
    const hostile = JSON.stringify({
      servers: { oc: { tools: 1 } },
      tools: ['oc__\u001b[31mred\u0007', 'stray', 'other__tool'],
      diagnostics: [
        { serverName: 'x', message: `line one\nline two\u001b]0;title\u0007${'a'.repeat(500)}` },
        { serverName: '../../etc', message: 'not a server name' },
      ],
    });
    const probe = parseMcpProbe(hostile);
    expect(probe.tools).toEqual({ oc: ['[31mred'] });
    // A server whose name holds the separator keeps its own tools.
    const nested = parseMcpProbe(
      JSON.stringify({ servers: { a: { tools: 1 }, a__b: { tools: 1 } }, tools: ['a__b__read', 'a__write', 'a__'] }),
    );
    expect(nested.tools).toEqual({ a: ['write'], a__b: ['read'] });
    expect(probe.failures.x).toMatch(/^line one line two \]0;title a+…$/);
    expect(probe.failures.x!.length).toBe(200);
    expect(Object.keys(probe.failures)).toEqual(['x']);
    expect(() => parseMcpProbe('no document here')).toThrow('it printed no JSON');
    // A server the spec cannot name, or a diagnostic without a server, spoils nothing else.
    expect(
      parseMcpProbe(
        JSON.stringify({
          servers: { 'My Tools': { tools: 2 }, oc: { tools: 1 } },
          tools: ['My Tools__a', 'oc__b'],
          diagnostics: [{ message: 'no server named' }, { serverName: 'gone' }],
        }),
      ),
    ).toEqual({ servers: { oc: 1 }, tools: { oc: ['b'] }, failures: { gone: '(no message)' } });
    expect(() => parseMcpProbe('{"servers": {"oc": {"tools": -1}}}')).toThrow('unexpected output: servers.oc.tools');
    expect(() => parseMcpProbe('{ "servers": \n}')).toThrow('its output is not JSON');
  });
});
