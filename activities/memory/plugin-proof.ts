/**
 * The openclaw-plugin adapter: proofs run inside the gateway container, through the mem0 plugin's own provider
 * (`createProvider` of @mem0/openclaw-mem0, the code the gateway runs) configured from the live openclaw.json,
 * with `infer: false` so no LLM is called. The embedder is whatever the config names; its key stays in the
 * container's environment. One `docker exec` per proof; the script prints one JSON line.
 */
import { MEM0_PLUGIN_PATH } from '../../model/render/stack';
import type { Spec } from '../../model/schema';
import { CommandFailed, UnexpectedHostOutput } from '../host/errors';
import type { HostSession } from '../host/session';
import { sh } from '../host/shell';
import { parseProofReport, type ProofReport, type ProofRequest } from './proof-report';

/** Marks the result line among whatever mem0 prints. */
const MARK = 'STEWARD_MEMORY_PROOF ';

/**
 * Runs in the gateway container as its uid (Node 24). argv: plugin path, request JSON. Console output of mem0 is
 * captured (history-disabled warnings are evidence) and secret values from the environment are redacted from it.
 */
const PROOF_JS = String.raw`
import { registerHooks } from 'node:module';
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
const [pluginPath, requestJson] = process.argv.slice(2);
const req = JSON.parse(requestJson);
const out = { warnings: [], steps: [], history: { enabled: false }, config: {} };
const secrets = new Set();
const redact = (s) => { let t = String(s); for (const v of secrets) if (v.length >= 6) t = t.split(v).join('[redacted]'); return t; };
const capture = (...a) => { if (out.warnings.length < 20) out.warnings.push(redact(a.map((x) => x instanceof Error ? x.message : typeof x === 'string' ? x : JSON.stringify(x)).join(' ')).slice(0, 400)); };
console.warn = capture; console.error = capture; console.info = () => {}; console.debug = () => {}; console.log = () => {};
const finish = (code = 0) => { process.stdout.write('\n${MARK}' + JSON.stringify(out) + '\n', () => process.exit(code)); };
const now = () => performance.now();
async function step(name, fn) {
  const t = now();
  try { const detail = await fn(); out.steps.push({ step: name, ok: true, ms: Math.round(now() - t), ...(detail ? { detail } : {}) }); return detail; }
  catch (e) { out.steps.push({ step: name, ok: false, ms: Math.round(now() - t), error: redact(e?.message ?? e).slice(0, 400) }); return undefined; }
}
async function main() {
  // The plugin imports openclaw/plugin-sdk, which the gateway provides: resolve it from the global install.
  const globalModules = join(dirname(process.execPath), '..', 'lib', 'node_modules') + '/';
  registerHooks({ resolve: (s, c, next) => (s === 'openclaw' || s.startsWith('openclaw/')) ? next(s, { ...c, parentURL: pathToFileURL(globalModules).href }) : next(s, c) });
  const configPath = process.env.OPENCLAW_CONFIG_PATH ?? join(process.env.HOME ?? '/home/node', '.openclaw', 'openclaw.json');
  const live = JSON.parse(readFileSync(configPath, 'utf8'));
  const entry = live?.plugins?.entries?.['openclaw-mem0'];
  if (!entry || entry.enabled === false) throw new Error('the openclaw-mem0 plugin is not enabled in ' + configPath);
  const expand = (v) => typeof v === 'string'
    ? v.replace(/\$\{([A-Z_][A-Z0-9_]*)\}/g, (_, k) => { const x = process.env[k] ?? ''; if (x) secrets.add(x); return x; })
    : Array.isArray(v) ? v.map(expand) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, expand(x)])) : v;
  const plugin = await import(pathToFileURL(join(pluginPath, 'dist', 'index.js')).href);
  const cfg = plugin.mem0ConfigSchema.parse(expand(entry.config ?? {}));
  if (cfg.mode !== 'open-source') throw new Error('the plugin runs in ' + cfg.mode + ' mode, not open-source');
  const oss = cfg.oss ?? {};
  out.config = {
    userId: cfg.userId, searchThreshold: cfg.searchThreshold, topK: cfg.topK,
    historyDbPath: oss.historyDbPath ?? null, vectorProvider: oss.vectorStore?.provider ?? 'memory',
    vectorDbPath: oss.vectorStore?.config?.dbPath ?? null,
    dimension: oss.vectorStore?.config?.dimension ?? oss.embedder?.config?.embeddingDims ?? null,
  };
  const provider = plugin.createProvider(cfg, { resolvePath: (p) => isAbsolute(p) ? p : resolve(process.cwd(), p) });
  const ok = await step('init', async () => { await provider.ensureMemory(); return { ready: true }; });
  if (!ok) return;
  const mem = provider.memory;
  out.history = { enabled: !mem.config.disableHistory };
  out.config.effectiveHistoryDbPath = mem.config.disableHistory ? null : (mem.config.historyStore?.config?.historyDbPath ?? mem.config.historyDbPath ?? null);
  out.config.effectiveVectorDbPath = mem.vectorStore?.dbPath ?? null;
  out.config.storeDimension = mem.vectorStore?.dimension ?? mem.config.vectorStore?.config?.dimension ?? null;
  const user = req.userId;
  const isCanary = (m) => typeof m?.memory === 'string' && m.memory.startsWith(req.prefix);
  if (req.op === 'canary' || req.op === 'write') {
    await step('cleanup', async () => {
      const stale = (await provider.getAll({ user_id: user, page_size: 100000 })).filter(isCanary);
      for (const m of stale) await provider.delete(m.id);
      return { removed: stale.length };
    });
  }
  const add = async () => {
    const r = await provider.add([{ role: 'user', content: req.text }], { user_id: user, infer: false, metadata: { steward_canary: true } });
    const id = r.results?.[0]?.id;
    if (!id) throw new Error('add returned no memory (' + JSON.stringify(r).slice(0, 200) + ')');
    return { id };
  };
  const read = async (id) => {
    const m = await mem.get(id);
    if (!m) throw new Error('memory ' + id + ' not found');
    if (m.memory !== req.text) throw new Error('memory ' + id + ' reads back different text');
    if (m.user_id !== user) throw new Error('memory ' + id + ' belongs to ' + m.user_id + ', not ' + user);
    return { id, user: m.user_id };
  };
  const gone = async (id) => {
    const m = await mem.get(id);
    if (m) throw new Error('memory ' + id + ' is still readable after delete');
    const hits = await provider.search(req.text, { user_id: user, top_k: 5, threshold: 0 });
    if (hits.some((h) => h.id === id)) throw new Error('memory ' + id + ' is still found by search after delete');
    return { id };
  };
  if (req.op === 'canary') {
    const w = await step('write', add);
    if (w) {
      await step('read', () => read(w.id));
      await step('search', async () => {
        const threshold = cfg.searchThreshold;
        const hits = await provider.search(req.text, { user_id: user, top_k: Math.max(cfg.topK ?? 5, 5), threshold });
        const hit = hits.find((h) => h.id === w.id);
        if (hit) return { id: w.id, score: hit.score, threshold, results: hits.length };
        const all = await provider.search(req.text, { user_id: user, top_k: 20, threshold: 0 });
        const raw = all.find((h) => h.id === w.id);
        throw new Error(raw ? 'not found at the search threshold ' + threshold + ' (its score is ' + raw.score + ')' : 'not found by search (' + all.length + ' results without a threshold)');
      });
      await step('history', async () => {
        if (mem.config.disableHistory) throw new Error('history disabled: mem0 runs without its history database');
        const h = await mem.history(w.id);
        const added = h.find((e) => e.action === 'ADD' && e.new_value === req.text);
        if (!added) throw new Error('no ADD entry in the history of ' + w.id + ' (' + h.length + ' entries)');
        return { id: w.id, entries: h.length };
      });
      const d = await step('delete', async () => { await provider.delete(w.id); return { id: w.id }; });
      if (d) await step('gone', () => gone(w.id));
    }
    await step('embed', async () => ({ length: (await mem.embedder.embed('steward dimension probe')).length }));
  } else if (req.op === 'write') {
    await step('write', add);
  } else if (req.op === 'recall') {
    const r = await step('read', () => read(req.id));
    if (r) {
      await step('search', async () => {
        const threshold = cfg.searchThreshold;
        const hits = await provider.search(req.text, { user_id: user, top_k: Math.max(cfg.topK ?? 5, 5), threshold });
        const hit = hits.find((h) => h.id === req.id);
        if (hit) return { id: req.id, score: hit.score, threshold, results: hits.length };
        throw new Error('not found by search at the threshold ' + threshold + ' (' + hits.length + ' results)');
      });
    }
  } else if (req.op === 'readback') {
    const r = await step('read', () => read(req.id));
    if (r) { await step('delete', async () => { await provider.delete(req.id); return { id: req.id }; }); await step('gone', () => gone(req.id)); }
    else await step('delete', async () => { try { await provider.delete(req.id); } catch {} return { id: req.id }; });
  }
}
main().then(() => finish(), (e) => {
  out.steps.push({ step: 'init', ok: false, ms: 0, error: redact(e?.message ?? e).slice(0, 400) });
  finish();
});
`;

/** The plugin's directory as the live config loads it, or the image's default. */
export function pluginPathOf(live: Record<string, unknown> | undefined): string {
  const paths = (live?.plugins as { load?: { paths?: unknown } } | undefined)?.load?.paths;
  const found = Array.isArray(paths)
    ? paths.find((p) => typeof p === 'string' && p.includes('openclaw-mem0'))
    : undefined;
  return typeof found === 'string' ? found : MEM0_PLUGIN_PATH;
}

/**
 * Labels every fresh proof container, so one left behind by a cut session is removed by the next proof. The value
 * keeps its first name: hosts may still hold containers labelled with it.
 */
export const FRESH_PROOF_LABEL = 'steward.memory-probe=fresh';

/**
 * Where a proof runs: in the gateway container (`docker exec`), or in a fresh container of the gateway's image that
 * has only what a restart keeps — the gateway's volumes and bind mounts (`--volumes-from`), its network namespace
 * (for the embedder), its env file and empty tmpfs mounts where it has them — and neither its writable layer nor its
 * tmpfs contents. Removed on exit.
 */
export type ProofPlace =
  | { readonly kind: 'exec' }
  | {
      readonly kind: 'fresh';
      readonly image: string;
      /** The gateway's tmpfs destinations: mounted empty here too, as a restart leaves them. */
      readonly tmpfs: readonly string[];
      readonly envFile?: string;
    }
  | {
      /** A container of `image` with these directories where the gateway has its volumes (a restore drill). */
      readonly kind: 'mounts';
      readonly image: string;
      readonly mounts: readonly { readonly source: string; readonly target: string }[];
      readonly envFile?: string;
    };

/** The command that starts node with the proof script on stdin, in `place`. */
export function proofArgv(
  spec: Spec,
  containerId: string,
  place: ProofPlace,
  pluginPath: string,
  request: ProofRequest,
): string[] {
  const user = `${spec.stack.uid}:${spec.stack.gid}`;
  const node = ['node', '--input-type=module', '-', pluginPath, JSON.stringify(request)];
  if (place.kind === 'exec') {
    return ['docker', 'exec', '-i', '-u', user, '-e', 'MEM0_TELEMETRY=false', containerId, ...node];
  }
  // A fresh container takes the gateway's volumes and mounts; a drill's takes the staged directories in their place.
  // Destinations come from the host's `docker inspect`: only plain absolute paths reach --tmpfs (`dest:options`).
  const volumes =
    place.kind === 'fresh'
      ? ['--volumes-from', containerId]
      : place.mounts.flatMap((m) => ['--mount', `type=bind,source=${m.source},target=${m.target}`]);
  const tmpfs = [...new Set(['/tmp', ...(place.kind === 'fresh' ? place.tmpfs : [])])].filter(
    (d) => /^\/[\w./-]*$/.test(d) && !d.includes('..'),
  );
  return [
    'docker',
    'run',
    '--rm',
    '-i',
    '--label',
    FRESH_PROOF_LABEL,
    '--network',
    `container:${containerId}`,
    ...volumes,
    '--read-only',
    ...tmpfs.flatMap((d) => ['--tmpfs', `${d}:size=64m,uid=${spec.stack.uid},gid=${spec.stack.gid},mode=0700`]),
    '--cap-drop',
    'ALL',
    '--security-opt',
    'no-new-privileges:true',
    '-u',
    user,
    '-e',
    'MEM0_TELEMETRY=false',
    ...(place.envFile ? ['--env-file', place.envFile] : []),
    '--entrypoint',
    'node',
    place.image,
    ...node.slice(1),
  ];
}

/**
 * Runs one proof in the gateway container, or in a fresh container beside it (see {@link ProofPlace}).
 * @throws CommandFailed (retryable) when the script printed no result (the container restarting, node killed);
 *   UnexpectedHostOutput when its result is not the report.
 */
export async function runPluginProof(
  session: HostSession,
  spec: Spec,
  containerId: string,
  pluginPath: string,
  request: ProofRequest,
  place: ProofPlace = { kind: 'exec' },
): Promise<ProofReport> {
  const argv = proofArgv(spec, containerId, place, pluginPath, request);
  // A fresh container a cut session left running would hold the stores open: gone before the next one starts.
  const sweep =
    place.kind !== 'exec'
      ? `ids=$(docker ps -aq ${sh(['--filter', `label=${FRESH_PROOF_LABEL}`])}); [ -z "$ids" ] || docker rm -f $ids >/dev/null\n`
      : '';
  const r = await session.script(`${sweep}${sh(argv)} <<'STEWARD_MEMORY_PROOF'\n${PROOF_JS}\nSTEWARD_MEMORY_PROOF`, {
    timeoutMs: 180_000,
    label: `memory proof (${request.op})`,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith(MARK));
  if (!line) {
    // docker exec itself failed (the container restarting, node killed): worth another attempt.
    const why = (r.stderr || r.stdout).trim().split('\n').slice(-3).join(' | ').slice(0, 400);
    throw new CommandFailed(session.target.name, `memory proof (${request.op}) printed no result`, r.code, why);
  }
  let data: unknown;
  try {
    data = JSON.parse(line.slice(MARK.length));
  } catch {
    throw new UnexpectedHostOutput(session.target.name, 'memory proof printed a result that is not JSON');
  }
  return parseProofReport(data, session.target.name);
}
