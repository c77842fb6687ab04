/** Where steward's workflow code lives, for the worker and the bundler. */
import { fileURLToPath } from 'node:url';

export const WORKFLOWS_PATH = fileURLToPath(new URL('../workflows/index.ts', import.meta.url));
/** Workflow interceptor modules every steward worker installs: step summaries for the UI, inherited triggers. */
export const WORKFLOW_INTERCEPTOR_MODULES = [fileURLToPath(new URL('../workflows/interceptors.ts', import.meta.url))];
/** Names a prebuilt workflow bundle (`steward bundle`) for `steward worker` when --workflow-bundle is not given. */
export const WORKFLOW_BUNDLE_ENV = 'STEWARD_WORKFLOW_BUNDLE';
