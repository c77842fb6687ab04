/** Reading `steward.yaml` on the operator's machine: steward never writes it. */
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { specSchema, type Spec } from '../model/schema';
import { validate, ValidationError } from '../model/validate';
import { assertPolicy } from '../model/governance';

/** A spec is a page of YAML: anything larger is a mistake or an attack on the parser. */
export const MAX_SPEC_BYTES = 256 * 1024;
/** Aliases a spec may expand: a few anchors are handy, hundreds expand into a resource exhaustion ("billion laughs"). */
export const MAX_SPEC_ALIASES = 50;

export interface LoadedSpec {
  readonly spec: Spec;
  readonly path: string;
}

/**
 * Reads, parses and validates a spec; identity files become absolute paths relative to the spec's folder.
 * @throws ValidationError for YAML syntax errors (with line numbers), a file over {@link MAX_SPEC_BYTES} or aliases
 * that expand past {@link MAX_SPEC_ALIASES}, and every schema issue at once.
 */
export async function loadSpec(path: string): Promise<LoadedSpec> {
  const absolute = resolve(path);
  let text: string;
  try {
    text = await readFile(absolute, 'utf8');
  } catch (err) {
    const reason =
      (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'does not exist (run `steward init`)' : String(err);
    throw new ValidationError(path, [{ path: '(file)', message: reason }]);
  }
  const size = Buffer.byteLength(text);
  if (size > MAX_SPEC_BYTES) {
    throw new ValidationError(path, [
      { path: '(file)', message: `is ${size} bytes; a spec is at most ${MAX_SPEC_BYTES}` },
    ]);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    throw new ValidationError(
      path,
      doc.errors.map((e) => {
        const pos = lines.linePos(e.pos[0]);
        return { path: `line ${pos.line}:${pos.col}`, message: e.message.split('\n')[0] ?? e.code };
      }),
    );
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: MAX_SPEC_ALIASES });
  } catch (err) {
    throw new ValidationError(path, [
      { path: '(file)', message: `YAML aliases expand too far (${(err as Error).message.split('\n')[0]})` },
    ]);
  }
  const spec = validate(specSchema, data, path);
  const dir = dirname(absolute);
  const hosts = spec.hosts.map((h) =>
    h.identityFile && !isAbsolute(h.identityFile) ? { ...h, identityFile: resolve(dir, h.identityFile) } : h,
  );
  const secrets = Object.fromEntries(
    Object.entries(spec.secrets).map(([name, s]) =>
      s.external && 'file' in s.external && !isAbsolute(s.external.file)
        ? [name, { ...s, external: { file: resolve(dir, s.external.file) } }]
        : [name, s],
    ),
  );
  assertPolicy(spec);
  return { spec: { ...spec, hosts, secrets }, path: absolute };
}
