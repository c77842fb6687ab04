/**
 * Test file order: integration files run two at a time, so the longest ones start first and the short ones fill in
 * around them; otherwise a long file that starts last sets the run's end alone. Known costs (from the per-file CI
 * summary) order the files a clean clone has no timing cache for; files not listed follow, in vitest's own order.
 * Seeing the run's files, it also says which golden hosts to build ahead.
 */
import { BaseSequencer, type TestSpecification } from 'vitest/node';
import { goldenKindsIn, wantGolden } from './golden-prebuild';

/** Integration files, longest first (wall time in the CI summary). */
const LONGEST_FIRST = [
  'backup',
  'rotate',
  'deploy',
  'memory',
  'drift',
  'durability',
  'harden',
  'provision',
  'stack-images',
  'schedule',
  'audit',
  'approval',
  'cluster',
  'dev',
  'codec-ui',
  'firewall',
  'first-run',
].map((name) => `/test/integration/${name}.test.ts`);

function rank(spec: TestSpecification): number {
  const i = LONGEST_FIRST.findIndex((suffix) => spec.moduleId.endsWith(suffix));
  return i === -1 ? LONGEST_FIRST.length : i;
}

export default class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    // The golden hosts the integration files ask for are built while the unit tests run (golden-prebuild.ts).
    wantGolden(goldenKindsIn(files.filter((f) => f.moduleId.includes('/test/integration/')).map((f) => f.moduleId)));
    const sorted = await super.sort(files);
    // Array.prototype.sort is stable: unlisted files keep vitest's order among themselves.
    return sorted.sort((a, b) => rank(a) - rank(b));
  }
}
