/**
 * Bundles steward's workflow code into a file: `node --import tsx workers/bundle-workflows.ts OUT`. The worker
 * runs it as a child process so webpack's memory is returned when the child exits instead of staying in the
 * worker's heap for its whole life.
 */
import { buildWorkflowBundle, writeWorkflowBundle } from './bundle';

const out = process.argv[2];
if (!out) {
  console.error('usage: bundle-workflows.ts OUT');
  process.exit(64);
}
await writeWorkflowBundle(out, await buildWorkflowBundle());
