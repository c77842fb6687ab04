// Closes a test run with what a truncated log must still show: one line per failed test (file, name, first line of
// the error), then "vitest: N passed, N failed, N skipped" from vitest's JSON report.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

interface Assertion {
  fullName: string;
  status: string;
  failureMessages?: string[];
}

interface Report {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests?: number;
  numTodoTests?: number;
  testResults?: { name: string; message?: string; assertionResults?: Assertion[] }[];
}

const firstLine = (text: string | undefined) =>
  (text ?? '')
    .replace(/\x1b\[[0-9;]*m/g, '')
    .split('\n')
    .find((l) => l.trim() !== '')
    ?.trim()
    .slice(0, 200) ?? '';

try {
  const r = JSON.parse(readFileSync('.steward/test-results.json', 'utf8')) as Report;
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
