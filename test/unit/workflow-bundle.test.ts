// Workflows stay lean: in the worker's reusable V8 context every workflow run evaluates its own copy of the modules
// it imports, so zod (and the spec schema built with it) or yaml in the workflow bundle would cost megabytes per
// running workflow. Workflows import only pure, dependency-free model modules.
import { describe, expect, it } from 'vitest';
import { bundleInChild } from '../../workers/worker';

describe('workflow bundle', () => {
  it('the bundle the worker builds holds no zod, yaml or spec schema module', async () => {
    const { code } = await bundleInChild();
    const modules = [...code.matchAll(/\/\*{3}\/ "([^"]+)"/g)].map((m) => m[1]!);
    expect(modules).toContain('./workflows/drift.ts');
    expect(modules).toContain('./model/policy.ts');
    expect(modules.filter((m) => /node_modules\/(zod|yaml)\/|model\/(schema|policy-schema)\.ts$/.test(m))).toEqual([]);
  }, 60_000);
});
