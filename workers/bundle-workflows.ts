/**
 * Bundles steward's workflow code into a file: `node --import tsx workers/bundle-workflows.ts OUT`. The worker
 * runs it as a child process so webpack's memory is returned when the child exits instead of staying in the
 * worker's heap for its whole life.
 */
import { writeFile } from 'node:fs/promises';
import { bundleWorkflowCode } from '@temporalio/worker';
import { WORKFLOW_INTERCEPTOR_MODULES, WORKFLOWS_PATH } from './paths';

const out = process.argv[2];
if (!out) {
  console.error('usage: bundle-workflows.ts OUT');
  process.exit(64);
}
const { code } = await bundleWorkflowCode({
  workflowsPath: WORKFLOWS_PATH,
  workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
  logger: { trace() {}, debug() {}, info() {}, log() {}, warn: console.warn, error: console.error },
});
await writeFile(out, code);
