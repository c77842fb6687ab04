/** Files and directories with controlled content, owner and mode. */
import { createHash } from 'node:crypto';
import type { Change } from '../../model/report';
import { UnexpectedHostOutput } from '../host/errors';
import type { HostSession, ProbeResult } from '../host/session';
import { run } from '../host/shell';
import type { Resource } from './resource';

/** Owner and mode as the host reports them: numeric ids and names both, so the spec may use either. */
export interface Ownership {
  readonly uid: number;
  readonly gid: number;
  readonly user: string;
  readonly group: string;
  /** Four octal digits, e.g. "0750". */
  readonly mode: string;
}

export type ObservedPath =
  (Ownership & { readonly type: string; readonly sha256?: string }) | { readonly type: 'absent' };

/** Desired owner: a uid/gid number or a name. */
export type Owner = number | string;

const STAT_FORMAT = '%u %g %U %G %a %F';

function statProbe(path: string, withHash: boolean): string {
  // The content on stdin: the output is the bare digest and `  -`, whatever the file's name (no pipe, no cut).
  // Never through a symlink: a link a container planted must not make root read (and hash) what it points at.
  const hash = withHash ? `; if [ ! -L ${run(path)} ]; then sha256sum < ${run(path)}; fi` : '';
  return `if [ -e ${run(path)} ] || [ -L ${run(path)} ]; then ${run('stat', '-c', STAT_FORMAT, path)}${hash}; else echo absent; fi`;
}

/** A path a batch can observe: its name prints verbatim in `stat %n` and `sha256sum` output. */
function batchable(path: string): boolean {
  return !/[\\\n|]/.test(path);
}

const HASH_SPLIT = '--steward-hashes--';

/**
 * Observes many paths with one `stat` and one `sha256sum` instead of a process or three per path (drift observes
 * some forty on every host, every run). `results` hands each path exactly what its own probe would print, so the
 * resources parse and diff it unchanged. Paths a batch cannot name unambiguously are left out: `batched` tells.
 */
export function pathBatch(entries: readonly { readonly path: string; readonly hash: boolean }[]): {
  readonly batched: boolean[];
  readonly probe: string;
  results(r: ProbeResult): ProbeResult[];
} {
  const batched = entries.map((e) => batchable(e.path));
  const exists = (p: string) => `{ [ -e ${run(p)} ] || [ -L ${run(p)} ]; }`;
  const lines = ['set --'];
  entries.forEach((e, i) => {
    if (batched[i])
      lines.push(`if ${exists(e.path)}; then set -- "$@" ${run(e.path)}; else echo ${run(`absent ${i}`)}; fi`);
  });
  lines.push(`[ $# -eq 0 ] || stat -c ${run(`${STAT_FORMAT}|%n`)} -- "$@"`, `echo ${run(HASH_SPLIT)}`, 'set --');
  entries.forEach((e, i) => {
    if (batched[i] && e.hash) {
      lines.push(`if [ -f ${run(e.path)} ] && [ ! -L ${run(e.path)} ]; then set -- "$@" ${run(e.path)}; fi`);
    }
  });
  lines.push('[ $# -eq 0 ] || sha256sum -- "$@"');
  return {
    batched,
    probe: lines.join('\n'),
    results: ({ out, code }) => {
      const split = out.indexOf(`${HASH_SPLIT}\n`);
      const statLines = (split < 0 ? out : out.slice(0, split)).split('\n');
      const hashLines = split < 0 ? [] : out.slice(split + HASH_SPLIT.length + 1).split('\n');
      const absent = new Set(statLines.filter((l) => l.startsWith('absent ')).map((l) => Number(l.slice(7))));
      return entries.map((e, i) => {
        if (!batched[i]) return { out: '', code: 1 };
        if (absent.has(i)) return { out: 'absent\n', code: 0 };
        const stat = statLines.find((l) => l.endsWith(`|${e.path}`))?.slice(0, -(e.path.length + 1));
        // A path that exists but did not stat prints what the host said, which its parser refuses.
        if (stat === undefined)
          return { out: `stat failed: ${statLines.filter((l) => l.startsWith('stat:')).join('; ')}\n`, code };
        const hash = e.hash ? hashLines.find((l) => l.slice(66) === e.path)?.slice(0, 64) : undefined;
        if (hash !== undefined) return { out: `${stat}\n${hash}\n`, code: 0 };
        // A regular file without a hash line could not be read: reported as content that differs.
        if (e.hash && / regular (empty )?file$/.test(stat)) return { out: `${stat}\nunreadable\n`, code: 0 };
        return { out: `${stat}\n`, code: 0 };
      });
    },
  };
}

function parseStat(host: string, path: string, { out }: ProbeResult): ObservedPath {
  const [statLine = '', hashLine] = out.trim().split('\n');
  if (statLine === 'absent') return { type: 'absent' };
  const m = /^(\d+) (\d+) (\S+) (\S+) ([0-7]{1,4}) (.+)$/.exec(statLine);
  if (!m) throw new UnexpectedHostOutput(host, `unexpected stat output for ${path}: ${JSON.stringify(statLine)}`);
  return {
    uid: Number(m[1]),
    gid: Number(m[2]),
    user: m[3]!,
    group: m[4]!,
    mode: m[5]!.padStart(4, '0'),
    type: m[6]!,
    ...(hashLine ? { sha256: hashLine.trim().split(/\s/)[0]! } : {}),
  };
}

function ownerMatches(observed: Ownership, user: Owner, group: Owner): boolean {
  const u = typeof user === 'number' ? observed.uid === user : observed.user === user;
  const g = typeof group === 'number' ? observed.gid === group : observed.group === group;
  return u && g;
}

function ownership(o: Ownership, user: Owner, group: Owner) {
  return {
    owner: `${typeof user === 'number' ? o.uid : o.user}:${typeof group === 'number' ? o.gid : o.group}`,
    mode: o.mode,
  };
}

/** Differences in owner and mode, described the same way for files and directories. */
function metaChange(resource: string, o: Ownership, user: Owner, group: Owner, mode: string): Change[] {
  if (ownerMatches(o, user, group) && o.mode === mode) return [];
  return [
    { resource, action: 'update', before: ownership(o, user, group), after: { owner: `${user}:${group}`, mode } },
  ];
}

export interface DirectorySpec {
  readonly path: string;
  readonly owner: Owner;
  readonly group: Owner;
  readonly mode: string;
}

/** A directory that must exist with the given owner and mode. Never deletes or empties anything. */
export function directoryResource(d: DirectorySpec, host: string): Resource<ObservedPath> {
  const id = `dir:${d.path}`;
  return {
    id,
    desired: { kind: 'directory', path: d.path, owner: d.owner, group: d.group, mode: d.mode },
    probe: statProbe(d.path, false),
    parse: (r) => parseStat(host, d.path, r),
    diff: (o) => {
      if (o.type === 'absent')
        return [{ resource: id, action: 'create', after: { owner: `${d.owner}:${d.group}`, mode: d.mode } }];
      if (o.type !== 'directory') {
        throw new UnexpectedHostOutput(
          host,
          `${d.path} exists but is a ${o.type}, not a directory; move it away first`,
        );
      }
      return metaChange(id, o, d.owner, d.group, d.mode);
    },
    apply: async (session: HostSession) => {
      await session.check(run('install', '-d', '-o', String(d.owner), '-g', String(d.group), '-m', d.mode, d.path), {
        label: `install -d ${d.path}`,
      });
    },
  };
}

export interface FileSpec {
  readonly path: string;
  readonly content: string;
  readonly owner: Owner;
  readonly group: Owner;
  readonly mode: string;
  /** Command run on the candidate file before it replaces the old one, e.g. ['visudo', '-cf']. */
  readonly validate?: string[];
}

/** Short content digest for reports: enough to tell versions apart, reveals nothing of the content. */
export function digest(content: string): string {
  return createHash('sha256').update(content).digest('hex');
}

/** A regular file with exact content, owner and mode. Reports content by hash only. */
export function fileResource(f: FileSpec, host: string): Resource<ObservedPath> {
  const id = `file:${f.path}`;
  const want = digest(f.content);
  return {
    id,
    desired: { kind: 'file', path: f.path, content: f.content, owner: f.owner, group: f.group, mode: f.mode },
    probe: statProbe(f.path, true),
    parse: (r) => parseStat(host, f.path, r),
    diff: (o) => {
      if (o.type === 'absent')
        return [{ resource: id, action: 'create', after: { sha256: want.slice(0, 12), mode: f.mode } }];
      if (o.type !== 'regular file' && o.type !== 'regular empty file') {
        throw new UnexpectedHostOutput(host, `${f.path} exists but is a ${o.type}, not a regular file`);
      }
      const meta = metaChange(id, o as Ownership, f.owner, f.group, f.mode)[0];
      if ('sha256' in o && o.sha256 !== want) {
        const before = { sha256: o.sha256?.slice(0, 12), ...(meta?.before as object) };
        const after = { sha256: want.slice(0, 12), ...(meta?.after as object) };
        return [{ resource: id, action: 'update', before, after }];
      }
      return meta ? [meta] : [];
    },
    // Owner and mode too are mended by writing the file whole: a chown/chmod by name would follow a symlink swapped
    // in after the observation, and writeFile never follows one (see HostSession.writeFile).
    apply: async (session: HostSession) => {
      await session.writeFile(f.path, f.content, `${f.owner}:${f.group}`, f.mode, f.validate);
    },
  };
}
