/**
 * One setting line in a configuration file another package owns (login.defs, /etc/default/*, aide.conf): replaced
 * where it stands, appended when absent, every other line left as the package or the operator wrote it.
 */
import { run } from '../host/shell';
import type { Resource } from './resource';

/** How the file writes a setting: `KEY value`, `KEY=value` or `KEY = value`. */
export type LineStyle = 'space' | 'equals' | 'spaced-equals';

const FORMS: Record<LineStyle, { line: (k: string, v: string) => string; pattern: (k: string) => string }> = {
  space: { line: (k, v) => `${k} ${v}`, pattern: (k) => `^[[:space:]]*${k}[[:space:]]` },
  equals: { line: (k, v) => `${k}=${v}`, pattern: (k) => `^[[:space:]]*${k}=` },
  'spaced-equals': { line: (k, v) => `${k} = ${v}`, pattern: (k) => `^[[:space:]]*${k}[[:space:]]*=` },
};

/**
 * `key` set to `value` in `path`. The last line setting the key is what the program reads; every such line is
 * rewritten. `key` is a constant of steward's (a plain identifier), never spec text.
 */
export function settingLineResource(path: string, key: string, value: string, style: LineStyle): Resource<string> {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) throw new Error(`not a setting name: ${JSON.stringify(key)}`);
  const id = `line:${path} ${key}`;
  const want = FORMS[style].line(key, value);
  const pattern = FORMS[style].pattern(key);
  return {
    id,
    probe: `grep -E ${run(pattern)} ${run(path)} 2>/dev/null || true`,
    parse: ({ out }) => out.trim().split('\n').at(-1)?.trim().replace(/\s+/g, ' ') ?? '',
    diff: (o) => (o === want ? [] : [{ resource: id, action: 'update', before: o || 'unset', after: want }]),
    apply: async (session) => {
      const sed = `s/${pattern}.*/${want.replace(/[/&\\]/g, '\\$&')}/`;
      await session.check(
        `if grep -qE ${run(pattern)} ${run(path)}; then sed -i -E ${run(sed)} ${run(path)}; else echo ${run(want)} >> ${run(path)}; fi`,
        { label: `set ${key} in ${path}` },
      );
    },
  };
}
