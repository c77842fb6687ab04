// Compiles the CLI to JavaScript once (dist/cli/, one bundle with a chunk per lazily loaded command) so a command
// starts without compiling TypeScript: bin/steward.js runs it while every source it was built from is unchanged, and
// falls back to tsx otherwise. Each module keeps its own import.meta.url (the path of its source), so the paths it
// resolves relative to itself (scripts, the workflow sources, the bin) stay right. Run by scripts/setup.sh.
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { randomUUID } from 'node:crypto';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const out = resolve(root, 'dist/cli');
const started = Date.now();
await rm(out, { recursive: true, force: true });
const result = await build({
  absWorkingDir: root,
  entryPoints: ['client/cli.ts'],
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  outdir: out,
  metafile: true,
  // A fresh id per build: what client/spec-cache.ts keys validated specs by (a new build may bring a new schema).
  define: { STEWARD_CLI_BUILD: JSON.stringify(randomUUID()) },
  logLevel: 'warning',
  plugins: [
    {
      // A package file imported by its path without an extension (`@temporalio/common/lib/time`) resolves under tsx
      // but not under Node's ESM loader: the build names the file.
      name: 'package-file-extension',
      setup(b) {
        b.onResolve({ filter: /^(?:@[^/]+\/[^/]+|[^@./][^/]*)\/[^.]+$/ }, ({ path, resolveDir }) => {
          const file = createRequire(resolve(resolveDir, 'x.js')).resolve(path);
          return file.endsWith('.js') && !path.endsWith('.js') ? { path: `${path}.js`, external: true } : undefined;
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
