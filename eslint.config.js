// Lint: type-aware TypeScript rules, plus the Temporal rules — workflows are deterministic and run in a sandbox,
// so they may not import Node built-ins or activity implementations, and no promise may float.
import { builtinModules } from 'node:module';
import tseslint from 'typescript-eslint';

const nodeBuiltins = builtinModules.flatMap((m) => [m, `node:${m}`]);

export default tseslint.config(
  { ignores: ['node_modules/', '.steward/', 'coverage/', 'eslint.config.js', 'bin/'] },
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
  {
    files: ['workflows/**/*.ts', 'spec/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeBuiltins.map((name) => ({ name, message: 'Workflow code is deterministic: no Node built-ins.' })),
          patterns: [
            {
              group: ['**/activities', '**/activities/**'],
              allowTypeImports: true,
              message: 'Import activities as types only.',
            },
            {
              group: ['**/client/**', '**/workers/**'],
              message: 'Workflow code may not import client or worker code.',
            },
            {
              group: ['**/codec', '**/codec/**'],
              message: 'Workflow code may not import the payload codec: it runs in clients and workers.',
            },
          ],
        },
      ],
    },
  },
);
