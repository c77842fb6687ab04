/**
 * STAND-IN EMBEDDER — not a model: an OpenAI-compatible embeddings endpoint with deterministic vectors, standing in
 * for a paid embedding provider. The memory tests use it as their test double; `steward dev embedder` runs it beside
 * the throwaway VPS's stack so the embedded default's memory check works offline. Never for a real host: hashed
 * words find equal and overlapping texts, not meaning. It runs inside a container of the steward/openclaw image
 * (Node 24 strips the types: `node --input-type=module-typescript -`), so it imports nothing but Node built-ins.
 *
 *   POST /v1/embeddings        {model, input: string | string[], dimensions?, encoding_format?} → OpenAI's shape.
 *                              A vector is a normalised bag of hashed words: equal texts give equal vectors (cosine
 *                              1), texts sharing words are similar. `dimensions` is honoured unless FIXED_DIMS is set
 *                              (a model that ignores it: the dimension mismatch mem0 users meet after a change).
 *   POST /v1/chat/completions  answers an empty fact extraction and counts the call: with `infer: false` the memory
 *                              check must never need it, and the tests assert the count stays 0.
 *   GET  /stats                {embeddings, chat}: calls served.
 *
 * Environment: PORT (default 8080), DIMS (default 1536), FIXED_DIMS (optional).
 */
import { createHash } from 'node:crypto';
import http from 'node:http';

const port = Number(process.env.PORT ?? 8080);
const defaultDims = Number(process.env.DIMS ?? 1536);
const fixedDims = process.env.FIXED_DIMS ? Number(process.env.FIXED_DIMS) : undefined;
const stats = { embeddings: 0, chat: 0 };

/** A deterministic unit vector for `text`: each word adds ±1 at a position chosen by its hash. */
export function embed(text: string, dims: number): number[] {
  const v = new Array<number>(dims).fill(0);
  const words = text.toLowerCase().match(/[a-z0-9]+/g) ?? ['(empty)'];
  for (const w of words) {
    const h = createHash('sha256').update(w).digest();
    v[h.readUInt32BE(0) % dims]! += h[4]! & 1 ? 1 : -1;
  }
  const norm = Math.sqrt(v.reduce((n, x) => n + x * x, 0)) || 1;
  return v.map((x) => x / norm);
}

function base64(vector: number[]): string {
  return Buffer.from(new Float32Array(vector).buffer).toString('base64');
}

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const server = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (c: Buffer) => (raw += c.toString()));
  req.on('end', () => {
    const path = (req.url ?? '/').replace(/\?.*$/, '');
    if (req.method === 'GET' && path === '/stats') return send(res, 200, stats);
    if (req.method === 'GET' && (path === '/health' || path === '/')) return send(res, 200, { ok: true });
    let body: Record<string, unknown> = {};
    try {
      body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
    } catch {
      return send(res, 400, { error: { message: 'invalid JSON' } });
    }
    if (req.method === 'POST' && path.endsWith('/embeddings')) {
      stats.embeddings++;
      const inputs = Array.isArray(body.input) ? body.input.map(String) : [String(body.input ?? '')];
      const dims = fixedDims ?? (typeof body.dimensions === 'number' ? body.dimensions : defaultDims);
      const asBase64 = body.encoding_format === 'base64';
      return send(res, 200, {
        object: 'list',
        model: String(body.model ?? 'test-double'),
        data: inputs.map((text, index) => {
          const vector = embed(text, dims);
          return { object: 'embedding', index, embedding: asBase64 ? base64(vector) : vector };
        }),
        usage: { prompt_tokens: 0, total_tokens: 0 },
      });
    }
    if (req.method === 'POST' && path.endsWith('/chat/completions')) {
      stats.chat++;
      return send(res, 200, {
        id: 'chatcmpl-test-double',
        object: 'chat.completion',
        created: 0,
        model: String(body.model ?? 'test-double'),
        choices: [
          {
            index: 0,
            finish_reason: 'stop',
            message: { role: 'assistant', content: JSON.stringify({ facts: [], memory: [] }) },
          },
        ],
        usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
      });
    }
    send(res, 404, { error: { message: `test double: no route ${req.method} ${path}` } });
  });
});

server.listen(port, '0.0.0.0', () => console.log(`embeddings test double listening on :${port}`));
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => server.close(() => process.exit(0)));
