/**
 * mem0's SQLite databases on the host: `PRAGMA integrity_check` and the journal mode, read-only and honouring the
 * writers' locks; nothing it might create stays root-owned (OpenClaw #21571). A damaged database is copied, with its
 * -wal, -shm and -journal, to /var/backups/steward/memory/<time>/ before anything else happens, and a recovered copy
 * is made next to the backup for the operator; the live file is never replaced or removed.
 */
import type { Change, ControlResult, Finding } from '../../model/report';
import type { HostSession } from '../host/session';
import { run } from '../host/shell';
import { BACKUP_DIR } from '../harden/timers';
import { control } from './controls';
import { COMPANIONS } from './paths';

/** Where damaged databases are kept. Outside the rotation of steward's file backups: kept until removed by hand. */
export const MEMORY_BACKUP_DIR = `${BACKUP_DIR}/memory`;

export type IntegrityState = 'ok' | 'damaged' | 'locked' | 'inaccessible' | 'absent' | 'no-sqlite3' | 'symlink';

export interface Integrity {
  readonly path: string;
  readonly state: IntegrityState;
  /** `integrity_check`'s first lines, or the error. */
  readonly evidence: string;
  readonly journalMode?: string;
  readonly ms: number;
}

/** Journal modes that keep a database consistent across a crash. */
const SAFE_JOURNAL_MODES = ['delete', 'truncate', 'persist', 'wal'];

/**
 * A read-only `sqlite3` of `sql` on `path`, as root (the container's uid cannot even reach the file from the host:
 * the install dir is 0750 root:<ops>), honouring the writers' locks for 5 s. A read-only connection creates no file
 * for a rollback-journal database; should SQLite still create a -wal or -shm (a WAL database), it is given the
 * database's owner at once, so the check never leaves a root-owned file in the container's data.
 */
function sqliteScript(path: string, sql: string): string {
  const companions = COMPANIONS.map((c) => run(`${path}${c}`)).join(' ');
  return [
    `f=${run(path)}`,
    'if [ -L "$f" ]; then echo "rc=symlink"; exit 0; fi',
    'if [ ! -e "$f" ]; then echo "rc=absent"; exit 0; fi',
    'if ! command -v sqlite3 >/dev/null; then echo "rc=no-sqlite3"; exit 0; fi',
    `before=$(for c in ${companions}; do [ -e "$c" ] && echo "$c"; done)`,
    's=$(date +%s%N)',
    `out=$(${run('sqlite3', '-init', '/dev/null', '-readonly', '-bail', '-cmd', '.timeout 5000', path, sql)} 2>&1); rc=$?`,
    'e=$(date +%s%N)',
    `for c in ${companions}; do if [ -e "$c" ] && ! printf '%s\\n' "$before" | grep -qxF "$c"; then chown -h --reference="$f" "$c"; fi; done`,
    'echo "rc=$rc ms=$(( (e - s) / 1000000 ))"',
    'printf \'%s\\n\' "$out" | head -n 12 | cut -c1-300',
  ].join('\n');
}

/** Classifies the output of {@link sqliteScript} for integrity_check + journal_mode. Pure. */
export function parseIntegrity(path: string, out: string): Integrity {
  const [head = '', ...lines] = out.replace(/\n+$/, '').split('\n');
  const m = /^rc=(\S+)(?: ms=(\d+))?$/.exec(head.trim());
  const rc = m?.[1] ?? 'unknown';
  const ms = Number(m?.[2] ?? 0);
  const text = lines.join('\n').trim();
  const base = { path, ms };
  if (rc === 'absent') return { ...base, state: 'absent', evidence: 'absent' };
  if (rc === 'symlink') {
    return {
      ...base,
      state: 'symlink',
      evidence: 'a symbolic link where the database belongs: not opened, never repaired',
    };
  }
  if (rc === 'no-sqlite3') return { ...base, state: 'no-sqlite3', evidence: 'sqlite3 is not installed on the host' };
  const evidence = text.split('\n').slice(0, 3).join(' | ') || `sqlite3 exited ${rc}`;
  if (rc !== '0') {
    if (/locked|busy/i.test(text)) return { ...base, state: 'locked', evidence: `database is locked: ${evidence}` };
    if (/not a database|malformed|corrupt|disk image/i.test(text)) return { ...base, state: 'damaged', evidence };
    if (/unable to open|permission|readonly|cannot open/i.test(text))
      return { ...base, state: 'inaccessible', evidence };
    return { ...base, state: 'damaged', evidence };
  }
  const result = lines.map((l) => l.trim()).filter(Boolean);
  const journalMode = result.length > 1 ? result[result.length - 1] : undefined;
  const checks = journalMode ? result.slice(0, -1) : result;
  const ok = checks.length === 1 && checks[0] === 'ok';
  return {
    ...base,
    state: ok ? 'ok' : 'damaged',
    evidence: ok ? 'ok' : checks.slice(0, 3).join(' | '),
    ...(journalMode ? { journalMode } : {}),
  };
}

/** Integrity and journal mode of each database, in one round trip. */
export async function checkIntegrity(session: HostSession, paths: readonly string[]): Promise<Integrity[]> {
  if (paths.length === 0) return [];
  const probes = Object.fromEntries(
    paths.map((p, i) => [`d${i}`, sqliteScript(p, 'PRAGMA integrity_check; PRAGMA journal_mode;')]),
  );
  const r = await session.probe(probes, { timeoutMs: 300_000, label: 'sqlite integrity_check' });
  return paths.map((p, i) => parseIntegrity(p, r[`d${i}`]!.out));
}

function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** The integrity and journal-mode controls of each database. Pure. */
export function integrityControls(results: readonly Integrity[]): ControlResult[] {
  return results.flatMap((r): ControlResult[] => {
    const name = basename(r.path);
    if (r.state === 'absent') {
      return [control(`memory.integrity.${name}`, 'ok', 'absent', true, `${r.path}: not created yet`, 'na')];
    }
    const integrity = control(
      `memory.integrity.${name}`,
      'PRAGMA integrity_check: ok',
      r.evidence,
      r.state === 'ok',
      r.path,
      undefined,
      r.ms,
    );
    if (r.state !== 'ok') return [integrity];
    const mode = r.journalMode ?? 'unknown';
    return [
      integrity,
      control(
        `memory.journal-mode.${name}`,
        SAFE_JOURNAL_MODES.join(' | '),
        mode,
        SAFE_JOURNAL_MODES.includes(mode),
        mode === 'wal' ? 'WAL: its -wal and -shm files must be owned by the container too' : undefined,
      ),
    ];
  });
}

/**
 * Copies a damaged database and its companions into a fresh backup directory, records their SHA-256, and writes a
 * `.recover`ed copy beside them when sqlite3 can. Returns the changes (the backup) and a finding saying what the
 * operator must do. The live files are untouched.
 */
export async function backupDamaged(
  session: HostSession,
  damaged: Integrity,
  stamp: string,
): Promise<{ changes: Change[]; findings: Finding[] }> {
  const dir = `${MEMORY_BACKUP_DIR}/${stamp}`;
  const name = basename(damaged.path);
  const files = [damaged.path, ...COMPANIONS.map((c) => `${damaged.path}${c}`)];
  const script = [
    'set -eu',
    // A backup identical to the live file already exists (an earlier or retried repair): keep that one.
    `for b in $(find ${run(MEMORY_BACKUP_DIR)} -mindepth 2 -maxdepth 2 -type f -name ${run(name)} 2>/dev/null); do`,
    `  if cmp -s ${run(damaged.path)} "$b"; then printf 'exists %s\n' "$b"; exit 0; fi`,
    'done',
    `install -d -m 0700 ${run(BACKUP_DIR)} ${run(MEMORY_BACKUP_DIR)} ${run(dir)}`,
    ...files.map(
      (f) =>
        `if [ -e ${run(f)} ]; then cp -a --no-clobber ${run(f)} ${run(`${dir}/${basename(f)}`)}; printf 'copied %s %s %s\\n' ${run(basename(f))} "$(sha256sum < ${run(`${dir}/${basename(f)}`)} | cut -c1-64)" "$(stat -c %s ${run(`${dir}/${basename(f)}`)})"; fi`,
    ),
    // The live file and the copy must be identical, or the backup is not one.
    `cmp -s ${run(damaged.path)} ${run(`${dir}/${name}`)} || { echo 'backup differs from the live file' >&2; exit 3; }`,
    `if command -v sqlite3 >/dev/null; then`,
    `  rm -f ${run(`${dir}/${name}.recovered`)}`,
    `  if sqlite3 -init /dev/null ${run(`${dir}/${name}`)} .recover 2>/dev/null | sqlite3 -init /dev/null ${run(`${dir}/${name}.recovered`)} >/dev/null 2>&1; then`,
    `    printf 'recovered %s\\n' "$(sqlite3 -init /dev/null ${run(`${dir}/${name}.recovered`)} 'PRAGMA integrity_check;' 2>&1 | head -n 1)"`,
    '  else echo "recovered none"; fi',
    'fi',
  ].join('\n');
  const r = await session.check(script, { label: `back up ${damaged.path}`, timeoutMs: 600_000 });
  const copied = [...r.stdout.matchAll(/^copied (\S+) ([0-9a-f]{64}) (\d+)$/gm)].map((m) => ({
    file: m[1]!,
    sha256: m[2]!,
    bytes: Number(m[3]),
  }));
  const existing = /^exists (.*)$/m.exec(r.stdout)?.[1]?.trim();
  if (existing) {
    return {
      changes: [],
      findings: [
        {
          id: 'memory.database-damaged',
          severity: 'high',
          resource: `file:${damaged.path}`,
          message:
            `${damaged.path} is damaged (${damaged.evidence}); an identical backup is already at ${existing}. ` +
            'Not repaired: replacing a database can lose memories, so steward leaves the live file as it is.',
        },
      ],
    };
  }
  const recovered = /^recovered (.*)$/m.exec(r.stdout)?.[1]?.trim();
  const changes: Change[] = copied.map((c) => ({
    resource: `backup:${dir}/${c.file}`,
    action: 'create',
    after: {
      of: `${damaged.path.slice(0, damaged.path.lastIndexOf('/'))}/${c.file}`,
      sha256: c.sha256.slice(0, 12),
      bytes: c.bytes,
    },
  }));
  const recoveredNote =
    recovered && recovered !== 'none'
      ? ` A copy rebuilt with sqlite3 .recover is at ${dir}/${name}.recovered (its integrity_check: ${recovered}); compare it before using it.`
      : ' sqlite3 .recover could not rebuild it.';
  return {
    changes,
    findings: [
      {
        id: 'memory.database-damaged',
        severity: 'high',
        resource: `file:${damaged.path}`,
        message:
          `${damaged.path} is damaged (${damaged.evidence}); backed up to ${dir} before anything else. ` +
          `Not repaired: replacing a database can lose memories, so steward leaves the live file as it is.${recoveredNote} ` +
          `To restore by hand: stop the gateway, put a good copy in place owned by the container's uid, start it, run memory check.`,
      },
    ],
  };
}

/** Stored vector lengths (`length → count`) in a mem0 SQLite vector store, read-only. */
export async function storedDimensions(
  session: HostSession,
  path: string,
): Promise<Record<number, number> | undefined> {
  const r = await session.probe({
    dims: sqliteScript(path, 'SELECT length(vector)/4, count(*) FROM vectors GROUP BY 1;'),
  });
  const [head = '', ...lines] = r.dims.out.trim().split('\n');
  if (!/^rc=0\b/.test(head)) return undefined;
  const dims: Record<number, number> = {};
  for (const l of lines) {
    const m = /^(\d+)\|(\d+)$/.exec(l.trim());
    if (m) dims[Number(m[1])] = Number(m[2]);
  }
  return dims;
}
