/** Human output: live step lines while a workflow runs, then a summary of changes per host. */
import type { Change, ControlResult, HostReport, Mode, StepReport } from '../model/report';
import type { ResultDocument } from './operation';

/**
 * Where a line of human output goes: the CLI's stdout, or for a command run by the local worker on the CLI's behalf
 * (client/local-worker.ts), the CLI's socket.
 */
export type Print = (line: string) => void;
export const toStdout: Print = (line) => console.log(line);

const SYMBOL: Record<StepReport['status'], string> = {
  pending: ' ',
  running: '…',
  completed: '✓',
  failed: '✗',
  skipped: '-',
};

function seconds(ms?: number): string {
  return ms === undefined ? '' : `${(ms / 1000).toFixed(1)}s`;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

export function describeChange(c: Change): string {
  const fmt = (v: unknown) => (v === undefined ? '' : typeof v === 'string' ? v : JSON.stringify(v));
  const delta =
    c.before !== undefined || c.after !== undefined ? ` ${fmt(c.before) || '∅'} → ${fmt(c.after) || '∅'}` : '';
  return `${c.action} ${c.resource}${delta}`;
}

/** Calls `poll` every 300 ms until stopped, then once more, so the last state is printed too. */
export function pollUntilStopped(poll: () => Promise<void>): { stop(): Promise<void> } {
  let stopped = false;
  // The pause between polls ends early on stop: the last poll runs at once, and no timer keeps the process up.
  let wake = () => {};
  const loop = (async () => {
    while (!stopped) {
      await poll();
      if (stopped) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 300);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    await poll();
  })();
  return {
    async stop() {
      stopped = true;
      wake();
      await loop;
    },
  };
}

/** One step's line as it changes; `subject` is the host, or what the step works on there (`web1 gateway-token`). */
export function printProgress(subject: string, step: StepReport, mode: Mode, print: Print = toStdout): void {
  const verb = mode === 'plan' ? 'to change' : 'changed';
  const detail =
    step.status === 'running'
      ? 'running'
      : step.status === 'failed'
        ? `failed: ${step.error ?? ''}`
        : step.status === 'skipped'
          ? 'skipped'
          : `${step.changes.length ? `${step.changes.length} ${verb}` : 'no change'} ${seconds(step.durationMs)}`;
  print(`  ${SYMBOL[step.status]} ${subject.padEnd(14)} ${step.step.padEnd(22)} ${detail}`);
  if (step.status === 'completed') for (const c of step.changes) print(`      ${describeChange(c)}`);
}

/** What a running step reports of its progress, under its line. */
export function printDetail(subject: string, step: string, line: string, print: Print = toStdout): void {
  print(`  … ${subject.padEnd(14)} ${step.padEnd(22)} ${line}`);
}

const CONTROLS_TITLE: Partial<Record<HostReport['operation'], string>> = {
  harden: 'hardening report',
  deploy: 'verification',
  memory: 'memory check',
};

const CONTROL_MARK: Record<ControlResult['status'], string> = { pass: 'pass', fail: 'FAIL', 'not-applicable': 'n/a ' };

/** The controls an operation checked (hardening, deploy verification): one line each, failures first. */
export function printControls(controls: readonly ControlResult[], title = 'controls', print: Print = toStdout): void {
  const order = { fail: 0, 'not-applicable': 1, pass: 2 };
  const sorted = [...controls].sort((a, b) => order[a.status] - order[b.status]);
  const counts = controls.reduce<Record<string, number>>((n, c) => ({ ...n, [c.status]: (n[c.status] ?? 0) + 1 }), {});
  print(
    `  ${title}: ${counts.pass ?? 0} pass, ${counts.fail ?? 0} fail, ${counts['not-applicable'] ?? 0} not applicable`,
  );
  for (const c of sorted) {
    const detail =
      c.status === 'pass'
        ? c.observed
        : `expected ${c.expected}, observed ${c.observed}${c.note ? ` (${c.note})` : ''}`;
    const took = c.durationMs !== undefined ? ` [${c.durationMs} ms]` : '';
    print(`    ${CONTROL_MARK[c.status]} ${c.control.padEnd(40)} ${detail}${took}`);
  }
}

/** Drift plan rows: resource, expected, observed, and whether the host (corrective) or the spec (intentional) moved. */
function printDriftTable(changes: readonly Change[], print: Print): void {
  const show = (v: unknown) => (v === undefined ? '∅' : typeof v === 'string' ? v : JSON.stringify(v));
  const rows = changes.map((c) => [c.resource, show(c.after), show(c.before), c.drift ?? '']);
  const widths = [0, 1].map((i) => Math.min(48, Math.max(...rows.map((r) => r[i]!.length), 8)));
  print(`  ${'RESOURCE'.padEnd(widths[0]!)}  ${'EXPECTED'.padEnd(widths[1]!)}  OBSERVED  KIND`);
  for (const [resource, expected, observed, kind] of rows) {
    print(`  ${resource!.padEnd(widths[0]!)}  ${expected!.padEnd(widths[1]!)}  ${observed}  ${kind}`);
  }
}

export function printResult(
  doc: ResultDocument,
  reports: readonly HostReport[],
  mode: Mode,
  print: Print = toStdout,
): void {
  for (const r of reports) {
    const what = mode === 'plan' ? 'would change' : 'changed';
    const line =
      r.status === 'completed'
        ? `${plural(r.changes.length, 'resource')} ${what}`
        : `FAILED: ${r.error ?? 'unknown error'}`;
    print(`${r.host}: ${line}`);
    if (r.operation === 'drift' && mode === 'plan' && r.changes.length > 0) printDriftTable(r.changes, print);
    for (const f of r.findings) print(`  [${f.severity}] ${f.id}: ${f.message}`);
    if (r.controls?.length) printControls(r.controls, CONTROLS_TITLE[r.operation] ?? 'controls', print);
  }
  print(`${doc.status} in ${seconds(doc.durationMs)} — workflow ${doc.workflowId}`);
}
