// Lint: type-aware TypeScript rules, plus the Temporal rules — workflows are deterministic and run in a sandbox,
// so they may not import Node built-ins or activity implementations, and no promise may float.
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

const nodeBuiltins = builtinModules.flatMap((m) => [m, `node:${m}`]);

/**
 * Lint for one layer: `files` may not import from the folders `above` (nor Node built-ins when `node` is false);
 * `typesFrom` folders only as types.
 */
function layer(files, above, { node = true, typesFrom = [] } = {}) {
  // Relative imports only: `@temporalio/common` is a package, not the common/ folder.
  const regex = (dir) => `^(\\.\\./)+${dir}(/.*)?$`;
  return {
    files,
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: node
            ? []
            : nodeBuiltins.map((name) => ({
                name,
                message: 'Deterministic code (model, workflows): no Node built-ins.',
              })),
          patterns: [
            ...above.map((dir) => ({
              regex: regex(dir),
              message: `Layers point down: ${files[0].split('/')[0]}/ may not import ${dir}/.`,
            })),
            ...typesFrom.map((dir) => ({
              regex: regex(dir),
              allowTypeImports: true,
              message: `Import ${dir}/ as types only.`,
            })),
          ],
        },
      ],
    },
  };
}

export default tseslint.config(
  { ignores: ['node_modules/', '.steward/', 'coverage/', 'dist/', 'eslint.config.js', 'bin/'] },
  ...tseslint.configs.recommended,
  {
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/consistent-type-imports': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  {
    // Plain JavaScript, no type information: CommonJS modules the SDK loads by path (codec/failure-converter.cjs) and
    // scripts that run inside image builds (images/*/*.mjs).
    files: ['**/*.cjs', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    rules: { ...tseslint.configs.disableTypeChecked.rules, '@typescript-eslint/no-require-imports': 'off' },
  },
  // Layers point down: the model (model/) ← codec/ ← common/ (Node code client and worker share) ← activities/ and
  // workflows/ ← workers/ ← client/. A folder imports only from the layers below it; workflows take activities as
  // types only, and the model and workflows (deterministic, sandboxed) no Node built-ins.
  layer(['model/**/*.ts'], ['codec', 'common', 'activities', 'workflows', 'workers', 'client'], { node: false }),
  layer(['codec/**/*.ts'], ['common', 'activities', 'workflows', 'workers', 'client']),
  layer(['common/**/*.ts'], ['activities', 'workflows', 'workers', 'client']),
  layer(['activities/**/*.ts'], ['workflows', 'workers', 'client']),
  layer(['workflows/**/*.ts'], ['common', 'codec', 'workers', 'client'], { node: false, typesFrom: ['activities'] }),
  layer(['workers/**/*.ts'], ['client']),
);
