/**
 * TEST DOUBLE — a stand-in for mem0's self-hosted REST server (mem0's `server/`, a Python FastAPI app, which no
 * registry here can deliver). It speaks that server's routes and its `X-API-Key` check, over the real mem0 library
 * (mem0ai's OSS `Memory`, the copy inside the steward/openclaw image) with SQLite history and vector store under
 * DATA_DIR. It runs inside a container of that image (`node --input-type=module-typescript`), so it imports only
 * Node built-ins and, at run time, mem0ai by path.
 *
 *   GET    /healthz                       {status: ok}
 *   GET    /memories?user_id=             mem0 getAll
 *   POST   /memories                      {messages, user_id, metadata?, infer?} → mem0 add
 *   GET    /memories/{id}                 mem0 get (null when absent)
 *   POST   /search                        {query, user_id, top_k?, threshold?} → mem0 search
 *   GET    /memories/{id}/history         mem0 history
 *   DELETE /memories/{id}                 mem0 delete
 *
 * Environment: PORT (8888), DATA_DIR (/data), ADMIN_API_KEY (required for every route but /healthz when set),
 * EMBEDDER_URL and LLM_URL (OpenAI-compatible, e.g. the embeddings test double), DIMS (1536).
 */
import http from 'node:http';

const MEM0: string = '/opt/openclaw/plugins/openclaw-mem0/node_modules/mem0ai/dist/oss/index.mjs';
const port = Number(process.env.PORT ?? 8888);
const dataDir = process.env.DATA_DIR ?? '/data';
const apiKey = process.env.ADMIN_API_KEY ?? '';
const dims = Number(process.env.DIMS ?? 1536);

interface Mem0 {
  add(messages: unknown, config: Record<string, unknown>): Promise<unknown>;
  get(id: string): Promise<unknown>;
  getAll(config: Record<string, unknown>): Promise<unknown>;
  search(query: string, config: Record<string, unknown>): Promise<unknown>;
  history(id: string): Promise<unknown>;
  delete(id: string): Promise<unknown>;
}

const { Memory } = (await import(MEM0)) as { Memory: new (config: Record<string, unknown>) => Mem0 };
const provider = (url: string | undefined, model: string, extra: Record<string, unknown> = {}) => ({
  provider: 'openai',
  config: { model, baseURL: url, apiKey: 'test-double-key', ...extra },
});
const memory = new Memory({
  embedder: provider(process.env.EMBEDDER_URL, 'text-embedding-3-small', { embeddingDims: dims }),
  llm: provider(process.env.LLM_URL, 'gpt-4o-mini'),
  vectorStore: { provider: 'memory', config: { dbPath: `${dataDir}/vector_store.db`, dimension: dims } },
  historyDbPath: `${dataDir}/history.db`,
});

function send(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body ?? null));
}

async function route(req: http.IncomingMessage, body: Record<string, unknown>): Promise<[number, unknown]> {
  const url = new URL(req.url ?? '/', 'http://double');
  const path = url.pathname.replace(/\/+$/, '') || '/';
  if (req.method === 'GET' && path === '/healthz') return [200, { status: 'ok' }];
  if (apiKey && req.headers['x-api-key'] !== apiKey) {
    return [401, { detail: req.headers['x-api-key'] ? 'Invalid API key.' : 'X-API-Key header is required.' }];
  }
  const one = /^\/memories\/([^/]+)$/.exec(path);
  const history = /^\/memories\/([^/]+)\/history$/.exec(path);
  if (req.method === 'GET' && path === '/memories') {
    const user = url.searchParams.get('user_id');
    if (!user) return [400, { detail: 'At least one identifier is required.' }];
    return [200, await memory.getAll({ filters: { user_id: user }, topK: 1000 })];
  }
  if (req.method === 'POST' && path === '/memories') {
    if (!body.user_id) return [400, { detail: 'At least one identifier is required.' }];
    return [
      200,
      await memory.add(body.messages, {
        userId: body.user_id,
        ...(body.metadata ? { metadata: body.metadata } : {}),
        ...(body.infer !== undefined ? { infer: body.infer } : {}),
      }),
    ];
  }
  if (req.method === 'POST' && path === '/search') {
    return [
      200,
      await memory.search(String(body.query ?? ''), {
        filters: { user_id: body.user_id },
        ...(typeof body.top_k === 'number' ? { topK: body.top_k } : {}),
        ...(typeof body.threshold === 'number' ? { threshold: body.threshold } : {}),
      }),
    ];
  }
  if (req.method === 'GET' && history) return [200, await memory.history(decodeURIComponent(history[1]!))];
  if (req.method === 'GET' && one) return [200, await memory.get(decodeURIComponent(one[1]!))];
  if (req.method === 'DELETE' && one) {
    await memory.delete(decodeURIComponent(one[1]!));
    return [200, { message: 'Memory deleted successfully' }];
  }
  return [404, { detail: 'Not Found' }];
}

const server = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (c: Buffer) => (raw += c.toString()));
  req.on('end', () => {
    let body: Record<string, unknown> = {};
    try {
      body = raw ? (JSON.parse(raw) as Record<string, unknown>) : {};
    } catch {
      return send(res, 422, { detail: 'invalid JSON' });
    }
    route(req, body).then(
      ([status, out]) => send(res, status, out),
      (err: unknown) => send(res, 500, { detail: err instanceof Error ? err.message : String(err) }),
    );
  });
});

server.listen(port, '0.0.0.0', () => console.log(`mem0 REST test double listening on :${port}`));
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => server.close(() => process.exit(0)));
