/**
 * TEST DOUBLE — a stand-in for a paid OpenAI-compatible LLM API (OpenRouter and the like): no model, canned answers.
 * The hidden-layer tests put it behind the spec's provider base URL and make single models fail on demand, to prove
 * that an agent turn through the running gateway reaches the primary model and falls back along the chain. It runs
 * inside a container of the steward/openclaw image (`node --input-type=module-typescript`), so it imports nothing but
 * Node built-ins.
 *
 *   POST /v1/chat/completions  {model, messages, tools?, stream?} → an answer naming the model ("test double <model>
 *                              answering"), as one JSON body or as server-sent events; or, as the model's mode says,
 *                              HTTP 500, HTTP 401, or no answer at all (`hang`: the client's timeout decides). A
 *                              user message with lines `- <tool> <JSON arguments>` is answered with those tool calls
 *                              first (as a model following the instruction would: by name when the tool is offered,
 *                              else through OpenClaw's `tool_call`, where MCP tools are), and with the text once
 *                              every call has its result.
 *   GET  /v1/models            the models it has been told of.
 *   POST /control              {model, mode: answer|fail|unauthorized|hang} or {reset: true}.
 *   GET  /calls                [{model, mode, stream, key, tools, called}]: each completion asked for, `key` the first
 *                              12 hex digits of the SHA-256 of the bearer token (the token itself is never kept),
 *                              `tools` how many it was offered, `called` the tool calls it answered with.
 *
 * Environment: PORT (default 8080); LOG_TOOLS=1 prints the tools each request offers.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';

type Mode = 'answer' | 'fail' | 'unauthorized' | 'hang';
const MODES: readonly Mode[] = ['answer', 'fail', 'unauthorized', 'hang'];

const port = Number(process.env.PORT ?? 8080);
let modes = new Map<string, Mode>();
let calls: { model: string; mode: Mode; stream: boolean; key: string; tools: number; called: string[] }[] = [];

interface Message {
  role?: string;
  content?: unknown;
  tool_call_id?: string;
}
interface ToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** The text of a message's content, whether a string or a list of parts. */
function text(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content))
    return content.map((p) => (typeof p?.text === 'string' ? (p.text as string) : '')).join('\n');
  return '';
}

/**
 * The tool calls the user's messages ask for (`- <tool> <JSON>` lines; OpenClaw adds context messages of its own
 * after the user's) that have no result yet in the conversation. Ids are stable per tool, so a result is matched to
 * its call.
 */
function pendingToolCalls(messages: Message[], offered: Set<string>): ToolCall[] {
  const asked = messages.filter((m) => m.role === 'user').flatMap((m) => text(m.content).split('\n'));
  const answered = new Set(messages.filter((m) => m.role === 'tool').map((m) => m.tool_call_id));
  const out: ToolCall[] = [];
  for (const line of asked) {
    const m = /^- ([A-Za-z0-9_.-]+) (\{.*\})\s*$/.exec(line.trim());
    if (!m) continue;
    const [, tool, args] = m as unknown as [string, string, string];
    const id = `call_${tool.replace(/[^A-Za-z0-9_]/g, '_')}`;
    if (answered.has(id)) continue;
    // A tool offered by name is called by name; one behind OpenClaw's tool search (MCP tools) through `tool_call`.
    if (offered.has(tool)) out.push({ id, name: tool, arguments: args });
    else if (offered.has('tool_call'))
      out.push({ id, name: 'tool_call', arguments: JSON.stringify({ id: tool, args: JSON.parse(args) as unknown }) });
  }
  return out;
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

function keyDigest(req: http.IncomingMessage): string {
  const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  return token ? createHash('sha256').update(token).digest('hex').slice(0, 12) : 'none';
}

function answer(res: http.ServerResponse, model: string, stream: boolean, toolCalls: ToolCall[]): void {
  const text = toolCalls.length > 0 ? null : `test double ${model} answering`;
  const finish = toolCalls.length > 0 ? 'tool_calls' : 'stop';
  const tool_calls = toolCalls.map((c, index) => ({
    index,
    id: c.id,
    type: 'function',
    function: { name: c.name, arguments: c.arguments },
  }));
  const id = `chatcmpl-double-${Date.now()}`;
  const usage = { prompt_tokens: 1, completion_tokens: 4, total_tokens: 5 };
  if (!stream) {
    return send(res, 200, {
      id,
      object: 'chat.completion',
      created: Math.floor(Date.now() / 1000),
      model,
      choices: [
        {
          index: 0,
          finish_reason: finish,
          message: { role: 'assistant', content: text, ...(tool_calls.length ? { tool_calls } : {}) },
        },
      ],
      usage,
    });
  }
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const chunk = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}) =>
    res.write(
      `data: ${JSON.stringify({
        id,
        object: 'chat.completion.chunk',
        created: Math.floor(Date.now() / 1000),
        model,
        choices: [{ index: 0, delta, finish_reason: finish }],
        ...extra,
      })}\n\n`,
    );
  chunk({ role: 'assistant', content: text, ...(tool_calls.length ? { tool_calls } : {}) }, null);
  chunk({}, finish, { usage });
  res.end('data: [DONE]\n\n');
}

const server = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (c: Buffer) => (raw += c.toString()));
  req.on('end', () => {
    const path = (req.url ?? '/').replace(/\?.*$/, '');
    let body: Record<string, unknown> = {};
    try {
      body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
    } catch {
      return send(res, 400, { error: { message: 'test double: invalid JSON' } });
    }
    if (req.method === 'GET' && path === '/calls') return send(res, 200, calls);
    if (req.method === 'GET' && (path === '/health' || path === '/')) return send(res, 200, { ok: true });
    if (req.method === 'POST' && path === '/control') {
      if (body.reset === true) {
        modes = new Map();
        calls = [];
        return send(res, 200, { ok: true });
      }
      const mode = body.mode as Mode;
      if (typeof body.model !== 'string' || !MODES.includes(mode))
        return send(res, 400, { error: { message: `test double: model and mode (${MODES.join('|')}) expected` } });
      modes.set(body.model, mode);
      return send(res, 200, { ok: true });
    }
    if (req.method === 'GET' && path.endsWith('/models')) {
      return send(res, 200, {
        object: 'list',
        data: [...modes.keys()].map((id) => ({ id, object: 'model', owned_by: 'test-double' })),
      });
    }
    if (req.method === 'POST' && path.endsWith('/chat/completions')) {
      const model = String(body.model ?? '');
      const mode = modes.get(model) ?? 'answer';
      const stream = body.stream === true;
      const offered = new Set(
        (Array.isArray(body.tools) ? body.tools : [])
          .map((t: { function?: { name?: unknown } }) => t?.function?.name)
          .filter((n: unknown): n is string => typeof n === 'string'),
      );
      if (process.env.LOG_TOOLS) console.log(`${model} offered: ${[...offered].join(' ')}`);
      const toolCalls =
        mode === 'answer' ? pendingToolCalls(Array.isArray(body.messages) ? body.messages : [], offered) : [];
      calls.push({
        model,
        mode,
        stream,
        key: keyDigest(req),
        tools: offered.size,
        called: toolCalls.map((c) => c.name),
      });
      if (mode === 'hang') return; // no answer: the caller's own timeout ends it
      if (mode === 'fail')
        return send(res, 500, { error: { message: `test double: ${model} made to fail`, type: 'server_error' } });
      if (mode === 'unauthorized')
        return send(res, 401, { error: { message: 'test double: invalid API key', type: 'invalid_api_key' } });
      return answer(res, model, stream, toolCalls);
    }
    send(res, 404, { error: { message: `test double: no route ${req.method} ${path}` } });
  });
});

server.listen(port, '0.0.0.0', () => console.log(`LLM test double listening on :${port}`));
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => server.close(() => process.exit(0)));
