/**
 * The rest adapter: the same proofs against a standalone mem0 REST server (mem0's `server/`: POST /memories,
 * GET /memories/{id}, POST /search, GET /memories/{id}/history, DELETE /memories/{id}), spoken with curl on the host,
 * since the server listens where the host reaches it. The API key goes as `X-API-Key`, read by curl from its stdin:
 * from the secret file on the host (a generated secret never leaves it) or, for an external secret, inside the
 * script steward sends over SSH — never in a command line, never in output.
 */
import type { Spec } from '../../model/schema';
import { stackLayout } from '../../model/render/stack';
import { HostError } from '../host/errors';
import type { HostSession } from '../host/session';
import { run } from '../host/shell';
import { resolveExternal } from '../deploy/secrets';
import type { ProofReport, ProofRequest, ProofStep } from './proof-report';

/** The spec names a secret it does not declare, or the key cannot be read. */
export class MemoryApiKeyUnavailable extends HostError {
  override readonly name = 'MemoryApiKeyUnavailable';
  readonly retryable = false;
}

export type ApiKey =
  | { readonly kind: 'none' }
  | { readonly kind: 'value'; readonly value: string }
  | { readonly kind: 'file'; readonly path: string };

/**
 * Where the REST server's API key comes from: an external secret is read on the worker; a generated one is the file
 * deploy keeps on the host.
 * @throws MemoryApiKeyUnavailable when the secret is not declared or its source gives nothing.
 */
export async function restApiKey(host: string, spec: Spec): Promise<ApiKey> {
  const name = spec.stack.memory.check.rest?.apiKeySecret;
  if (!name) return { kind: 'none' };
  const secret = spec.secrets[name];
  if (!secret) {
    throw new MemoryApiKeyUnavailable(
      host,
      `stack.memory.check.rest.apiKeySecret names secret "${name}", which is not declared under secrets`,
    );
  }
  if (secret.generate) return { kind: 'file', path: `${stackLayout(spec).secretsDir}/${name}` };
  return { kind: 'value', value: await resolveExternal(host, name, secret) };
}

interface HttpResult {
  readonly status: number;
  readonly body: unknown;
  readonly ms: number;
}

/** One HTTP call with curl on the host; the key reaches curl on its stdin. */
async function call(
  session: HostSession,
  base: string,
  key: ApiKey,
  method: 'GET' | 'POST' | 'DELETE',
  path: string,
  body?: unknown,
): Promise<HttpResult> {
  const argv = ['curl', '-sS', '--max-time', '60', '-X', method, '-H', 'accept: application/json'];
  if (body !== undefined) argv.push('-H', 'content-type: application/json', '--data-raw', JSON.stringify(body));
  if (key.kind !== 'none') argv.push('-H', '@-');
  argv.push('-w', '\\n%{http_code}', `${base.replace(/\/+$/, '')}${path}`);
  let script = run(...argv);
  if (key.kind === 'file') script = `{ printf 'X-API-Key: '; cat ${run(key.path)}; echo; } | ${script}`;
  if (key.kind === 'value') {
    const delimiter = `STEWARD_KEY_${Math.random().toString(36).slice(2)}`;
    script = `${script} <<'${delimiter}'\nX-API-Key: ${key.value}\n${delimiter}`;
  }
  const started = performance.now();
  const r = await session.script(script, { label: `mem0 REST ${method} ${path.replace(/\/[0-9a-f-]{16,}/, '/{id}')}` });
  const ms = performance.now() - started;
  const lines = r.stdout.replace(/\n$/, '').split('\n');
  const status = Number(lines.pop());
  const text = lines.join('\n');
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text.slice(0, 200);
  }
  if (r.code !== 0 || !Number.isFinite(status)) {
    return { status: 0, body: (r.stderr.trim() || `curl exited ${r.code}`).slice(0, 300), ms };
  }
  return { status, body: parsed, ms };
}

type Item = { id?: string; memory?: string; user_id?: string; score?: number; metadata?: Record<string, unknown> };

function items(body: unknown): Item[] {
  if (Array.isArray(body)) return body as Item[];
  const r = (body as { results?: unknown } | null)?.results;
  return Array.isArray(r) ? (r as Item[]) : [];
}

function describe(r: HttpResult): string {
  const detail = typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
  return `HTTP ${r.status || 'error'}${detail ? `: ${detail.slice(0, 200)}` : ''}`;
}

/** Runs one proof against the REST server and reports it as the plugin adapter does. */
export async function runRestProof(
  session: HostSession,
  spec: Spec,
  request: ProofRequest,
  key: ApiKey,
): Promise<ProofReport> {
  const base = spec.stack.memory.check.rest!.url;
  const user = request.userId;
  const steps: ProofStep[] = [];
  const report: ProofReport = { warnings: [], steps, history: { enabled: false }, config: { url: base, userId: user } };
  const http = (method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown) =>
    call(session, base, key, method, path, body);
  const ok = (r: HttpResult) => r.status >= 200 && r.status < 300;
  const step = async (
    name: ProofStep['step'],
    fn: () => Promise<{ ms: number; detail?: Record<string, unknown>; error?: string }>,
  ) => {
    const r = await fn();
    steps.push({
      step: name,
      ok: !r.error,
      ms: Math.round(r.ms),
      ...(r.detail ? { detail: r.detail } : {}),
      ...(r.error ? { error: r.error } : {}),
    });
    return !r.error ? r : undefined;
  };
  const list = await http('GET', `/memories?user_id=${encodeURIComponent(user)}`);
  if (!(await step('init', async () => (ok(list) ? { ms: list.ms } : { ms: list.ms, error: describe(list) }))))
    return report;

  const id = (s: string) => encodeURIComponent(s);
  const read = async (memoryId: string) => {
    const r = await http('GET', `/memories/${id(memoryId)}`);
    const m = r.body as Item | null;
    if (!ok(r)) return { ms: r.ms, error: describe(r) };
    if (!m || m.memory !== request.text)
      return { ms: r.ms, error: `memory ${memoryId} reads back ${m ? 'different text' : 'nothing'}` };
    if (m.user_id !== undefined && m.user_id !== user)
      return { ms: r.ms, error: `memory ${memoryId} belongs to ${m.user_id}` };
    return { ms: r.ms, detail: { id: memoryId } };
  };
  const gone = async (memoryId: string) => {
    const r = await http('GET', `/memories/${id(memoryId)}`);
    const still = ok(r) && r.body !== null && (r.body as Item)?.memory === request.text;
    const s = await http('POST', '/search', { query: request.text, user_id: user, top_k: 5 });
    const found = items(s.body).some((h) => h.id === memoryId);
    if (still || found)
      return {
        ms: r.ms + s.ms,
        error: `memory ${memoryId} is still ${still ? 'readable' : 'found by search'} after delete`,
      };
    return { ms: r.ms + s.ms, detail: { id: memoryId } };
  };
  const write = async () => {
    const r = await http('POST', '/memories', {
      messages: [{ role: 'user', content: request.text }],
      user_id: user,
      metadata: { steward_canary: true },
      infer: false,
    });
    const created = items(r.body)[0]?.id;
    if (!ok(r) || !created) return { ms: r.ms, error: ok(r) ? `no memory created: ${describe(r)}` : describe(r) };
    return { ms: r.ms, detail: { id: created } };
  };
  const remove = async (memoryId: string) => {
    const r = await http('DELETE', `/memories/${id(memoryId)}`);
    return ok(r) ? { ms: r.ms, detail: { id: memoryId } } : { ms: r.ms, error: describe(r) };
  };

  if (request.op === 'canary' || request.op === 'write') {
    const stale = items(list.body).filter((m) => typeof m.memory === 'string' && m.memory.startsWith(request.prefix));
    await step('cleanup', async () => {
      let ms = 0;
      for (const m of stale) if (m.id) ms += (await remove(m.id)).ms;
      return { ms, detail: { removed: stale.length } };
    });
  }
  if (request.op === 'write') {
    await step('write', write);
    return report;
  }
  if (request.op === 'readback') {
    const r = await step('read', () => read(request.id!));
    await step('delete', () => remove(request.id!));
    if (r) await step('gone', () => gone(request.id!));
    return report;
  }
  const w = await step('write', write);
  const memoryId = w?.detail?.id as string | undefined;
  if (!memoryId) return report;
  await step('read', () => read(memoryId));
  await step('search', async () => {
    const r = await http('POST', '/search', { query: request.text, user_id: user, top_k: 5 });
    if (!ok(r)) return { ms: r.ms, error: describe(r) };
    const hits = items(r.body);
    const hit = hits.find((h) => h.id === memoryId);
    return hit
      ? { ms: r.ms, detail: { id: memoryId, score: hit.score, results: hits.length } }
      : { ms: r.ms, error: `not found by search (${hits.length} results)` };
  });
  await step('history', async () => {
    const r = await http('GET', `/memories/${id(memoryId)}/history`);
    if (!ok(r)) return { ms: r.ms, error: `history unavailable: ${describe(r)}` };
    const entries = Array.isArray(r.body) ? (r.body as Record<string, unknown>[]) : [];
    const added = entries.find(
      (e) => (e.event ?? e.action) === 'ADD' && (e.new_memory ?? e.new_value ?? e.newValue) === request.text,
    );
    report.history = { enabled: entries.length > 0 };
    return added
      ? { ms: r.ms, detail: { id: memoryId, entries: entries.length } }
      : {
          ms: r.ms,
          error:
            entries.length === 0
              ? 'history disabled: the server keeps no history of the canary'
              : `no ADD entry (${entries.length} entries)`,
        };
  });
  if (await step('delete', () => remove(memoryId))) await step('gone', () => gone(memoryId));
  return report;
}

/**
 * Waits until the REST server answers an authenticated list call again (after a restart).
 * @returns false when it does not within `timeoutSeconds`.
 */
export async function waitRestReady(
  session: HostSession,
  spec: Spec,
  key: ApiKey,
  timeoutSeconds: number,
  tick: () => void,
): Promise<boolean> {
  const base = spec.stack.memory.check.rest!.url;
  const deadline = Date.now() + timeoutSeconds * 1000;
  for (;;) {
    tick();
    const r = await call(
      session,
      base,
      key,
      'GET',
      `/memories?user_id=${encodeURIComponent(spec.stack.memory.probeUser)}`,
    );
    if (r.status >= 200 && r.status < 300) return true;
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
