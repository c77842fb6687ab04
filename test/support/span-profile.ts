/**
 * Where an integration file's time goes: with STEWARD_TEST_SPANS=DIR, each stage's worker exports its traces to a
 * receiver of its own (fixtures.ts) and writes them to DIR/<task queue>.jsonl when the file ends. Run as a script,
 * `npx tsx test/support/span-profile.ts DIR`, this sums them: wall time per activity type and per SSH command label
 * (an `openclaw …` command is labelled by its subcommand), with counts.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ReceivedSpan } from '../doubles/otlp-receiver';

interface SpanLine {
  readonly trace: string;
  readonly id: string;
  readonly parent: string;
  readonly name: string;
  readonly ms: number;
}

export async function writeSpans(dir: string, taskQueue: string, spans: readonly ReceivedSpan[]): Promise<void> {
  mkdirSync(dir, { recursive: true });
  const lines = spans.map((s) =>
    JSON.stringify({
      trace: s.traceId,
      id: s.spanId,
      parent: s.parentSpanId,
      name: s.name,
      ms: Number((s.endNs - s.startNs) / 1_000_000n),
    } satisfies SpanLine),
  );
  writeFileSync(join(dir, `${taskQueue}.jsonl`), lines.join('\n') + '\n');
}

function summarize(dir: string): string {
  const out: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.jsonl'))) {
    const spans = readFileSync(join(dir, file), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as SpanLine);
    const byId = new Map(spans.map((s) => [s.id, s]));
    const activityOf = (s: SpanLine): string => {
      for (let p = byId.get(s.parent); p; p = byId.get(p.parent))
        if (p.name.startsWith('RunActivity:')) return p.name.slice('RunActivity:'.length);
      return '?';
    };
    const sum = (key: (s: SpanLine) => string | undefined) => {
      const totals = new Map<string, { ms: number; n: number }>();
      for (const s of spans) {
        const k = key(s);
        if (!k) continue;
        const t = totals.get(k) ?? { ms: 0, n: 0 };
        totals.set(k, { ms: t.ms + s.ms, n: t.n + 1 });
      }
      return [...totals].sort((a, b) => b[1].ms - a[1].ms).slice(0, 25);
    };
    const row = ([k, t]: [string, { ms: number; n: number }]) =>
      `  ${(t.ms / 1000).toFixed(1).padStart(8)} s ${String(t.n).padStart(5)}×  ${k}`;
    out.push(`== ${file}`, ' activities (wall, summed):');
    out.push(...sum((s) => (s.name.startsWith('RunActivity:') ? s.name.slice(12) : undefined)).map(row));
    out.push(' ssh commands (wall, summed; by activity):');
    out.push(...sum((s) => (s.name.startsWith('ssh ') ? `${activityOf(s)} · ${s.name}` : undefined)).map(row));
  }
  return out.join('\n');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  console.log(summarize(process.argv[2] ?? '.steward/spans'));
}
