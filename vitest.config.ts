import { defineConfig } from 'vitest/config';
import LongestFirst from './test/support/sequencer';

export default defineConfig({
  test: {
    // One Temporal dev server and one workflow bundle for the whole run; tests reach them through inject(…).
    globalSetup: ['test/support/global-setup.ts'],
    setupFiles: ['test/support/known-hosts-per-file.ts'],
    // Workers load the Temporal core bridge (Rust threads): child processes isolate it better than worker threads.
    pool: 'forks',
    maxWorkers: 3,
    // The longest integration files first (test/support/sequencer.ts).
    sequence: { sequencer: LongestFirst },
    teardownTimeout: 30_000,
    // .ci/run prints a summary from the JSON report and each file's time, hooks included.
    reporters: [
      'default',
      ['json', { outputFile: '.steward/test-results.json' }],
      './test/support/durations-reporter.ts',
    ],
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts'],
          // First, on three workers; then the integration files on two (a group per worker count).
          sequence: { groupOrder: 0 },
          // Unit and workflow tests share no host: they run in parallel (the workflow tests on task queues of
          // their own against the shared dev server).
          testTimeout: 120_000,
          hookTimeout: 300_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // Two integration files at a time. Each has its own simulators, task queue and worker, and one file alone
          // leaves about a third of these two cores idle while it waits on a host: deploy and memory side by side took
          // 766 s (both passing), against 468 s + 766 s one after the other in the last full run. Two already keep
          // both cores busy (load 5–6 in CI); three were not tried.
          maxWorkers: 2,
          sequence: { groupOrder: 1 },
          // Integration tests drive VPS simulators through whole operations: minutes, not seconds.
          testTimeout: 600_000,
          hookTimeout: 1_200_000,
        },
      },
    ],
  },
});
