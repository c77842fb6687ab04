// Prints one closing line from vitest's JSON report: "vitest: N passed, N failed, N skipped".
import { readFileSync } from 'node:fs';

interface Report {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests?: number;
  numTodoTests?: number;
}

try {
  const r = JSON.parse(readFileSync('.steward/test-results.json', 'utf8')) as Report;
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
} catch (err) {
  console.log(`vitest: no report (${err instanceof Error ? err.message : String(err)})`);
}
