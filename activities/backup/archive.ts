/**
 * The host's side of a backup and a restore. The volumes are written by the agent's container, so everything that
 * reads or writes inside them runs in a throwaway container of the gateway's image, as the gateway's uid, with only
 * those directories mounted, no network and no capabilities: a symbolic link or a crafted name in a volume can reach
 * nothing the agent could not reach already. Only steward's own files (the rendered config and the release record,
 * root's, never mounted writable into a container) are read by root on the host.
 *
 * A backup streams one tar to stdout: `volumes/<name>/…` as they are, except each SQLite database, which is copied
 * with SQLite's online backup (consistent while the gateway writes) into `sqlite/<name>/…` and left out of
 * `volumes/` with its -wal, -shm and -journal; `manifest.json`; then, appended, root's `compose.yaml`,
 * `proxy/Caddyfile` and `.steward/` (the release record). Secrets are not in it (see README, Backups).
 *
 * A restore stages a snapshot beside the live volumes, moves each database copy back into its volume and checks its
 * integrity, all before anything live is touched; only then are the volumes swapped, the old ones kept.
 */
import { z } from 'zod';
import { stackLayout } from '../../model/render/stack';
import type { Spec, Volume } from '../../model/schema';
import { mountOf } from '../../model/units';
import { validate } from '../../model/validate';
import { UnexpectedHostOutput } from '../host/errors';
import { run, sh } from '../host/shell';

/** Labels steward's throwaway backup containers, so one left behind by a cut session is removed by the next. */
export const BACKUP_LABEL = 'steward.backup=worker';
/** Marks the manifest line a backup prints on stderr. */
export const MANIFEST_MARK = 'STEWARD_BACKUP_MANIFEST ';
/** Marks the report line a restore's staging prints on stdout. */
export const STAGED_MARK = 'STEWARD_RESTORE_STAGED ';

/** The volumes a backup holds: those the container owns (the others are the host's, and not its data). */
export function backedUpVolumes(spec: Spec): Volume[] {
  return spec.stack.volumes.filter((v) => v.owner === 'container');
}

/** Where a backup stages its database copies, and where restores stage snapshots: beside the volumes. */
export function stagingDirs(spec: Spec): { backup: string; restore: string } {
  const dir = stackLayout(spec).installDir;
  return { backup: `${dir}/.steward-backup`, restore: `${dir}/.steward-restore` };
}

/** A stage id: letters, digits and dashes (a workflow's run id, or a drill's). */
export const STAGE_ID = /^[A-Za-z0-9-]{1,80}$/;

const databaseSchema = z.object({
  volume: z.string(),
  path: z.string(),
  bytes: z.number(),
  copyBytes: z.number().optional(),
  ms: z.number().optional(),
});

export const manifestSchema = z.object({
  format: z.literal('steward-backup/v1'),
  host: z.string(),
  createdAt: z.string(),
  volumes: z.array(z.object({ name: z.string(), path: z.string(), mount: z.string() })),
  databases: z.array(databaseSchema),
  /** Files with a SQLite header whose online backup failed: archived as they were. */
  unreadable: z.array(z.object({ volume: z.string(), path: z.string(), error: z.string() })).optional(),
  files: z.number(),
  bytes: z.number(),
});

export type Manifest = z.infer<typeof manifestSchema>;

/**
 * Runs in the throwaway container (Node 24, `node:sqlite`), cwd /backup: finds every SQLite database in the volumes
 * (by its header, never following a link), copies each with the online backup API into stage/sqlite, checks the copy,
 * and writes stage/manifest.json and stage/exclude (the live databases and companions, which tar leaves out).
 */
const ARCHIVE_JS = String.raw`
import { closeSync, constants, fstatSync, lstatSync, mkdirSync, openSync, readdirSync, readSync, rmSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { backup, DatabaseSync } from 'node:sqlite';
const input = JSON.parse(process.argv.at(-1));
const MAGIC = Buffer.from('SQLite format 3\0', 'latin1');
const databases = [], excludes = [];
let files = 0, bytes = 0;
// Opened without following a link and without blocking (a FIFO swapped in after the lstat), then checked again.
const isSqlite = (p, size) => {
  if (size < 512) return false;
  let fd;
  try { fd = openSync(p, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK); } catch { return false; }
  try {
    if (!fstatSync(fd).isFile()) return false;
    const b = Buffer.alloc(16); readSync(fd, b, 0, 16, 0); return b.equals(MAGIC);
  } finally { closeSync(fd); }
};
const walk = (volume, rel) => {
  const dir = 'volumes/' + volume + (rel ? '/' + rel : '');
  for (const name of readdirSync(dir).sort()) {
    const r = rel ? rel + '/' + name : name;
    const p = 'volumes/' + volume + '/' + r;
    let st;
    try { st = lstatSync(p); } catch { continue; }
    if (st.isDirectory()) walk(volume, r);
    else if (st.isFile()) {
      files++; bytes += st.size;
      // A name tar would read as a pattern or a second line is archived as it is, not as a database copy.
      if (!/[\n*?[\\]/.test(r) && !/-(wal|shm|journal)$/.test(name) && isSqlite(p, st.size)) databases.push({ volume, path: r, bytes: st.size });
    }
  }
};
for (const v of input.volumes) walk(v.name, '');
mkdirSync('stage/sqlite', { recursive: true });
const copied = [], unreadable = [];
for (const db of databases) {
  const src = 'volumes/' + db.volume + '/' + db.path;
  const dest = 'stage/sqlite/' + db.volume + '/' + db.path;
  mkdirSync(dirname(dest), { recursive: true });
  const t = performance.now();
  try {
    const source = new DatabaseSync(src, { readOnly: true, timeout: 15000 });
    // rate -1: every page in one step, so writes by the gateway cannot restart the copy over and over.
    try { await backup(source, dest, { rate: -1 }); } finally { source.close(); }
    const copy = new DatabaseSync(dest, { readOnly: true });
    const check = copy.prepare('PRAGMA integrity_check').all().map((r) => Object.values(r)[0]).join(' | ');
    copy.close();
    if (check !== 'ok') throw new Error('its copy fails the integrity check: ' + check.slice(0, 200));
    db.copyBytes = lstatSync(dest).size; db.ms = Math.round(performance.now() - t);
    for (const s of ['', '-wal', '-shm', '-journal']) excludes.push('volumes/' + db.volume + '/' + db.path + s);
    copied.push(db);
  } catch (e) {
    // Damaged, locked past the timeout, or only a SQLite header: archived as it is, and reported.
    rmSync(dest, { force: true });
    unreadable.push({ volume: db.volume, path: db.path, error: String(e?.message ?? e).slice(0, 200) });
  } finally {
    for (const s of ['-wal', '-shm', '-journal']) rmSync(dest + s, { force: true });
  }
}
writeFileSync('stage/exclude', excludes.map((e) => e + '\n').join(''));
const manifest = { format: 'steward-backup/v1', host: input.host, createdAt: input.createdAt, volumes: input.volumes, databases: copied, unreadable, files, bytes };
writeFileSync('stage/manifest.json', JSON.stringify(manifest, null, 1) + '\n');
process.stderr.write('\n${MANIFEST_MARK}' + JSON.stringify(manifest) + '\n');
`;

/** In the throwaway container: the database copies and manifest first, then one tar of it all on stdout. */
const ARCHIVE_SH = [
  'set -eu',
  'cd /backup',
  'node --no-warnings --input-type=module --eval "$1" "$2" >&2',
  'rc=0',
  'tar -c -f - --sort=name --numeric-owner --anchored --no-wildcards --exclude-from=stage/exclude volumes -C stage manifest.json sqlite || rc=$?',
  // 1: a file changed while it was read (a session log the gateway appends to); the databases are copies.
  '[ "$rc" -le 1 ]',
].join('\n');

/** The flags every throwaway container gets: the gateway's uid, nothing else. */
function confined(spec: Spec, label: string): string[] {
  return [
    '--rm',
    '--label',
    BACKUP_LABEL,
    '--label',
    `steward.backup.step=${label}`,
    '--network',
    'none',
    '--read-only',
    '--tmpfs',
    `/tmp:size=64m,uid=${spec.stack.uid},gid=${spec.stack.gid},mode=0700`,
    '--user',
    `${spec.stack.uid}:${spec.stack.gid}`,
    '--cap-drop',
    'ALL',
    '--security-opt',
    'no-new-privileges:true',
  ];
}

/** Removes throwaway backup containers a cut session left behind (they would hold the stores open). */
const SWEEP = `ids=$(docker ps -aq ${sh(['--filter', `label=${BACKUP_LABEL}`])}); [ -z "$ids" ] || docker rm -f $ids >/dev/null`;

/** Each path must be a real directory (not a link to one). */
function directoriesScript(paths: readonly string[]): string {
  return `for v in ${paths.map((p) => run(p)).join(' ')}; do if [ -L "$v" ] || [ ! -d "$v" ]; then echo "not a directory: $v" >&2; exit 3; fi; done`;
}

/**
 * The backup script, run as root; its stdout is the archive. `image` is the gateway's image id (the code that reads
 * the volumes is the gateway's own Node). Exit 3: a volume is missing.
 */
export function archiveScript(spec: Spec, host: string, image: string, createdAt: string): string {
  const volumes = backedUpVolumes(spec);
  const layout = stackLayout(spec);
  const stage = stagingDirs(spec).backup;
  const input = {
    host,
    createdAt,
    volumes: volumes.map((v) => ({ name: v.name, path: v.path, mount: mountOf(v) })),
  };
  const docker = [
    'docker',
    'run',
    ...confined(spec, 'archive'),
    ...volumes.flatMap((v) => ['--mount', `type=bind,source=${v.path},target=/backup/volumes/${v.name}`]),
    '--mount',
    `type=bind,source=${stage},target=/backup/stage`,
    '--entrypoint',
    'sh',
    image,
    '-c',
    ARCHIVE_SH,
    'sh',
    ARCHIVE_JS,
    JSON.stringify(input),
  ];
  const own = ['compose.yaml', 'proxy/Caddyfile', '.steward'];
  return [
    'set -eu',
    'umask 077',
    SWEEP,
    directoriesScript(volumes.map((v) => v.path)),
    `rm -rf -- ${run(stage)}`,
    run('install', '-d', '-m', '0700', '-o', spec.stack.uid, '-g', spec.stack.gid, '--', stage),
    `trap ${run(`rm -rf -- ${run(stage)}`)} EXIT`,
    sh(docker),
    // steward's own files, root's: the config as rendered and the release record.
    `cd ${run(layout.installDir)}`,
    `set -- ; for f in ${own.map((f) => run(f)).join(' ')}; do [ -e "$f" ] && set -- "$@" "$f"; done`,
    'if [ $# -gt 0 ]; then tar -c -f - --numeric-owner --sort=name -- "$@"; fi',
  ].join('\n');
}

/** The manifest a backup printed on stderr. */
export function parseManifest(host: string, stderr: string): Manifest {
  const line = stderr.split('\n').find((l) => l.startsWith(MANIFEST_MARK));
  if (!line) throw new UnexpectedHostOutput(host, 'the backup printed no manifest');
  let data: unknown;
  try {
    data = JSON.parse(line.slice(MANIFEST_MARK.length));
  } catch {
    throw new UnexpectedHostOutput(host, 'the backup manifest is not JSON');
  }
  return validate(manifestSchema, data, `backup manifest of ${host}`);
}

// ---------------------------------------------------------------------------------------------------------------
// Restore

/**
 * Runs in the throwaway container, cwd /restore, after tar extracted the snapshot: puts each database copy back in
 * its volume and checks its integrity. Prints one report line.
 */
const STAGE_JS = String.raw`
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { DatabaseSync } from 'node:sqlite';
const manifest = JSON.parse(readFileSync('manifest.json', 'utf8'));
const databases = [];
for (const db of manifest.databases) {
  const copy = 'sqlite/' + db.volume + '/' + db.path;
  const dest = 'volumes/' + db.volume + '/' + db.path;
  if (!existsSync(copy)) { databases.push({ volume: db.volume, path: db.path, integrity: 'missing from the snapshot' }); continue; }
  for (const s of ['', '-wal', '-shm', '-journal']) rmSync(dest + s, { force: true });
  renameSync(copy, dest);
  const d = new DatabaseSync(dest, { readOnly: true });
  const check = d.prepare('PRAGMA integrity_check').all().map((r) => Object.values(r)[0]).join(' | ');
  d.close();
  for (const s of ['-wal', '-shm']) rmSync(dest + s, { force: true });
  databases.push({ volume: db.volume, path: db.path, integrity: check.slice(0, 300) });
}
process.stdout.write('\n${STAGED_MARK}' + JSON.stringify({ manifest, databases }) + '\n');
`;

const STAGE_SH = [
  'set -eu',
  'cd /restore',
  // -i: the archive is two tars back to back. Names with ".." or a leading "/" are refused by tar itself.
  'tar -x -i -p -f - --no-same-owner',
  'node --no-warnings --input-type=module --eval "$1"',
].join('\n');

/** Restore staging, a drill's or a restore's: `<installDir>/.steward-restore/<id>`. */
export function stagePath(spec: Spec, id: string): string {
  if (!STAGE_ID.test(id)) throw new Error(`stage id ${JSON.stringify(id)} is not letters, digits and dashes`);
  return `${stagingDirs(spec).restore}/${id}`;
}

/** The staging script, run as root with the snapshot's tar on stdin. */
export function stageScript(spec: Spec, image: string, id: string): string {
  const parent = stagingDirs(spec).restore;
  const stage = stagePath(spec, id);
  const { uid, gid } = spec.stack;
  const docker = [
    'docker',
    'run',
    '-i',
    ...confined(spec, 'stage'),
    '--mount',
    `type=bind,source=${stage},target=/restore`,
    '--entrypoint',
    'sh',
    image,
    '-c',
    STAGE_SH,
    'sh',
    STAGE_JS,
  ];
  return [
    'set -eu',
    'umask 077',
    `stage=${run(stage)}`,
    SWEEP,
    run('install', '-d', '-m', '0700', '--', parent),
    // Stages of earlier runs (one cut short, a reverted restore's): runs on a host take turns, so none is in use.
    `find ${run(parent)} -mindepth 1 -maxdepth 1 -exec rm -rf -- {} +`,
    run('install', '-d', '-m', '0700', '-o', uid, '-g', gid, '--', stage),
    sh(docker),
    // A volume the archive made a link (a snapshot of a host that was not what it seemed) is never mounted or moved.
    'if [ -L "$stage/volumes" ]; then echo "the snapshot\'s volumes are a link" >&2; exit 3; fi',
    'for p in "$stage"/volumes/*; do if [ -L "$p" ] || { [ -e "$p" ] && [ ! -d "$p" ]; }; then echo "the snapshot\'s volume ${p##*/} is not a directory" >&2; exit 3; fi; done',
    // Everything staged was written by the container's uid; anything else means the staging was tampered with.
    `find ${run(stage)} -xdev \\( ! -uid ${uid} -o ! -gid ${gid} \\) -printf 'foreign %U:%G %p\\n' | head -n 5`,
    `printf 'size %s\\n' "$(du -sk ${run(stage)} | cut -f1)"`,
  ].join('\n');
}

const stagedSchema = z.object({
  manifest: manifestSchema,
  databases: z.array(z.object({ volume: z.string(), path: z.string(), integrity: z.string() })),
});

export interface Staged extends z.infer<typeof stagedSchema> {
  /** Entries not owned by the container's uid:gid (at most 5). */
  readonly foreign: readonly string[];
  readonly kilobytes: number;
}

export function parseStaged(host: string, stdout: string): Staged {
  const line = stdout.split('\n').find((l) => l.startsWith(STAGED_MARK));
  if (!line) throw new UnexpectedHostOutput(host, 'the restore staging printed no report');
  let data: unknown;
  try {
    data = JSON.parse(line.slice(STAGED_MARK.length));
  } catch {
    throw new UnexpectedHostOutput(host, 'the restore staging report is not JSON');
  }
  const staged = validate(stagedSchema, data, `restore staging on ${host}`);
  const foreign = [...stdout.matchAll(/^foreign (.*)$/gm)].map((m) => m[1]!);
  const kilobytes = Number(/^size (\d+)$/m.exec(stdout)?.[1] ?? NaN);
  return { ...staged, foreign, kilobytes };
}

/** Free kilobytes where restores stage (the filesystem of the install dir). */
export function freeSpaceScript(spec: Spec): string {
  return `df -Pk ${run(stackLayout(spec).installDir)} | awk 'NR==2 {print $4}'`;
}

/**
 * Swaps each staged volume in for the live one, keeping the live one as `<path>.pre-restore-<id>`, then puts the live
 * `openclaw.json` into the restored state (the data comes from the snapshot, the config from the spec). Safe to run
 * again: a volume already swapped is left as it is, and the config is put in place again. Run with the gateway
 * stopped, so nothing in the volumes changes meanwhile. Prints `restored <name>` or `already <name>` per volume.
 */
export function swapScript(spec: Spec, id: string, volumes: readonly string[]): string {
  const stage = stagePath(spec, id);
  const lines = [
    'set -eu',
    `stage=${run(stage)}`,
    'if [ -L "$stage" ] || [ -L "$stage/volumes" ]; then echo "the restore stage is a link" >&2; exit 3; fi',
  ];
  const swapped = backedUpVolumes(spec).filter((x) => volumes.includes(x.name));
  for (const v of swapped) {
    const src = `${stage}/volumes/${v.name}`;
    const keep = `${v.path}.pre-restore-${id}`;
    lines.push(
      `src=${run(src)}; live=${run(v.path)}; keep=${run(keep)}`,
      'if [ -d "$src" ] && [ ! -L "$src" ]; then',
      '  if [ ! -e "$keep" ] && { [ -e "$live" ] || [ -L "$live" ]; }; then mv -T -- "$live" "$keep"; fi',
      '  if [ -e "$live" ] || [ -L "$live" ]; then echo "$live is still there after it was moved aside" >&2; exit 3; fi',
      '  mv -T -- "$src" "$live"',
      `  if [ -d "$keep" ] && [ ! -L "$keep" ]; then chown --reference="$keep" -- "$live"; chmod --reference="$keep" -- "$live"; else chown ${spec.stack.uid}:${spec.stack.gid} -- "$live"; chmod ${v.mode} -- "$live"; fi`,
      `  echo ${run(`restored ${v.name}`)}`,
      `elif [ -e "$keep" ]; then echo ${run(`already ${v.name}`)}`,
      `else echo ${run(`staged volume ${v.name} is missing`)} >&2; exit 3; fi`,
    );
  }
  const state = swapped.find((v) => v.name === 'state');
  if (state) {
    lines.push(
      `live=${run(state.path)}; keep=${run(`${state.path}.pre-restore-${id}`)}`,
      'if [ -d "$live" ] && [ ! -L "$live" ] && [ -d "$keep" ] && [ ! -L "$keep" ] && [ -f "$keep/openclaw.json" ] && [ ! -L "$keep/openclaw.json" ]; then',
      // A new file of root's (mktemp never opens an existing name) renamed over whatever the snapshot has there: a
      // link the snapshot planted is replaced, never written through.
      '  tmp=$(mktemp -p "$live" .openclaw.json.XXXXXX)',
      '  cat -- "$keep/openclaw.json" > "$tmp"',
      `  chown ${spec.stack.uid}:${spec.stack.gid} -- "$tmp"; chmod --reference="$keep/openclaw.json" -- "$tmp"`,
      '  mv -T -f -- "$tmp" "$live/openclaw.json"',
      'fi',
    );
  }
  return lines.join('\n');
}

/** Puts the kept volumes back after a failed restore; the restored ones go back into the staging dir. */
export function revertScript(spec: Spec, id: string, volumes: readonly string[]): string {
  const stage = stagePath(spec, id);
  const lines = ['set -eu', run('install', '-d', '-m', '0700', '--', `${stage}/failed`)];
  for (const v of backedUpVolumes(spec).filter((x) => volumes.includes(x.name))) {
    lines.push(
      `live=${run(v.path)}; keep=${run(`${v.path}.pre-restore-${id}`)}; aside=${run(`${stage}/failed/${v.name}`)}`,
      'if [ -e "$keep" ]; then',
      '  if [ -e "$live" ] || [ -L "$live" ]; then rm -rf -- "$aside"; mv -T -- "$live" "$aside"; fi',
      '  mv -T -- "$keep" "$live"',
      `  echo ${run(`reverted ${v.name}`)}`,
      'fi',
    );
  }
  return lines.join('\n');
}

/** Removes a stage (a drill's, or a restore's once it is proven). */
export function removeStageScript(spec: Spec, id: string): string {
  return `rm -rf -- ${run(stagePath(spec, id))}`;
}

/** The mounts a drill's proof gets: each staged volume where the gateway would see the live one. */
export function drillMounts(spec: Spec, id: string): { source: string; target: string }[] {
  const stage = stagePath(spec, id);
  return backedUpVolumes(spec).map((v) => ({ source: `${stage}/volumes/${v.name}`, target: mountOf(v) }));
}
