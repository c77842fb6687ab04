/** The layer rule in lint: each folder imports only from the layers below it (eslint.config.js). */
import { readFileSync } from 'node:fs';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

/** Lint messages of the rule for `file` with `line` appended to its real text. */
async function restricted(file: string, line: string): Promise<string[]> {
  // Only this rule, without type information: the project's config, minus the slow type-aware parse.
  const eslint = new ESLint({
    ruleFilter: ({ ruleId }) => ruleId === 'no-restricted-imports',
    overrideConfig: { languageOptions: { parserOptions: { projectService: false } } },
  });
  const [result] = await eslint.lintText(`${readFileSync(file, 'utf8')}\n${line}\n`, { filePath: file });
  return result!.messages.filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('layers point down', () => {
  it('refuses an upward import in every layer, and allows the downward ones', async () => {
    const upward: [string, string, RegExp][] = [
      ['model/units.ts', "export { TASK_QUEUE } from '../workflows/options';", /model\/ may not import workflows\//],
      ['codec/keys.ts', "export { loadCodecKeys } from '../common/codec-keys';", /codec\/ may not import common\//],
      [
        'common/keygen.ts',
        "export { SessionPool } from '../activities/host/session';",
        /common\/ may not import activities\//,
      ],
      ['activities/runs.ts', "export { cliUser } from '../client/context';", /activities\/ may not import client\//],
      ['workers/paths.ts', "export { uiLink } from '../client/context';", /workers\/ may not import client\//],
      ['workflows/options.ts', "export { createActivities } from '../activities';", /activities\/ as types only/],
    ];
    for (const [file, line, message] of upward) {
      const messages = await restricted(file, line);
      expect(messages, `${file}: ${line}`).toHaveLength(1);
      expect(messages[0]).toMatch(message);
    }
    const downward: [string, string][] = [
      ['activities/runs.ts', "export { loadCodecKeys } from '../common/codec-keys';"],
      ['workers/paths.ts', "export { hostWorkflowId } from '../model/ids';"],
      ['workflows/options.ts', "export type { Activities } from '../activities';"],
      ['codec/keys.ts', "export { ApplicationFailure } from '@temporalio/common';"],
    ];
    for (const [file, line] of downward) expect(await restricted(file, line), `${file}: ${line}`).toEqual([]);
  }, 60_000);
});
