import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // One Temporal dev server for the whole run; its address reaches tests through inject('temporalAddress').
    globalSetup: ['test/support/global-setup.ts'],
    // Workers load the Temporal core bridge (Rust threads): child processes isolate it better than worker threads.
    pool: 'forks',
    // One test file at a time. These machines have 2 cores, and an integration file already keeps them busy: a
    // Temporal worker, webpack bundling the workflows, a VPS simulator (systemd + nested dockerd), and the shared dev
    // server. Files side by side starve each other and the dev server, turning timeouts into flaky failures.
    fileParallelism: false,
    // Integration tests drive VPS simulators through whole operations: minutes, not seconds.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    teardownTimeout: 30_000,
    // .ci/run prints a summary line from the JSON report.
    reporters: ['default', ['json', { outputFile: '.steward/test-results.json' }]],
  },
});
