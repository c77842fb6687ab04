/**
 * Workflow code as it was at an earlier commit, bundled as a worker loads it: for recording histories of runs started
 * on old code, which today's workflows must replay (test/unit/*-histories/record.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleWorkflowCode, DefaultLogger } from '@temporalio/worker';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** `workflows/` and the model (`spec/` before it was renamed `model/`) at `commit`, bundled. */
export async function legacyWorkflowBundle(commit: string): Promise<{ code: string }> {
  // Under the tree, so webpack finds node_modules; .steward/ is ignored by git.
  const dir = join(ROOT, '.steward', `legacy-workflows-${commit}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const folders = execFileSync('git', ['ls-tree', '--name-only', commit], { cwd: ROOT, encoding: 'utf8' })
    .split('\n')
    .filter((f) => ['workflows', 'spec', 'model'].includes(f));
  execFileSync('sh', ['-c', `git archive "$0" "$@" | tar -x -C "${dir}"`, commit, ...folders], { cwd: ROOT });
  try {
    return await bundleWorkflowCode({
      workflowsPath: join(dir, 'workflows/index.ts'),
      workflowInterceptorModules: [join(dir, 'workflows/interceptors.ts')],
      logger: new DefaultLogger('WARN'),
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
