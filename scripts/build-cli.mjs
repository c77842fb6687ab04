// Compiles the CLI to JavaScript once (dist/cli/, one bundle with a chunk per lazily loaded command) so a command
// starts without compiling TypeScript: bin/steward.js runs it while every source it was built from is unchanged, and
// falls back to tsx otherwise. Each module keeps its own import.meta.url (the path of its source), so the paths it
// resolves relative to itself (scripts, the workflow sources, the bin) stay right. Run by scripts/setup.sh.
//
// The pure-JavaScript packages a command loads (the Temporal client, zod, yaml, commander) are bundled in too: loaded
// from node_modules one file at a time through Node's ESM loader (every CommonJS file lexed for its exports) they took
// ~0.1 s of each `steward drift`. Packages with native code, those that read files beside their own sources, the API's
// types and the worker's runtime (which brings its own copies of the SDK's shared modules) stay in node_modules:
// EXTERNAL.
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomUUID } from 'node:crypto';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(root, 'dist/cli');
const started = Date.now();
const EXTERNAL = [
  // native code, or files read beside their sources (grpc-js loads .proto files by its own path)
  '@temporalio/core-bridge',
  '@grpc/grpc-js',
  '@grpc/proto-loader',
  'ssh2',
  'cpu-features',
  'node-ssh',
  'dockerode',
  'esbuild',
  // The API's types: common/audit/history.ts loads protobufjs's JSON extension from the copy beside them at run time,
  // and that copy must be the one they were built with.
  '@temporalio/proto',
  // the worker's runtime and the packages it shares with the code it loads
  '@temporalio/worker',
  '@temporalio/workflow',
  '@temporalio/activity',
  '@temporalio/testing',
  'webpack',
  'vitest',
];
await rm(out, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: ['client/cli.ts'],
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external: EXTERNAL,
  // Bundled CommonJS code requires Node's built-ins (and EXTERNAL packages): an ES module has no `require` of its own.
  banner: {
    js: "import { createRequire as __stewardRequire } from 'node:module'; const require = __stewardRequire(import.meta.url);",
  },
  outdir: out,
  metafile: true,
  // A fresh id per build: what client/spec-cache.ts keys validated specs by (a new build may bring a new schema).
  define: { STEWARD_CLI_BUILD: JSON.stringify(randomUUID()) },
  logLevel: 'warning',
  plugins: [
    {
      // A file of an EXTERNAL package imported by its path without an extension (`@temporalio/worker/lib/x`)
      // resolves under tsx but not under Node's ESM loader: the build names the file (or the directory's index).
      name: 'package-file-extension',
      setup(b) {
        b.onResolve({ filter: /^(?:@[^/]+\/[^/]+|[^@./][^/]*)\/[^.]+$/ }, ({ path, resolveDir }) => {
          if (!EXTERNAL.some((p) => path.startsWith(`${p}/`))) return undefined;
          const file = createRequire(resolve(resolveDir, 'x.js')).resolve(path);
          if (!file.endsWith('.js') || path.endsWith('.js')) return undefined;
          return {
            path: file.endsWith('/index.js') && !path.endsWith('/index') ? `${path}/index.js` : `${path}.js`,
            external: true,
          };
        });
      },
    },
    {
      name: 'own-import-meta-url',
      setup(b) {
        b.onLoad({ filter: /\.ts$/ }, async ({ path }) => ({
          contents: (await readFile(path, 'utf8')).replaceAll(
            'import.meta.url',
            JSON.stringify(pathToFileURL(path).href),
          ),
          loader: 'ts',
        }));
      },
    },
  ],
});
// What bin/steward.js compares before trusting the build: each source's size and modification time.
const sources = {};
for (const input of Object.keys(result.metafile.inputs)) {
  const s = await stat(resolve(root, input));
  sources[input] = [s.size, Math.trunc(s.mtimeMs)];
}
await mkdir(out, { recursive: true });
await writeFile(resolve(out, 'sources.json'), `${JSON.stringify(sources)}\n`);
console.log(`[build-cli] dist/cli from ${Object.keys(sources).length} sources in ${Date.now() - started} ms`);
