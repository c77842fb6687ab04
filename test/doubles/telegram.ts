/**
 * TEST DOUBLE — a stand-in for Telegram's Bot API (api.telegram.org), for one bot: enough of it for OpenClaw's
 * Telegram channel to connect, poll, and answer a message. The hidden-layer tests point `integrations.telegram.apiRoot`
 * at it, hand it a user's message, and read the reply the gateway sent. It runs inside a container of the
 * steward/openclaw image (`node --input-type=module-typescript`), so it imports nothing but Node built-ins.
 *
 *   /bot<token>/<method>      getMe (the bot), getUpdates (long poll: queued updates after `offset`, else waits up
 *                             to `timeout` seconds, at most 10), sendMessage (recorded), every other method → true.
 *                             Any token is accepted; each call is recorded with the SHA-256 of its token (first 12
 *                             hex digits), never the token.
 *   POST /control/message     {from, text} → queues a private-chat message from user `from` to the bot.
 *   GET  /sent                [{chat, text}]: messages the bot sent.
 *   GET  /calls               [{method, token}]: Bot API calls, oldest first (at most 1000).
 *
 * Environment: PORT (default 8081).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';

const port = Number(process.env.PORT ?? 8081);
const BOT = { id: 7000000001, is_bot: true, first_name: 'steward test bot', username: 'steward_test_bot' };

interface Update {
  update_id: number;
  message: Record<string, unknown>;
}
const updates: Update[] = [];
const sent: { chat: number; text: string }[] = [];
const calls: { method: string; token: string }[] = [];
let waiting: (() => void)[] = [];
let nextUpdate = 1;
let nextMessage = 1;

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const ok = (res: http.ServerResponse, result: unknown) => send(res, 200, { ok: true, result });

/** Request parameters, from the query string and a JSON or form body. */
function params(url: URL, raw: string, type: string | undefined): Record<string, unknown> {
  const out: Record<string, unknown> = Object.fromEntries(url.searchParams);
  if (!raw) return out;
  if (type?.includes('application/json')) return { ...out, ...(JSON.parse(raw) as Record<string, unknown>) };
  return { ...out, ...Object.fromEntries(new URLSearchParams(raw)) };
}

function getUpdates(res: http.ServerResponse, p: Record<string, unknown>): void {
  const offset = Number(p.offset ?? 0);
  const pending = () => updates.filter((u) => u.update_id >= offset);
  if (pending().length > 0) return ok(res, pending());
  const seconds = Math.min(Number(p.timeout ?? 0), 10);
  if (seconds <= 0) return ok(res, []);
  const done = () => {
    clearTimeout(timer);
    waiting = waiting.filter((w) => w !== done);
    if (!res.writableEnded) ok(res, pending());
  };
  const timer = setTimeout(done, seconds * 1000);
  waiting.push(done);
  res.on('close', done);
}

function botMethod(res: http.ServerResponse, token: string, method: string, p: Record<string, unknown>): void {
  calls.push({ method, token: createHash('sha256').update(token).digest('hex').slice(0, 12) });
  if (calls.length > 1000) calls.shift();
  if (method === 'getMe') return ok(res, BOT);
  if (method === 'getUpdates') return getUpdates(res, p);
  if (method === 'sendMessage') {
    const chat = Number(p.chat_id);
    const text = String(p.text ?? '');
    sent.push({ chat, text });
    return ok(res, {
      message_id: nextMessage++,
      date: Math.floor(Date.now() / 1000),
      chat: { id: chat, type: 'private' },
      from: BOT,
      text,
    });
  }
  if (method === 'getMyCommands') return ok(res, []);
  return ok(res, true);
}

const server = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (c: Buffer) => (raw += c.toString()));
  req.on('end', () => {
    const url = new URL(req.url ?? '/', 'http://double');
    let p: Record<string, unknown>;
    try {
      p = params(url, raw, req.headers['content-type']);
    } catch {
      return send(res, 400, { ok: false, error_code: 400, description: 'Bad Request: test double: unreadable body' });
    }
    const bot = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(url.pathname);
    if (bot) return botMethod(res, decodeURIComponent(bot[1]!), bot[2]!, p);
    if (req.method === 'GET' && url.pathname === '/health') return send(res, 200, { ok: true });
    if (req.method === 'GET' && url.pathname === '/sent') return send(res, 200, sent);
    if (req.method === 'GET' && url.pathname === '/calls') return send(res, 200, calls);
    if (req.method === 'POST' && url.pathname === '/control/message') {
      const from = Number(p.from);
      if (!Number.isSafeInteger(from) || typeof p.text !== 'string')
        return send(res, 400, { ok: false, description: 'test double: from (a user id) and text expected' });
      const user = { id: from, is_bot: false, first_name: 'Test', username: `user${from}` };
      updates.push({
        update_id: nextUpdate++,
        message: {
          message_id: nextMessage++,
          date: Math.floor(Date.now() / 1000),
          chat: { id: from, type: 'private', first_name: 'Test' },
          from: user,
          text: p.text,
        },
      });
      for (const w of [...waiting]) w();
      return send(res, 200, { ok: true });
    }
    send(res, 404, {
      ok: false,
      error_code: 404,
      description: `Not Found: test double: ${req.method} ${url.pathname}`,
    });
  });
});

server.listen(port, '0.0.0.0', () => console.log(`Telegram Bot API test double listening on :${port}`));
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => server.close(() => process.exit(0)));
