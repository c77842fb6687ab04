// Build-stage step of images/openclaw/Dockerfile: turns the mem0 plugin's npm project (~330 packages, ~18,000
// files, most of them peer dependencies of mem0ai that its OSS entry imports: every vector store, LLM and cloud SDK)
// into five packages of a few files each. The gateway copies a non-bundled plugin's whole dependency closure
// (dependencies, optional and peer dependencies, recursively) into a private directory on every start, twice, and
// hashes every file; with the bundled layout a start costs about half the CPU time and the gateway listens sooner.
//
//   @mem0/openclaw-mem0  dist/index.js: the plugin's entry bundled (typebox inside); openclaw, mem0ai and
//                        better-sqlite3 stay imports. Manifest, skills, README and LICENSE as published.
//   mem0ai               dist/index.mjs and dist/oss/index.mjs: the package's two ESM entries bundled with every
//                        SDK they import; better-sqlite3 stays an import. ESM only (nothing here requires it).
//   better-sqlite3       as compiled in this stage; prebuild-install (its install-time downloader) dropped from
//                        its dependencies, since the install scripts never run here.
//   bindings, file-uri-to-path   better-sqlite3's loader, as installed.
//
// Bundles are minified (parse and hash time on every start) and keep their license comments in *.LEGAL.txt beside
// them. Usage: node bundle-plugin.mjs <plugin project dir> <esbuild module path>
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const [project, esbuildPath] = process.argv.slice(2);
if (!project || !esbuildPath) throw new Error('usage: bundle-plugin.mjs <plugin project dir> <esbuild module path>');
const esbuild = await import(pathToFileURL(esbuildPath).href);
const modules = join(project, 'node_modules');
const out = mkdtempSync(join(tmpdir(), 'steward-plugin-'));
const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));
const writeJson = (file, value) => writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);

function countFiles(dir) {
  let n = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    n += e.isDirectory() ? countFiles(join(dir, e.name)) : 1;
  }
  return n;
}

/** One ESM bundle of `entry` at `outfile`; `external` packages stay imports. CommonJS inside gets a `require`. */
async function bundle(entry, outfile, external) {
  const result = await esbuild.build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    minify: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    external,
    legalComments: 'external',
    banner: {
      js: "import { createRequire as __stewardRequire } from 'node:module'; const require = __stewardRequire(import.meta.url);",
    },
    logLevel: 'error',
  });
  if (result.errors.length > 0) throw new Error(`esbuild failed on ${entry}`);
}

const before = countFiles(modules);
const pluginSrc = join(modules, '@mem0', 'openclaw-mem0');
const mem0Src = join(modules, 'mem0ai');
const sqlite = readJson(join(modules, 'better-sqlite3', 'package.json'));
const mem0 = readJson(join(mem0Src, 'package.json'));

// mem0ai: its two import entries, bundled; better-sqlite3 (native) stays outside.
const mem0Out = join(out, 'mem0ai');
const entryOf = (key) => {
  const target = mem0.exports?.[key]?.import;
  if (typeof target !== 'string') throw new Error(`mem0ai ${mem0.version} has no import entry for ${key}`);
  return target;
};
for (const key of ['.', './oss'])
  await bundle(join(mem0Src, entryOf(key)), join(mem0Out, entryOf(key)), ['better-sqlite3']);
if (existsSync(join(mem0Src, 'LICENSE'))) cpSync(join(mem0Src, 'LICENSE'), join(mem0Out, 'LICENSE'));
writeJson(join(mem0Out, 'package.json'), {
  name: mem0.name,
  version: mem0.version,
  description: `${mem0.description ?? 'mem0'} (bundled by steward's image build)`,
  license: mem0.license,
  exports: { '.': { import: entryOf('.') }, './oss': { import: entryOf('./oss') } },
  module: entryOf('.'),
  dependencies: { 'better-sqlite3': sqlite.version },
});

// The plugin: its entry bundled; OpenClaw (the gateway provides it), mem0ai and better-sqlite3 stay imports.
const plugin = readJson(join(pluginSrc, 'package.json'));
const pluginOut = join(out, 'plugin');
const pluginEntry = plugin.openclaw?.extensions?.[0];
if (plugin.main !== './dist/index.js' || pluginEntry !== './dist/index.js') {
  throw new Error(`@mem0/openclaw-mem0 ${plugin.version}: expected its entry at ./dist/index.js`);
}
await bundle(join(pluginSrc, 'dist', 'index.js'), join(pluginOut, 'dist', 'index.js'), [
  'openclaw',
  'openclaw/*',
  'mem0ai',
  'mem0ai/*',
  'better-sqlite3',
]);
for (const name of ['openclaw.plugin.json', 'skills', 'README.md', 'LICENSE']) {
  if (existsSync(join(pluginSrc, name))) cpSync(join(pluginSrc, name), join(pluginOut, name), { recursive: true });
}
const published = { ...plugin };
delete published.devDependencies;
delete published.pnpm;
writeJson(join(pluginOut, 'package.json'), {
  ...published,
  dependencies: { mem0ai: mem0.version, 'better-sqlite3': sqlite.version },
});

// better-sqlite3 and its loader as installed; its install-time downloader is not a runtime dependency.
const sqliteDeps = { ...sqlite.dependencies };
delete sqliteDeps['prebuild-install'];
writeJson(join(modules, 'better-sqlite3', 'package.json'), { ...sqlite, dependencies: sqliteDeps });
const keep = ['better-sqlite3', ...Object.keys(sqliteDeps)];
for (const name of [...keep]) {
  for (const dep of Object.keys(readJson(join(modules, name, 'package.json')).dependencies ?? {})) {
    if (!keep.includes(dep)) keep.push(dep);
  }
}
const next = join(out, 'node_modules');
for (const name of keep) cpSync(join(modules, name), join(next, name), { recursive: true });
mkdirSync(join(next, '@mem0'), { recursive: true });
renameSync(mem0Out, join(next, 'mem0ai'));
renameSync(pluginOut, join(next, '@mem0', 'openclaw-mem0'));

rmSync(modules, { recursive: true });
cpSync(next, modules, { recursive: true });
rmSync(out, { recursive: true });
for (const lock of ['package-lock.json']) rmSync(join(project, lock), { force: true });
const pkg = readJson(join(project, 'package.json'));
writeJson(join(project, 'package.json'), {
  private: true,
  dependencies: { '@mem0/openclaw-mem0': plugin.version, mem0ai: mem0.version, 'better-sqlite3': sqlite.version },
  steward: { bundledFrom: pkg.dependencies },
});
const after = countFiles(modules);
const size = (dir) => readdirSync(dir).reduce((n, f) => n + statSync(join(dir, f)).size, 0);
console.log(
  `bundled the mem0 plugin: ${before} files in node_modules → ${after} (${keep.length + 2} packages); ` +
    `plugin ${size(join(modules, '@mem0', 'openclaw-mem0', 'dist'))} bytes, mem0ai/oss ${size(join(modules, 'mem0ai', 'dist', 'oss'))} bytes`,
);
