/**
 * The data paths of memory on the host: the state and memory volumes (exist, owner, mode, free space, nothing inside
 * owned by anyone else), the databases with their -wal, -shm and -journal files (owner, mode no wider than the
 * spec allows), and whether each lives on a persistent volume. Observed in one round trip; evaluated purely;
 * repaired by chown/chmod/mkdir only — nothing is ever deleted or moved.
 */
import type { Change, ControlResult } from '../../model/report';
import type { Spec } from '../../model/schema';
import { UnexpectedHostOutput } from '../host/errors';
import type { HostSession } from '../host/session';
import { run } from '../host/shell';
import { directoryResource } from '../resources/files';
import { converge } from '../resources/resource';
import { control } from './controls';
import { describeLocation, type DatabaseTarget, type DirectoryTarget, type MemoryTargets } from './targets';

/** The companions SQLite keeps next to a database. */
export const COMPANIONS = ['-wal', '-shm', '-journal'] as const;

export interface PathStat {
  readonly uid: number;
  readonly gid: number;
  /** Four octal digits. */
  readonly mode: string;
  readonly size: number;
  readonly type: string;
}

export interface ObservedPaths {
  /** Host path → stat, or absent. */
  readonly stats: Readonly<Record<string, PathStat | 'absent'>>;
  /** Every database file found: the configured ones and any other `*.db` in the memory volume. */
  readonly databases: readonly string[];
  /** Volume path → free MB. */
  readonly freeMb: Readonly<Record<string, number>>;
  /** Volume path → entries inside not owned by the volume's owner (`uid:gid mode path`), at most 51. */
  readonly foreign: Readonly<Record<string, readonly string[]>>;
}

const FOREIGN_LIMIT = 50;

function numericOwner(d: DirectoryTarget): { uid: number; gid: number } | undefined {
  return typeof d.owner === 'number' && typeof d.group === 'number' ? { uid: d.owner, gid: d.group } : undefined;
}

/** Host paths of the databases the targets name (those on a host path at all). */
export function configuredDatabases(targets: MemoryTargets): string[] {
  return targets.databases.flatMap((d) => (d.hostPath ? [d.hostPath] : []));
}

/**
 * A shell fragment printing `stat` of each path, or `absent <path>`. `stat` does not follow a symbolic link (nor does
 * `-L` test it), so a link the container planted reports as `symbolic link`, dangling or not, never as its target.
 */
function statScript(paths: readonly string[]): string {
  if (paths.length === 0) return 'true';
  return `for p in ${paths.map((p) => run(p)).join(' ')}; do if [ -e "$p" ] || [ -L "$p" ]; then stat -c '%u %g %a %s %F|%n' -- "$p"; else echo "absent|$p"; fi; done`;
}

/** Observes dirs, databases (configured and discovered), free space and foreign-owned entries. */
export async function observePaths(session: HostSession, spec: Spec, targets: MemoryTargets): Promise<ObservedPaths> {
  const memoryDir = targets.directories.find((d) => d.role === 'data-dir')!.volume.path;
  const configured = configuredDatabases(targets);
  const discover = `{ ${configured.length ? `printf '%s\\n' ${configured.map((p) => run(p)).join(' ')}; ` : ''}find ${run(memoryDir)} -maxdepth 1 -type f -name '*.db' 2>/dev/null; } | sort -u`;
  const probes: Record<string, string> = {
    databases: discover,
    dirs: statScript(targets.directories.map((d) => d.volume.path)),
  };
  targets.directories.forEach((d, i) => {
    probes[`free${i}`] = `df -Pk ${run(d.volume.path)} 2>/dev/null | awk 'NR==2 {print $4}'`;
    const ids = numericOwner(d);
    if (ids) {
      probes[`foreign${i}`] =
        `[ -d ${run(d.volume.path)} ] && find ${run(d.volume.path)} -xdev -mindepth 1 \\( ! -uid ${ids.uid} -o ! -gid ${ids.gid} \\) -printf '%U:%G %m %p\\n' 2>/dev/null | head -n ${FOREIGN_LIMIT + 1}`;
    }
  });
  const first = await session.probe(probes);
  const databases = (first.databases?.out ?? '').split('\n').filter((l) => l.startsWith('/'));
  const files = databases.flatMap((db) => [db, ...COMPANIONS.map((c) => `${db}${c}`)]);
  const second = files.length > 0 ? await session.probe({ files: statScript(files) }) : { files: { out: '', code: 0 } };

  const stats: Record<string, PathStat | 'absent'> = {};
  for (const line of `${first.dirs?.out ?? ''}\n${second.files?.out ?? ''}`.split('\n')) {
    if (!line.trim()) continue;
    const absent = /^absent\|(.*)$/.exec(line);
    if (absent) {
      stats[absent[1]!] = 'absent';
      continue;
    }
    const m = /^(\d+) (\d+) ([0-7]{1,4}) (\d+) ([^|]+)\|(.*)$/.exec(line);
    if (!m) throw new UnexpectedHostOutput(session.target.name, `unexpected stat output: ${JSON.stringify(line)}`);
    stats[m[6]!] = { uid: +m[1]!, gid: +m[2]!, mode: m[3]!.padStart(4, '0'), size: +m[4]!, type: m[5]! };
  }
  const freeMb: Record<string, number> = {};
  const foreign: Record<string, string[]> = {};
  targets.directories.forEach((d, i) => {
    const kb = Number(first[`free${i}`]?.out.trim());
    if (Number.isFinite(kb) && first[`free${i}`]?.out.trim()) freeMb[d.volume.path] = Math.floor(kb / 1024);
    const f = first[`foreign${i}`];
    if (f) foreign[d.volume.path] = f.out.split('\n').filter((l) => /^\d+:\d+ /.test(l));
  });
  return { stats, databases, freeMb, foreign };
}

// ---------------------------------------------------------------------------------------------------------------
// Evaluation (pure)

/** Whether `mode` grants nothing beyond `ceiling` (both octal strings). */
export function modeWithin(mode: string, ceiling: string): boolean {
  return (parseInt(mode, 8) & ~parseInt(ceiling, 8) & 0o7777) === 0;
}

/** `mode` with every bit beyond `ceiling` removed. */
export function narrowMode(mode: string, ceiling: string): string {
  return (parseInt(mode, 8) & parseInt(ceiling, 8)).toString(8).padStart(4, '0');
}

function ownerMatches(
  s: PathStat,
  owner: number | string,
  group: number | string,
  names?: Map<string, number>,
): boolean {
  const uid = typeof owner === 'number' ? owner : names?.get(`u:${owner}`);
  const gid = typeof group === 'number' ? group : names?.get(`g:${group}`);
  return (uid === undefined || s.uid === uid) && (gid === undefined || s.gid === gid);
}

function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** The controls of the observed paths, and the changes a repair makes (or would make). Pure. */
export function evaluatePaths(
  spec: Spec,
  targets: MemoryTargets,
  observed: ObservedPaths,
): { controls: ControlResult[]; changes: Change[] } {
  const check = spec.stack.memory.check;
  const controls: ControlResult[] = [];
  const changes: Change[] = [];
  const want = `${targets.uid}:${targets.gid}`;

  for (const issue of targets.configIssues)
    controls.push(control(issue.control, issue.expected, issue.observed, false));

  for (const d of targets.directories) {
    const s = observed.stats[d.volume.path];
    const expected = `directory ${d.owner}:${d.group} ${d.volume.mode}`;
    const id = `memory.path.${d.role}`;
    const resource = `dir:${d.volume.path}`;
    if (!s || s === 'absent') {
      controls.push(control(id, expected, 'absent', false, d.volume.path));
      changes.push({ resource, action: 'create', after: { owner: `${d.owner}:${d.group}`, mode: d.volume.mode } });
    } else {
      const ok = s.type === 'directory' && ownerMatches(s, d.owner, d.group) && s.mode === d.volume.mode;
      controls.push(control(id, expected, `${s.type} ${s.uid}:${s.gid} ${s.mode}`, ok, d.volume.path));
      if (!ok && s.type === 'directory') {
        changes.push({
          resource,
          action: 'update',
          before: { owner: `${s.uid}:${s.gid}`, mode: s.mode },
          after: { owner: `${d.owner}:${d.group}`, mode: d.volume.mode },
        });
      }
    }
    const free = observed.freeMb[d.volume.path];
    controls.push(
      control(
        `memory.free-space.${d.role}`,
        `≥ ${check.minFreeMegabytes} MB free`,
        free === undefined ? 'unknown (df failed)' : `${free} MB free`,
        free !== undefined && free >= check.minFreeMegabytes,
        d.volume.path,
      ),
    );
    const foreign = observed.foreign[d.volume.path];
    if (foreign) {
      const n = foreign.length > FOREIGN_LIMIT ? `more than ${FOREIGN_LIMIT}` : String(foreign.length);
      controls.push(
        control(
          `memory.path.${d.role}.contents`,
          `everything inside owned by ${d.owner}:${d.group}`,
          foreign.length === 0 ? 'all owned by it' : `${n} not, e.g. ${foreign.slice(0, 3).join(', ')}`,
          foreign.length === 0,
          d.volume.path,
        ),
      );
      if (foreign.length > 0) {
        changes.push({
          resource: `tree:${d.volume.path}`,
          action: 'update',
          before: { entries: n, sample: foreign.slice(0, 3) },
          after: { owner: `${d.owner}:${d.group}` },
        });
      }
    }
    // The directory must reach the consumer through a mount of exactly this volume.
    if (targets.consumer && targets.adapter === 'openclaw-plugin') {
      const mount = targets.consumer.mounts.find((m) => m.destination === d.containerPath);
      controls.push(
        control(
          `memory.volume.${d.role}`,
          `${d.volume.path} mounted at ${d.containerPath}`,
          mount ? `${mount.type} ${mount.source} → ${mount.destination}` : `nothing mounted at ${d.containerPath}`,
          mount !== undefined && mount.source === d.volume.path && mount.rw,
        ),
      );
    }
  }

  const memoryDir = targets.directories.find((d) => d.role === 'data-dir')!;
  for (const db of targets.databases) controls.push(volumeControl(db, memoryDir, targets));

  for (const path of observed.databases) {
    for (const file of [path, ...COMPANIONS.map((c) => `${path}${c}`)]) {
      const s = observed.stats[file];
      const id = `memory.path.${basename(file)}`;
      const expected = `owner ${want}, mode within ${check.fileMode}`;
      if (!s || s === 'absent') {
        if (file === path) {
          controls.push(
            control(id, expected, 'absent', true, `${file}: not created yet; the canary proof creates it`, 'na'),
          );
        }
        continue;
      }
      if (s.type !== 'regular file' && s.type !== 'regular empty file') {
        // A link (or anything but a file) where a database belongs is written by whoever can write the volume: the
        // container. Repair never touches it, since root changing owner or mode through it would change its target.
        controls.push(control(id, expected, `${s.type} where a file belongs (never repaired)`, false, file));
        continue;
      }
      const ownerOk = s.uid === targets.uid && s.gid === targets.gid;
      const modeOk = modeWithin(s.mode, check.fileMode);
      controls.push(control(id, expected, `owner ${s.uid}:${s.gid}, mode ${s.mode}`, ownerOk && modeOk, file));
      if (!ownerOk || !modeOk) {
        changes.push({
          resource: `file:${file}`,
          action: 'update',
          before: { owner: `${s.uid}:${s.gid}`, mode: s.mode },
          after: { owner: want, mode: modeOk ? s.mode : narrowMode(s.mode, check.fileMode) },
        });
      }
    }
  }
  return { controls, changes };
}

/** Whether a database lives on the memory volume as the consumer sees it (plugin) or on one of its mounts (REST). */
function volumeControl(db: DatabaseTarget, memoryDir: DirectoryTarget, targets: MemoryTargets): ControlResult {
  const id = `memory.volume.${db.role === 'db' ? basename(db.hostPath ?? db.containerPath ?? 'db') : db.role}`;
  if (db.location) {
    const l = db.location;
    const onVolume = l.kind === 'mount' && l.mount.source === memoryDir.volume.path;
    const persistent = l.kind === 'mount';
    return control(
      id,
      `on the ${memoryDir.volume.name} volume (${memoryDir.volume.path} → ${memoryDir.containerPath})`,
      `${db.containerPath} on ${describeLocation(l)}`,
      onVolume,
      persistent && !onVolume ? 'persistent, but not the volume the spec names' : undefined,
    );
  }
  if (!db.hostPath) return control(id, 'on a persistent volume', 'unknown path', false);
  const consumer = targets.consumer;
  if (!consumer) {
    return control(id, 'on a mount of the server container', db.hostPath, true, 'no container named to compare', 'na');
  }
  const mount = consumer.mounts.find(
    (m) => m.type !== 'tmpfs' && (db.hostPath === m.source || db.hostPath!.startsWith(`${m.source}/`)),
  );
  return control(
    id,
    `on a mount of ${consumer.name}`,
    mount ? `${db.hostPath} via ${mount.type} ${mount.source} → ${mount.destination}` : `${db.hostPath} not mounted`,
    mount !== undefined,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Repair

/** Where a volume is mounted in the container that repairs it. */
const REPAIR_MOUNT = '/v';

/** What one repair container does: the host directory it mounts at {@link REPAIR_MOUNT}, and its script there. */
export interface VolumeRepair {
  readonly source: string;
  readonly script: string;
}

/**
 * The owner and mode repairs inside volumes, one container's script per mounted host directory. Everything under a
 * volume is the container's to write, so any entry may be a symbolic link by the time root acts on it — a planned
 * file swapped for a link after the plan, or a directory on the way swapped for one. Run in a throwaway container
 * that mounts only that directory, a link can only lead back into the volume or into the container's own read-only
 * root, never to a host file. Inside, `chown -h` and the regular-file test keep even those changes off link targets.
 * @throws UnexpectedHostOutput when a planned file lies in no known volume, or a host path cannot be mounted as given.
 */
export function volumeRepairs(targets: MemoryTargets, changes: readonly Change[], host: string): VolumeRepair[] {
  const sources = [
    ...targets.directories.map((d) => d.volume.path),
    ...(targets.consumer?.mounts ?? []).filter((m) => m.type !== 'tmpfs').map((m) => m.source),
  ];
  const scripts = new Map<string, string[]>();
  const add = (source: string, line: string) => {
    if (!/^\/[^,:\n]*$/.test(source) || source.split('/').includes('..')) {
      throw new UnexpectedHostOutput(host, `cannot mount ${JSON.stringify(source)} to repair it`);
    }
    scripts.set(source, [...(scripts.get(source) ?? ['set -eu']), line]);
  };
  for (const d of targets.directories) {
    const ids = numericOwner(d);
    if (!ids || !changes.some((c) => c.resource === `tree:${d.volume.path}`)) continue;
    add(
      d.volume.path,
      `find ${REPAIR_MOUNT} -xdev -mindepth 1 \\( ! -uid ${ids.uid} -o ! -gid ${ids.gid} \\) -exec chown -h ${ids.uid}:${ids.gid} {} +`,
    );
  }
  for (const c of changes) {
    if (!c.resource.startsWith('file:')) continue;
    const path = c.resource.slice('file:'.length);
    const after = c.after as { owner: string; mode: string };
    if (!/^\d+:\d+$/.test(after.owner) || !/^0?[0-7]{3}$/.test(after.mode)) {
      throw new UnexpectedHostOutput(host, `repair of ${path}: ${JSON.stringify(after)} is not uid:gid and a mode`);
    }
    const source = sources
      .filter((m) => path.startsWith(`${m.replace(/\/+$/, '')}/`))
      .sort((a, b) => b.length - a.length)[0];
    if (!source) throw new UnexpectedHostOutput(host, `repair of ${path}: not inside a volume of the consumer`);
    const inside = `${REPAIR_MOUNT}${path.slice(source.replace(/\/+$/, '').length)}`;
    add(
      source,
      `if [ -f ${run(inside)} ] && [ ! -L ${run(inside)} ]; then ${run('chown', '-h', after.owner, inside)}; ${run('chmod', after.mode, inside)}; fi`,
    );
  }
  return [...scripts].map(([source, lines]) => ({ source, script: lines.join('\n') }));
}

/** The `docker run` of one volume repair: root with only the capabilities owner and mode changes need, no network. */
export function volumeRepairArgv(image: string, repair: VolumeRepair): string[] {
  return [
    'docker',
    'run',
    '--rm',
    '--network',
    'none',
    '--read-only',
    '--user',
    '0:0',
    '--cap-drop',
    'ALL',
    '--cap-add',
    'CHOWN',
    '--cap-add',
    'FOWNER',
    '--cap-add',
    'DAC_READ_SEARCH',
    '--security-opt',
    'no-new-privileges:true',
    '--mount',
    `type=bind,source=${repair.source},target=${REPAIR_MOUNT}`,
    '--entrypoint',
    'sh',
    image,
    '-c',
    repair.script,
  ];
}

/**
 * Fixes what `evaluatePaths` reported: creates missing volume directories and sets their owner and mode (host paths
 * from the spec, as root on the host), then chowns entries inside a container-owned volume to its owner and chowns
 * database files and narrows their modes, confined to a throwaway container of the consumer's image
 * ({@link volumeRepairs}). Never deletes, moves or rewrites anything.
 */
export async function repairPaths(
  session: HostSession,
  targets: MemoryTargets,
  changes: readonly Change[],
): Promise<void> {
  const host = session.target.name;
  const dirs = targets.directories.filter((d) => changes.some((c) => c.resource === `dir:${d.volume.path}`));
  if (dirs.length > 0) {
    await converge(
      session,
      dirs.map((d) =>
        directoryResource({ path: d.volume.path, owner: d.owner, group: d.group, mode: d.volume.mode }, host),
      ),
      'apply',
    );
  }
  const repairs = volumeRepairs(targets, changes, host);
  if (repairs.length === 0) return;
  const image = targets.consumer?.image;
  if (!image) {
    throw new UnexpectedHostOutput(
      host,
      "cannot repair owners and modes inside the volumes: the consumer's image is unknown",
    );
  }
  for (const r of repairs) {
    await session.check(run(...volumeRepairArgv(image, r)), { label: `repair memory paths in ${r.source}` });
  }
}
