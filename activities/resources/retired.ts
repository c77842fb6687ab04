/** Files and units steward once managed and no longer does: stopped, disabled and removed, then `after` runs. */
import { run } from '../host/shell';
import type { Resource } from './resource';

export function retiredResource(
  id: string,
  paths: readonly string[],
  opts: { readonly units?: readonly string[]; readonly after?: string } = {},
): Resource<string[]> {
  const units = opts.units ?? [];
  return {
    id,
    probe: `${paths.map((p) => `[ -e ${run(p)} ] && echo ${run(p)}`).join('\n')}\ntrue`,
    parse: ({ out }) => out.split('\n').filter(Boolean),
    diff: (left) => left.map((p) => ({ resource: `file:${p}`, action: 'delete', before: 'present (retired)' })),
    apply: async (session) => {
      await session.check(
        [
          ...(units.length
            ? [`systemctl disable --now ${units.map((u) => run(u)).join(' ')} >/dev/null 2>&1 || true`]
            : []),
          `rm -rf -- ${paths.map((p) => run(p)).join(' ')}`,
          ...(units.length ? ['systemctl daemon-reload'] : []),
          ...(opts.after ? [opts.after] : []),
        ].join('\n'),
        { label: `retire ${id}` },
      );
    },
  };
}
