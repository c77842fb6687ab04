/**
 * Chat channels as the gateway has them (model/channels.ts): `openclaw channels status --probe --json` read as
 * untrusted host output, and the spec's Telegram bot judged running with its token accepted, or named with the reason.
 */
import { describe, expect, it } from 'vitest';
import { judgeTelegram, parseChannelsStatus } from '../../model/channels';
import { specSchema } from '../../model/schema';
import { oneHostSpec } from '../support/specs';

/** OpenClaw 2026.9.6's output against the Telegram Bot API test double, cut to what steward reads and a little more. */
const RUNNING = JSON.stringify({
  ts: 1796615549509,
  channelOrder: ['telegram'],
  channels: {
    telegram: {
      configured: true,
      running: true,
      lastStartAt: 1796615520124,
      lastStopAt: null,
      lastError: null,
      tokenSource: 'tokenFile',
      probe: {
        ok: true,
        status: null,
        error: null,
        botInfo: { id: 7000000001, is_bot: true, first_name: 'steward test bot', username: 'steward_test_bot' },
        bot: { id: 7000000001, isBot: true, firstName: 'steward test bot', username: 'steward_test_bot' },
        elapsedMs: 13,
      },
      lastProbeAt: 1796615556997,
      mode: 'polling',
    },
  },
  statusIssues: [],
});

const TOKEN = '7000000001:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw';
const spec = (telegram: Record<string, unknown> | undefined) =>
  specSchema.parse({
    ...oneHostSpec(),
    stack: { integrations: telegram ? { telegram } : {} },
    secrets: { 'gateway-token': { generate: {} }, 'telegram-bot-token': { external: { env: 'TELEGRAM_TOKEN' } } },
  });
const withTelegram = (telegram: Record<string, unknown>) =>
  JSON.stringify({ channels: { telegram: { configured: true, running: true, mode: 'polling', ...telegram } } });

describe('channels', () => {
  it('reads each channel: running, mode, the probe and the bot it answered as', () => {
    expect(parseChannelsStatus(`[gateway] probing\n${RUNNING}`)).toEqual({
      channels: {
        telegram: {
          configured: true,
          running: true,
          mode: 'polling',
          probe: { ok: true, account: 'steward_test_bot' },
        },
      },
    });
  });

  it('passes a running bot whose token the Bot API accepted; names the reason otherwise', () => {
    const s = spec({ apiRoot: 'http://telegram-double:8081' });
    expect(judgeTelegram(s, parseChannelsStatus(RUNNING))).toEqual([
      {
        control: 'integrations.telegram',
        expected: 'running, its bot token accepted by the Bot API (getMe)',
        observed: 'connected as @steward_test_bot (polling)',
        pass: true,
      },
    ]);
    const observed = (status: Parameters<typeof judgeTelegram>[1]) => judgeTelegram(s, status)[0];
    expect(
      observed(parseChannelsStatus(withTelegram({ probe: { ok: false, error: '401: Unauthorized' } }))),
    ).toMatchObject({
      observed: 'getMe failed: 401: Unauthorized',
      pass: false,
    });
    expect(observed(parseChannelsStatus(withTelegram({ running: false, lastError: 'polling stopped' })))).toMatchObject(
      {
        observed: 'not running: polling stopped',
        pass: false,
      },
    );
    expect(observed(parseChannelsStatus(JSON.stringify({ channels: {} })))).toMatchObject({
      observed: 'not configured in the gateway',
      pass: false,
    });
    expect(observed({ error: 'openclaw channels status (exit 124): it printed no JSON' })).toMatchObject({
      observed: 'not probed: openclaw channels status (exit 124): it printed no JSON',
      pass: false,
    });
    // No Telegram in the spec, or turned off: nothing to judge.
    expect(judgeTelegram(spec(undefined), parseChannelsStatus(RUNNING))).toEqual([]);
    expect(judgeTelegram(spec({ enabled: false }), parseChannelsStatus(RUNNING))).toEqual([]);
  });

  it('keeps no token an error quotes, no control characters, and no channel or bot name it cannot check', () => {
    const status = parseChannelsStatus(
      JSON.stringify({
        channels: {
          telegram: {
            configured: true,
            running: false,
            lastError: `fetch failed: http://telegram-double:8081/bot${TOKEN}/getUpdates \x1b[31mECONNREFUSED\x1b[0m`,
            probe: { ok: false, error: 'x'.repeat(500), bot: { username: 'evil name\n' } },
          },
          'bad channel!': { configured: true },
        },
      }),
    );
    const t = status.channels.telegram!;
    expect(t.lastError).not.toContain(TOKEN.split(':')[1]);
    expect(t.lastError).toContain('[...]');
    expect(t.lastError).not.toMatch(/[\x00-\x1f]/);
    expect(t.probe).toEqual({ ok: false, error: '[...]' });
    expect(Object.keys(status.channels)).toEqual(['telegram']);
    expect(() => parseChannelsStatus('not json')).toThrow(/no JSON/);
    // A channel id is the host's text: an error names where the document is wrong without quoting it.
    const key = `sk-${'k'.repeat(40)}\x1b[2J`;
    expect(() => parseChannelsStatus(JSON.stringify({ channels: { [key]: { running: 'yes' } } }))).toThrow(
      /^unexpected output: channels\.\?\.running$/,
    );
    expect(() => parseChannelsStatus(JSON.stringify({ channels: { telegram: { running: 'yes' } } }))).toThrow(
      /channels\.telegram\.running/,
    );
  });
});
