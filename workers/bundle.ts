/**
 * steward's workflow code as one file, bundled ahead of time: `steward bundle --out FILE` writes it, and
 * `steward worker --workflow-bundle FILE` (or STEWARD_WORKFLOW_BUNDLE) starts from it in well under a second instead
 * of running webpack (seconds of CPU and ~150 MB in a child process) at every start.
 *
 * A bundle is checked before a worker runs it: the file must be readable and be a bundle of steward's workflows
 * with its interceptors. Webpack embeds every source file the bundle was built from (its inline source map), so the
 * check also names the files that differ from this steward's sources now: such a bundle runs the workflow code it
 * was built from, which is the operator's call (a pinned release) or a forgotten rebuild.
 */
import { readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { FAILURE_CONVERTER_PATH } from '../codec/aes-gcm';
import { WORKFLOW_INTERCEPTOR_MODULES, WORKFLOWS_PATH } from './paths';

export { WORKFLOW_BUNDLE_ENV } from './paths';

/** A workflow bundle that cannot be used; the message says why, without the file's name (the caller names it). */
export class WorkflowBundleError extends Error {
  override readonly name = 'WorkflowBundleError';
}

/** The project root: what the bundle's source paths are relative to. */
const ROOT = dirname(dirname(WORKFLOWS_PATH));
const ENTRY = relative(ROOT, WORKFLOWS_PATH).split(sep).join('/');
const INTERCEPTORS = WORKFLOW_INTERCEPTOR_MODULES.map((m) => relative(ROOT, m).split(sep).join('/'));
const SOURCE_MAP = '//# sourceMappingURL=data:application/json;charset=utf-8;base64,';

/** Bundles steward's workflows and interceptors with webpack, in this process. */
export async function buildWorkflowBundle(): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: WORKFLOWS_PATH,
    workflowInterceptorModules: WORKFLOW_INTERCEPTOR_MODULES,
    failureConverterPath: FAILURE_CONVERTER_PATH,
    logger: { trace() {}, debug() {}, info() {}, log() {}, warn: console.warn, error: console.error },
  });
  return code;
}

/**
 * Writes `code` to `file` whole or not at all (a temporary file beside it, renamed), so a worker never reads half a
 * bundle. @throws WorkflowBundleError when the file cannot be written.
 */
export async function writeWorkflowBundle(file: string, code: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, code, { mode: 0o644 });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new WorkflowBundleError(`cannot write it: ${reason(err)}`);
  }
}

export interface LoadedBundle {
  /** The bundle's code, for `Worker.create({ workflowBundle: { code } })`. */
  readonly code: string;
  /** Source files (relative to steward's root) whose content differs from, or is missing next to, what was bundled. */
  readonly differs: readonly string[];
}

/**
 * Reads and checks a prebuilt workflow bundle.
 * @throws WorkflowBundleError when the file is missing, unreadable, or not a bundle of steward's workflows.
 */
export async function loadWorkflowBundle(file: string): Promise<LoadedBundle> {
  let code: string;
  try {
    if (!(await stat(file)).isFile()) throw new WorkflowBundleError('not a regular file');
    code = await readFile(file, 'utf8');
  } catch (err) {
    if (err instanceof WorkflowBundleError) throw err;
    throw new WorkflowBundleError(`cannot read it: ${reason(err)}`);
  }
  const sources = embeddedSources(code);
  const root = sources && bundleRoot(sources);
  if (!sources || root === undefined || !INTERCEPTORS.every((m) => sources.has(`${root}${m}`))) {
    throw new WorkflowBundleError(
      "not a bundle of steward's workflows with their interceptors (make one with `steward bundle --out FILE`)",
    );
  }
  return { code, differs: await differingSources(sources, root) };
}

/** Source path → content, from the inline source map webpack appends; undefined when there is none. */
function embeddedSources(code: string): Map<string, string | null> | undefined {
  if (!code.includes('__TEMPORAL__')) return undefined;
  const at = code.lastIndexOf(SOURCE_MAP);
  if (at < 0) return undefined;
  try {
    const map = JSON.parse(Buffer.from(code.slice(at + SOURCE_MAP.length).trim(), 'base64').toString('utf8')) as {
      sources?: unknown;
      sourcesContent?: unknown;
    };
    if (!Array.isArray(map.sources) || !Array.isArray(map.sourcesContent)) return undefined;
    const contents = map.sourcesContent as unknown[];
    return new Map(
      (map.sources as unknown[]).flatMap((s, i) =>
        typeof s === 'string' ? [[s, typeof contents[i] === 'string' ? (contents[i] as string) : null] as const] : [],
      ),
    );
  } catch {
    return undefined;
  }
}

/** The absolute directory (with a trailing `/`) the bundle was built in: where its `workflows/index.ts` was. */
function bundleRoot(sources: Map<string, string | null>): string | undefined {
  for (const s of sources.keys()) if (s.endsWith(`/${ENTRY}`)) return s.slice(0, -ENTRY.length);
  return undefined;
}

/**
 * Files of the bundle (steward's and its dependencies', found under the root it was built in) whose content here
 * differs. Webpack's own runtime and the bundler's generated entry point are not files.
 */
async function differingSources(sources: Map<string, string | null>, root: string): Promise<string[]> {
  const checks = [...sources].flatMap(([source, content]) => {
    if (!source.startsWith(root) || content === null || source.includes('-autogenerated-entrypoint.')) return [];
    const rel = source.slice(root.length);
    return [
      readFile(join(ROOT, rel), 'utf8').then(
        (now) => (now === content ? undefined : rel),
        () => rel,
      ),
    ];
  });
  return (await Promise.all(checks)).filter((r): r is string => r !== undefined).sort();
}

function reason(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return 'no such file or directory';
  if (e?.code === 'EACCES') return 'permission denied';
  if (e?.code === 'EISDIR') return 'is a directory';
  return e instanceof Error ? e.message : String(err);
}
