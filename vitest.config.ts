import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // One Temporal dev server and one workflow bundle for the whole run; tests reach them through inject(…).
    globalSetup: ['test/support/global-setup.ts'],
    // Workers load the Temporal core bridge (Rust threads): child processes isolate it better than worker threads.
    pool: 'forks',
    // Unit and workflow files side by side with the one integration file that runs at a time.
    maxWorkers: 3,
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
          // One integration file at a time. These machines have 2 cores, and an integration file already keeps them
          // busy: a Temporal worker, a VPS simulator (systemd + nested dockerd), and the shared dev server. Files
          // side by side starve each other and the dev server, turning timeouts into flaky failures.
          fileParallelism: false,
          // Integration tests drive VPS simulators through whole operations: minutes, not seconds.
          testTimeout: 600_000,
          hookTimeout: 1_200_000,
        },
      },
    ],
  },
});
