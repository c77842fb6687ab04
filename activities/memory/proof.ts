/**
 * Controls from a canary or persistence proof: one per step (write, read by id, search, history, delete, gone), the
 * history switch, and the dimension check, each with its evidence and time. Pure.
 */
import type { ControlResult } from '../../model/report';
import type { Spec } from '../../model/schema';
import { control } from './controls';
import type { ProofReport, ProofStep } from './proof-report';

const CANARY_STEPS: { step: ProofStep['step']; id: string; expected: (user: string, threshold: string) => string }[] = [
  { step: 'write', id: 'memory.canary.write', expected: (u) => `a canary memory written under ${u} without inference` },
  { step: 'read', id: 'memory.canary.read', expected: () => 'read back by id: same text, same user' },
  { step: 'search', id: 'memory.canary.search', expected: (_, t) => `found by search${t}` },
  { step: 'history', id: 'memory.canary.history', expected: () => 'an ADD entry in its history' },
  { step: 'delete', id: 'memory.canary.delete', expected: () => 'deleted' },
  { step: 'gone', id: 'memory.canary.gone', expected: () => 'neither readable nor found after delete' },
];

function evidence(s: ProofStep): string {
  const d = s.detail ?? {};
  switch (s.step) {
    case 'write':
      return `written, id ${String(d.id)}`;
    case 'read':
      return `read back ${String(d.id)}`;
    case 'search':
      return `found, score ${typeof d.score === 'number' ? d.score.toFixed(3) : '?'} (${String(d.results)} results)`;
    case 'history':
      return `ADD entry present (${String(d.entries)} entries)`;
    case 'delete':
      return 'deleted';
    case 'gone':
      return 'gone';
    default:
      return 'ok';
  }
}

/** The step's control, or a failed one saying why it did not run. */
function stepControl(report: ProofReport, id: string, name: ProofStep['step'], expected: string): ControlResult {
  const s = report.steps.find((x) => x.step === name);
  if (s) return control(id, expected, s.ok ? evidence(s) : (s.error ?? 'failed'), s.ok, undefined, undefined, s.ms);
  const init = report.steps.find((x) => x.step === 'init' && !x.ok);
  const write = report.steps.find((x) => x.step === 'write' && !x.ok);
  const why = init
    ? `not run: mem0 did not start (${init.error ?? 'failed'})`
    : write
      ? 'not run: the write failed'
      : 'not run';
  return control(id, expected, why, false);
}

/** Controls of the canary proof. `user` is the probe user. */
export function canaryControls(report: ProofReport, user: string): ControlResult[] {
  const threshold =
    typeof report.config.searchThreshold === 'number' ? ` at the threshold ${report.config.searchThreshold}` : '';
  const out = CANARY_STEPS.map((c) => stepControl(report, c.id, c.step, c.expected(user, threshold)));
  const cleanup = report.steps.find((s) => s.step === 'cleanup');
  const removed = Number(cleanup?.detail?.removed ?? 0);
  if (removed > 0) {
    out.unshift(
      control(
        'memory.canary.stale',
        'no canary left by an earlier run',
        `${removed} removed`,
        true,
        undefined,
        undefined,
        cleanup?.ms,
      ),
    );
  }
  return out;
}

/** Whether mem0 keeps history: the plugin silently turns it off when its SQLite cannot open (or load). */
export function historyControl(report: ProofReport): ControlResult {
  const init = report.steps.find((s) => s.step === 'init');
  const path = report.config.effectiveHistoryDbPath ?? report.config.historyDbPath;
  const history = report.steps.find((s) => s.step === 'history');
  const why = report.warnings.find((w) => /history disabled|history/i.test(w));
  if (init && !init.ok)
    return control('memory.history-enabled', 'enabled', `unknown: mem0 did not start (${init.error ?? ''})`, false);
  const enabled = report.history.enabled && history?.ok !== false;
  return control(
    'memory.history-enabled',
    `enabled${typeof path === 'string' ? ` (${path})` : ''}`,
    enabled ? 'enabled' : `history disabled${why ? `: ${why}` : history?.error ? `: ${history.error}` : ''}`,
    enabled,
    enabled ? undefined : 'mem0 keeps working without history, so nothing else shows it',
  );
}

/**
 * The embedder's vector length against the store's configured dimension, the spec's, and the vectors already
 * stored (a changed embedder leaves old vectors of another length behind: mem0 #4195, #3705).
 */
export function dimensionControl(
  spec: Spec,
  report: ProofReport | undefined,
  stored: Record<number, number> | undefined,
): ControlResult {
  const want = spec.stack.memory.embedder.dimension;
  const embed = report?.steps.find((s) => s.step === 'embed');
  const length = embed?.ok ? Number(embed.detail?.length) : undefined;
  const store = report?.config.storeDimension ?? report?.config.dimension;
  const storedLengths = Object.keys(stored ?? {}).map(Number);
  const parts = [
    embed ? (length !== undefined ? `embedder returns ${length}` : `embedder failed: ${embed.error ?? ''}`) : undefined,
    store !== undefined && store !== null ? `store configured for ${String(store)}` : undefined,
    stored
      ? storedLengths.length
        ? `stored vectors ${Object.entries(stored)
            .map(([d, n]) => `${n}×${d}`)
            .join(', ')}`
        : 'no stored vectors'
      : undefined,
  ].filter(Boolean);
  if (!embed && store === undefined && !stored) {
    return control('memory.dimension', String(want), 'not observable with this adapter', true, undefined, 'na');
  }
  const pass =
    (length === undefined ? !embed : length === want) &&
    (store === undefined || store === null || Number(store) === want) &&
    storedLengths.every((d) => d === want);
  return control(
    'memory.dimension',
    `${want} everywhere (spec stack.memory.embedder.dimension)`,
    parts.join('; '),
    pass,
    undefined,
    undefined,
    embed?.ms,
  );
}

/** How the persistence proof read the canary back, how long that took, and why it could not, if it could not. */
export interface PersistenceProof {
  /** `fresh`: in a new container with only the consumer's volumes; `restart`: after restarting the consumer. */
  readonly kind: 'fresh' | 'restart';
  /** The restart and wait for health (restart), or the fresh container's whole run (fresh). */
  readonly ms?: number;
  readonly error?: string;
}

/** The persistence control from the write before and the read back after (see {@link PersistenceProof}). */
export function persistenceControl(
  consumer: string,
  before: ProofReport,
  after: ProofReport | undefined,
  proof: PersistenceProof,
  totalMs: number,
): ControlResult {
  const expected =
    proof.kind === 'restart'
      ? `a canary written before a restart of ${consumer} reads back after it`
      : `a canary written through ${consumer} reads back in a fresh container that has only its volumes`;
  const where = proof.kind === 'restart' ? 'across the restart' : 'outside the container';
  const fail = (observed: string) =>
    control('memory.persistence', expected, observed, false, undefined, undefined, totalMs);
  const write = before.steps.find((s) => s.step === 'write');
  if (!write?.ok) {
    const init = before.steps.find((s) => s.step === 'init' && !s.ok);
    return fail(`not written: ${(init ?? write)?.error ?? 'failed'}`);
  }
  if (proof.error) return fail(`${proof.kind === 'restart' ? 'restart' : 'fresh container'} failed: ${proof.error}`);
  if (!after) return fail('not read back');
  const read = after.steps.find((s) => s.step === 'read');
  const init = after.steps.find((s) => s.step === 'init' && !s.ok);
  if (!read?.ok) return fail(`lost ${where}: ${(read ?? init)?.error ?? 'not read'}`);
  const gone = after.steps.find((s) => s.step === 'gone');
  if (!gone?.ok) return fail(`read back, but not deleted afterwards: ${after.steps.find((s) => !s.ok)?.error ?? ''}`);
  const secs = proof.ms !== undefined ? (proof.ms / 1000).toFixed(1) : undefined;
  const observed =
    proof.kind === 'restart'
      ? `read back after the restart${secs ? ` (restart and health ${secs} s)` : ''}, then deleted`
      : `read back in a fresh container${secs ? ` (${secs} s)` : ''}, then deleted; ${consumer} kept serving`;
  return control('memory.persistence', expected, observed, true, undefined, undefined, totalMs);
}
