// Closes a test run with what a truncated log must still show: each file's wall time (its tests' own time and the
// rest, mostly setup) with its timed setup phases (test/support/phases.ts), slowest first, from the durations
// reporter (test/support/durations-reporter.ts); one line per failed test
// (file, name, first line of the error); then "vitest: N passed, N failed, N skipped" from vitest's JSON report.
import { existsSync, readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface Assertion {
  fullName: string;
  status: string;
  failureMessages?: string[];
}

interface FileResult {
  name: string;
  message?: string;
  assertionResults?: Assertion[];
}

interface Report {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests?: number;
  numTodoTests?: number;
  testResults?: FileResult[];
}

interface Phase {
  runId?: string;
  file: string;
  phase: string;
  ms: number;
  ok: boolean;
}

interface FileDurations {
  file: string;
  project: string;
  state: string;
  loadMs: number;
  runMs: number;
  testsMs: number;
  tests: number;
  startMs?: number;
  endMs?: number;
}

const REPORT = '.steward/test-results.json';
const DURATIONS = '.steward/test-durations.json';
const PHASES = '.steward/test-phases.jsonl';

const firstLine = (text: string | undefined) =>
  (text ?? '')
    .replace(/\x1b\[[0-9;]*m/g, '')
    .split('\n')
    .find((l) => l.trim() !== '')
    ?.trim()
    .slice(0, 200) ?? '';

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function readPhases(runId: string | undefined): Phase[] {
  if (!existsSync(PHASES)) return [];
  return readFileSync(PHASES, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .flatMap((l) => {
      try {
        const p = JSON.parse(l) as Phase;
        return p.runId === runId ? [p] : [];
      } catch {
        return [];
      }
    });
}

/** Each file's wall time (load, then hooks and tests), its tests' share, and its timed setup phases; slowest first. */
function printDurations(): void {
  if (!existsSync(DURATIONS)) {
    console.log(`no per-file durations (${DURATIONS} missing)`);
    return;
  }
  const { runId, files } = JSON.parse(readFileSync(DURATIONS, 'utf8')) as { runId?: string; files: FileDurations[] };
  const phases = readPhases(runId);
  const rows = files.map((f) => ({ ...f, wall: f.loadMs + f.runMs }));
  rows.sort((a, b) => b.wall - a.wall);
  const width = Math.max(...rows.map((r) => r.file.length), 40);
  const col = (text: string) => text.padStart(9);
  const span = (r: FileDurations) =>
    r.startMs === undefined || r.endMs === undefined ? '' : `  ${seconds(r.startMs)} → ${seconds(r.endMs)}`;
  console.log(`${'file'.padEnd(width)}  ${col('wall')}  ${col('tests')}  ${col('setup')}  tests  from → to`);
  for (const r of rows) {
    console.log(
      `${r.file.padEnd(width)}  ${col(seconds(r.wall))}  ${col(seconds(r.testsMs))}  ` +
        `${col(seconds(Math.max(0, r.wall - r.testsMs)))}  ${r.tests}${r.state === 'passed' ? '' : ` ${r.state}`}` +
        span(r),
    );
    for (const p of phases.filter((x) => x.file === r.file)) {
      console.log(`  ${`setup: ${p.phase}${p.ok ? '' : ' (failed)'}`.padEnd(width)}${col(seconds(p.ms))}`);
    }
  }
  for (const project of [...new Set(rows.map((r) => r.project))]) {
    const own = rows.filter((r) => r.project === project);
    console.log(`${project}: ${own.length} files, ${seconds(own.reduce((n, r) => n + r.wall, 0))} of file time`);
  }
}

try {
  printDurations();
  const r = JSON.parse(readFileSync(REPORT, 'utf8')) as Report;
  for (const file of r.testResults ?? []) {
    const name = relative(process.cwd(), file.name);
    const failed = (file.assertionResults ?? []).filter((a) => a.status === 'failed');
    for (const a of failed) console.log(`FAILED ${name} > ${a.fullName}: ${firstLine(a.failureMessages?.[0])}`);
    if (failed.length === 0 && file.message) console.log(`FAILED ${name}: ${firstLine(file.message)}`);
  }
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
} catch (err) {
  console.log(`vitest: no report (${err instanceof Error ? err.message : String(err)})`);
}
