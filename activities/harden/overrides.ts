/**
 * Foreign overrides: a file steward does not own that sets a managed setting to another value where the program
 * reading it lets that file win — an sshd drop-in read before steward's (sshd keeps the first value) or a Match block
 * anywhere, a sysctl.d file read after steward's (the last value wins), a sudoers.d file read after steward's (the
 * last matching entry wins), a drop-in that changes how nftables.service loads or removes its ruleset.
 *
 * Rewriting steward's own file cannot repair these; the file that wins must change. Repair moves the foreign file
 * aside into {@link OVERRIDES_DIR} (its name carries the content's hash, so the same file is kept once) and, when it
 * held anything else, puts a copy back in its place with only the overriding lines commented out. A file another
 * package owns (`/usr/lib/sysctl.d`) is left as it is and masked by a file of the same name in `/etc/sysctl.d`.
 * The plan shows one change per file, with the foreign value before and steward's after.
 *
 * Everything read here is untrusted input: paths and contents travel base64-encoded, nothing read reaches a shell,
 * and a link is moved aside as the link (its target is never written).
 */
import { createHash } from 'node:crypto';
import type { Change } from '../../model/report';
import { UnexpectedHostOutput } from '../host/errors';
import type { HostSession, ProbeResult } from '../host/session';
import { run } from '../host/shell';
import { printable } from '../host/text';
import type { Resource } from '../resources/resource';

/** Where foreign files that overrode a managed setting are kept. */
export const OVERRIDES_DIR = '/var/backups/steward/overrides';
/** How much of each file is read: configuration files are small; more than this is not a configuration. */
const MAX_BYTES = 262_144;

/** One configuration file as the host holds it. */
export interface ConfigFile {
  /** The path the program reads. */
  readonly path: string;
  /** Where that path leads (`readlink -f`); the path itself when it is not a link. */
  readonly real: string;
  readonly link: boolean;
  /** Mode (octal) and owner of what the path leads to. */
  readonly mode: string;
  readonly owner: string;
  readonly content: string;
}

/** One line of a foreign file that sets a managed setting to another value, where that value wins. */
export interface Override {
  readonly file: string;
  /** 1-based. */
  readonly line: number;
  readonly setting: string;
  readonly value: string;
  readonly managed: string;
}

/**
 * Shell that prints one line per existing non-directory path in `$@` (globs expanded by the caller's shell): path,
 * real path (empty unless the path is a link), `l` or `f`, mode, owner, base64 content (the first {@link MAX_BYTES};
 * only a regular file is read, so a link to a FIFO or a device never blocks or streams). A path made only of
 * `A-Za-z0-9._/-` is written as `:path`, any other in base64: drift lists every file of five configuration
 * directories, and encoding each name took two more processes per file.
 */
function listing(paths: string): string {
  return [
    `for f in ${paths}; do`,
    '  { [ -e "$f" ] || [ -L "$f" ]; } && [ ! -d "$f" ] || continue',
    '  t=f r=',
    '  [ -L "$f" ] && t=l r=$(readlink -f -- "$f" 2>/dev/null || printf %s "$f")',
    '  s=$(stat -L -c "%a %U" -- "$f" 2>/dev/null || echo "0 ?")',
    `  c=; [ -f "$f" ] && c=$(head -c ${MAX_BYTES} -- "$f" | base64 -w0)`,
    '  case "$f" in *[!A-Za-z0-9._/-]*) p=$(printf %s "$f" | base64 -w0) ;; *) p=":$f" ;; esac',
    '  case "$r" in "") q= ;; *[!A-Za-z0-9._/-]*) q=$(printf %s "$r" | base64 -w0) ;; *) q=":$r" ;; esac',
    '  printf "%s %s %s %s %s\\n" "$p" "$q" "$t" "$s" "$c"',
    'done',
  ].join('\n');
}

const b64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');
/** A listing's name field: `:path` as it is, else base64. */
const name = (s: string) => (s.startsWith(':') ? s.slice(1) : b64(s));

/** Parses {@link listing}'s output. @throws UnexpectedHostOutput on a line that is not one. */
export function parseListing(host: string, r: ProbeResult, what: string): ConfigFile[] {
  if (r.code !== 0) throw new UnexpectedHostOutput(host, `${what}: listing exited ${r.code}`);
  return r.out
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => {
      const m =
        /^(:[A-Za-z0-9._/-]+|[A-Za-z0-9+/=]+) (:[A-Za-z0-9._/-]+|[A-Za-z0-9+/=]*) ([fl]) ([0-7]+) (\S+) ([A-Za-z0-9+/=]*)$/.exec(
          l,
        );
      if (!m) throw new UnexpectedHostOutput(host, `${what}: not a listing line: ${JSON.stringify(l.slice(0, 80))}`);
      const path = name(m[1]!);
      return {
        path,
        real: name(m[2]!) || path,
        link: m[3] === 'l',
        mode: m[4]!.padStart(4, '0'),
        owner: m[5]!,
        content: b64(m[6]!),
      };
    });
}

/** An empty stand-in for steward's own file when the host does not hold it yet. */
const placeholder = (files: readonly ConfigFile[], path: string): ConfigFile[] =>
  files.some((f) => f.path === path)
    ? []
    : [{ path, real: path, link: false, mode: '0644', owner: 'root', content: '' }];

/** Byte order, as the C locale sorts the names sshd, sudo and systemd read in order. */
const byName = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
const base = (p: string) => p.slice(p.lastIndexOf('/') + 1);
const lines = (content: string) => content.split('\n');
const norm = (v: string) => v.trim().replace(/\s+/g, ' ');

// ---------------------------------------------------------------------------------------------------------------
// sshd

/** A managed sshd keyword and steward's value. `list` keywords accumulate across files instead of the first winning. */
export interface SshdSetting {
  readonly keyword: string;
  readonly value: string;
  readonly list?: boolean;
}

/** sshd's spellings of the same value. */
const SSHD_SYNONYMS: Readonly<Record<string, string>> = { 'without-password': 'prohibit-password' };
const sshdValue = (v: string) => {
  const n = norm(v).replace(/^"(.*)"$/, '$1');
  const lower = n.toLowerCase();
  return SSHD_SYNONYMS[lower] ?? (/^(yes|no)$/.test(lower) ? lower : n);
};

/**
 * The sshd lines that override steward's drop-in. sshd reads the main file, expanding its `Include` of the drop-in
 * directory in name order where the line stands, and keeps the first value of each keyword outside Match blocks; a
 * Match block's value applies to the connections it matches, wherever it is. So a foreign line overrides when it
 * sets a managed keyword to another value and is read before steward's drop-in, or stands in a Match block, or sets
 * a list keyword (AllowUsers and the like add to steward's instead of losing to it).
 */
export function sshdOverrides(
  files: readonly ConfigFile[],
  main: string,
  dropIn: string,
  settings: readonly SshdSetting[],
): Override[] {
  const wanted = new Map(settings.map((s) => [s.keyword.toLowerCase(), s]));
  const mainFile = files.find((f) => f.path === main);
  // steward's drop-in stands at its place by name even before it is written (a plan observes before applying).
  const dropIns = [
    ...files.filter((f) => f.path !== main && f.path.endsWith('.conf')),
    ...placeholder(files, dropIn),
  ].sort((a, b) => byName(a.path, b.path));
  // The read order: main's lines, with the drop-ins where its Include of them stands.
  const order: { file: ConfigFile; from: number; to: number }[] = [];
  if (mainFile) {
    const ls = lines(mainFile.content);
    const inc = ls.findIndex((l) => /^\s*include\s+\S*sshd_config\.d\/\*\.conf\s*$/i.test(l));
    if (inc < 0) order.push({ file: mainFile, from: 0, to: ls.length });
    else {
      order.push({ file: mainFile, from: 0, to: inc });
      for (const f of dropIns) order.push({ file: f, from: 0, to: Infinity });
      order.push({ file: mainFile, from: inc + 1, to: ls.length });
    }
  }
  const found: Override[] = [];
  let stewardRead = false;
  for (const { file, from, to } of order) {
    if (file.path === dropIn) {
      stewardRead = true;
      continue;
    }
    let inMatch = false;
    lines(file.content).forEach((text, i) => {
      if (i < from || i >= to) return;
      const m = /^\s*([A-Za-z]+)(?:\s*=\s*|\s+)(.*?)\s*$/.exec(text);
      if (!m || text.trim().startsWith('#')) return;
      const keyword = m[1]!.toLowerCase();
      if (keyword === 'match') {
        inMatch = !/^all$/i.test(norm(m[2]!));
        return;
      }
      const s = wanted.get(keyword);
      if (!s) return;
      const value = m[2]!.replace(/\s+#.*$/, '');
      if (sshdValue(value) === sshdValue(s.value)) return;
      if (inMatch || s.list || !stewardRead) {
        found.push({ file: file.path, line: i + 1, setting: s.keyword, value: norm(value), managed: s.value });
      }
    });
  }
  return found;
}

/**
 * Options on sshd's command line win over every file and never show in `sshd -T`, which starts a new sshd: Debian's
 * ssh.service passes `$SSHD_OPTS` from /etc/default/ssh. A foreign value there overrides when it sets a managed
 * keyword to another value (`-o PasswordAuthentication=yes`), or names another config file or port (`-f`, `-p`).
 * A drop-in of ssh.service that changes how sshd starts is found by {@link unitOverrides}.
 */
export function sshdOptionOverrides(
  files: readonly ConfigFile[],
  defaults: string,
  settings: readonly SshdSetting[],
): Override[] {
  const wanted = new Map(settings.map((s) => [s.keyword.toLowerCase(), s]));
  const file = files.find((f) => f.path === defaults);
  if (!file) return [];
  const found: Override[] = [];
  lines(file.content).forEach((text, i) => {
    const m = /^\s*(?:export\s+)?SSHD_OPTS=(.*)$/.exec(text);
    if (!m) return;
    const words = m[1]!
      .replace(/^(["'])(.*)\1\s*$/, '$2')
      .trim()
      .split(/\s+/)
      .filter(Boolean);
    words.forEach((w, k) => {
      const option = w === '-o' ? words[k + 1] : w.startsWith('-o') ? w.slice(2) : undefined;
      if (option !== undefined) {
        const [keyword = '', ...rest] = option.split('=');
        const s = wanted.get(keyword.toLowerCase());
        if (s && sshdValue(rest.join('=')) !== sshdValue(s.value)) {
          found.push({
            file: file.path,
            line: i + 1,
            setting: `SSHD_OPTS ${s.keyword}`,
            value: rest.join('='),
            managed: s.value,
          });
        }
      } else if (/^-[fp]/.test(w)) {
        found.push({
          file: file.path,
          line: i + 1,
          setting: `SSHD_OPTS ${w.slice(0, 2)}`,
          value: w.length > 2 ? w.slice(2) : (words[k + 1] ?? ''),
          managed: '(none: the drop-in decides)',
        });
      }
    });
  });
  return found;
}

// ---------------------------------------------------------------------------------------------------------------
// sysctl

/** The directories systemd-sysctl reads, highest priority first: a name in an earlier one hides the same name later. */
export const SYSCTL_DIRS = ['/etc/sysctl.d', '/run/sysctl.d', '/usr/local/lib/sysctl.d', '/usr/lib/sysctl.d'];
const SYSCTL_CONF = '/etc/sysctl.conf';

/** `net/ipv4/ip_forward` and `net.ipv4.ip_forward` are one key; a key may be a glob (`net.ipv4.conf.*.rp_filter`). */
const sysctlKey = (k: string) => k.trim().replace(/^-/, '').replace(/\//g, '.');
const globMatches = (glob: string, key: string) =>
  new RegExp(
    `^${glob
      .replace(/[.+^${}()|\\]/g, '\\$&')
      .replace(/\*/g, '[^.]*')
      .replace(/\?/g, '.')}$`,
  ).test(key);

/**
 * The sysctl lines that override steward's file. systemd-sysctl reads every `*.conf` of {@link SYSCTL_DIRS} by name
 * (one file per name, the highest directory's), then procps' `sysctl --system` also reads /etc/sysctl.conf last; the
 * last value set wins. So a foreign line overrides when it is read after steward's file and sets a managed key (or a
 * glob matching one) to another value. The `99-sysctl.conf` link to /etc/sysctl.conf is reported as that file.
 */
export function sysctlOverrides(
  files: readonly ConfigFile[],
  stewardFile: string,
  settings: Readonly<Record<string, string>>,
): Override[] {
  const chosen = new Map<string, ConfigFile>();
  for (const dir of SYSCTL_DIRS) {
    // steward's file stands at its place by name even before it is written (a plan observes before applying).
    const here = [...files, ...(dir === SYSCTL_DIRS[0] ? placeholder(files, stewardFile) : [])];
    for (const f of here.filter((x) => x.path.startsWith(`${dir}/`) && x.path.endsWith('.conf'))) {
      if (!chosen.has(base(f.path))) chosen.set(base(f.path), f);
    }
  }
  const order = [...chosen.values()]
    .filter((f) => !(f.link && f.real === SYSCTL_CONF))
    .sort((a, b) => byName(base(a.path), base(b.path)));
  const conf = files.find((f) => f.path === SYSCTL_CONF);
  if (conf) order.push(conf);
  const after = order.slice(order.findIndex((f) => f.path === stewardFile) + 1);
  const found: Override[] = [];
  for (const file of after) {
    lines(file.content).forEach((text, i) => {
      const t = text.trim();
      if (t === '' || t.startsWith('#') || t.startsWith(';') || !t.includes('=')) return;
      const key = sysctlKey(t.slice(0, t.indexOf('=')));
      const value = norm(t.slice(t.indexOf('=') + 1));
      for (const [managed, want] of Object.entries(settings)) {
        if ((key === managed || globMatches(key, managed)) && value !== norm(want)) {
          found.push({ file: file.path, line: i + 1, setting: managed, value, managed: want });
        }
      }
    });
  }
  return found;
}

// ---------------------------------------------------------------------------------------------------------------
// sudoers

/** A managed sudoers entry: a `Defaults` flag or value steward sets, or the ops user's own rule. */
export interface SudoSettings {
  /** `use_pty` (a flag, on), `logfile` → its value. */
  readonly defaults: Readonly<Record<string, string | true>>;
  /** The ops user and its groups: a later user specification naming one of them replaces steward's rule. */
  readonly opsUser: string;
  readonly opsGroups: readonly string[];
}

/**
 * The sudoers.d lines that override steward's files. sudo reads /etc/sudoers.d by name (skipping names with a dot
 * or ending in `~`) and the last matching entry wins. So a foreign file read after steward's overrides when it
 * turns a managed `Defaults` off or sets it to another value (globally or for any user), or gives the ops user (by
 * name, by one of its groups, or `ALL`) a rule of its own, which replaces the one steward relies on.
 */
export function sudoersOverrides(
  files: readonly ConfigFile[],
  steward: { readonly defaults: string; readonly rule: string },
  s: SudoSettings,
): Override[] {
  const read = files
    .filter((f) => f.path.startsWith('/etc/sudoers.d/') && !/[.]|~$/.test(base(f.path)))
    .sort((a, b) => byName(a.path, b.path));
  const principals = new Set([s.opsUser, ...s.opsGroups.map((g) => `%${g}`), 'ALL']);
  const found: Override[] = [];
  for (const file of read) {
    if (file.path === steward.defaults || file.path === steward.rule) continue;
    const afterDefaults = byName(file.path, steward.defaults) > 0;
    const afterRule = byName(file.path, steward.rule) > 0;
    lines(file.content).forEach((text, i) => {
      const t = text.replace(/(^|\s)#(?!\d).*$/, '').trim();
      if (t === '' || /^[#@]include/.test(t) || /^(User|Runas|Host|Cmnd|Cmd)_Alias\b/.test(t)) return;
      const d = /^Defaults(?:[:@!>]\S+)?\s+(.*)$/.exec(t);
      if (d) {
        for (const entry of d[1]!.split(',').map((e) => e.trim())) {
          const m = /^(!*)([a-z_]+)\s*(?:[-+]?=\s*(.*))?$/.exec(entry);
          if (!m || !afterDefaults) continue;
          const want = s.defaults[m[2]!];
          if (want === undefined) continue;
          const on = m[1]!.length % 2 === 0;
          const value = m[3]?.trim().replace(/^"(.*)"$/, '$1');
          const same = want === true ? on && value === undefined : on && value === want;
          if (!same) {
            found.push({
              file: file.path,
              line: i + 1,
              setting: `Defaults ${m[2]}`,
              value: entry,
              managed: want === true ? m[2]! : `${m[2]}=${want}`,
            });
          }
        }
        return;
      }
      const users = t
        .split(/\s+/)[0]!
        .split(',')
        .map((u) => u.trim());
      if (afterRule && users.some((u) => principals.has(u))) {
        found.push({
          file: file.path,
          line: i + 1,
          setting: `rule for ${s.opsUser}`,
          value: t,
          managed: `${s.opsUser} ALL=(ALL:ALL) NOPASSWD: ALL`,
        });
      }
    });
  }
  return found;
}

// ---------------------------------------------------------------------------------------------------------------
// fail2ban

/** fail2ban's jail files, in the words the listing expands. */
export const FAIL2BAN_JAIL_FILES =
  '/etc/fail2ban/jail.conf /etc/fail2ban/jail.d/*.conf /etc/fail2ban/jail.local /etc/fail2ban/jail.d/*.local';

/** fail2ban reads jail.conf, then jail.d/*.conf by name, then jail.local, then jail.d/*.local by name. */
function fail2banRank(path: string): number {
  if (path === '/etc/fail2ban/jail.conf') return 0;
  if (path === '/etc/fail2ban/jail.local') return 2;
  if (!path.startsWith('/etc/fail2ban/jail.d/')) return -1;
  return path.endsWith('.conf') ? 1 : path.endsWith('.local') ? 3 : -1;
}

/**
 * The jail-file lines that override steward's settings of `jail`. A jail's own value wins over `[DEFAULT]` in any
 * file, and a later file's value for the same jail and key wins: steward sets its values in the jail's section, so
 * a line overrides when it is in that section of a file read after steward's and sets one of them to another value.
 * Values that defer to another (`%(…)s`) and continuation lines are not settings of their own.
 */
export function fail2banOverrides(
  files: readonly ConfigFile[],
  stewardFile: string,
  jail: string,
  settings: Readonly<Record<string, string>>,
): Override[] {
  const read = [...files, ...placeholder(files, stewardFile)]
    .filter((f) => fail2banRank(f.path) >= 0)
    .sort((a, b) => fail2banRank(a.path) - fail2banRank(b.path) || byName(a.path, b.path));
  const at = read.findIndex((f) => f.path === stewardFile);
  const found: Override[] = [];
  for (const file of read.slice(at + 1)) {
    let section = '';
    lines(file.content).forEach((text, i) => {
      const head = /^\[([^\]]+)\]\s*$/.exec(text);
      if (head) {
        section = head[1]!.trim();
        return;
      }
      if (section !== jail) return;
      const m = /^([A-Za-z_][\w.-]*)\s*[=:]\s*(.*?)\s*$/.exec(text);
      if (!m) return;
      const [, key = '', value = ''] = m;
      const want = settings[key];
      if (want === undefined || value.includes('%(') || norm(value) === want) return;
      found.push({ file: file.path, line: i + 1, setting: `[${section}] ${key}`, value, managed: want });
    });
  }
  return found;
}

// ---------------------------------------------------------------------------------------------------------------
// systemd unit drop-ins

/**
 * Drop-ins of `unit` that change how it starts, reloads or stops (any `Exec*=` line), other than steward's own:
 * for nftables.service that decides which ruleset is loaded at boot and what a stop removes.
 */
export function unitOverrides(files: readonly ConfigFile[], stewardDropIn: string, managed: string): Override[] {
  return files
    .filter((f) => f.path !== stewardDropIn && f.path.endsWith('.conf'))
    .flatMap((file) =>
      lines(file.content).flatMap((text, i) => {
        const m = /^\s*(Exec[A-Za-z]*)\s*=\s*(.*?)\s*$/.exec(text);
        return m ? [{ file: file.path, line: i + 1, setting: m[1]!, value: m[2]!, managed }] : [];
      }),
    );
}

/**
 * Drop-ins of ssh.service that change sshd's command line: a replaced `ExecStart` (with the empty line that resets
 * the stock one, both commented out together) or an environment that sets `SSHD_OPTS`. Hooks such as an
 * `ExecStartPre` that generates host keys are left alone: they do not change what sshd runs with.
 */
export function sshUnitOverrides(files: readonly ConfigFile[]): Override[] {
  const managed = 'ssh.service starts sshd with its configuration and nothing over it';
  return files
    .filter((f) => f.path.endsWith('.conf'))
    .flatMap((file) => {
      const ls = lines(file.content).map((text, i) => ({ i, m: /^\s*([A-Za-z]+)\s*=\s*(.*?)\s*$/.exec(text) }));
      const replaced = ls.some(({ m }) => m?.[1] === 'ExecStart' && m[2] !== '');
      return ls.flatMap(({ i, m }) => {
        if (!m) return [];
        const [, key = '', value = ''] = m;
        const hit =
          (key === 'ExecStart' && replaced) ||
          (key === 'Environment' && /SSHD_OPTS=/.test(value)) ||
          key === 'EnvironmentFile';
        return hit ? [{ file: file.path, line: i + 1, setting: key, value, managed }] : [];
      });
    });
}

// ---------------------------------------------------------------------------------------------------------------
// The resource

export interface OverridesSpec {
  /** Resource id, e.g. `overrides:sshd`. */
  readonly id: string;
  /** Shell words the listing loops over (globs expand on the host). */
  readonly paths: string;
  readonly find: (files: readonly ConfigFile[]) => Override[];
  /** Where the neutralised copy of `file` goes: its own path, or a masking path (systemd's name precedence). */
  readonly replacement?: (file: ConfigFile) => { path: string; moveAside: boolean };
  /** Mode of a neutralised copy written where a link or another package's file was. */
  readonly mode?: string;
  /** Validator the neutralised copy must pass before it replaces the file (e.g. `visudo -cf`). */
  readonly validate?: readonly string[];
  /** Runs once after any file changed (e.g. `systemctl daemon-reload`). */
  readonly afterApply?: string;
}

interface Observed {
  readonly files: readonly ConfigFile[];
  readonly overrides: readonly Override[];
}

/** Where a foreign file is kept: its path flattened, and its content's hash (the same file is kept once). */
export function keptAt(file: ConfigFile): string {
  const digest = createHash('sha256').update(file.content).digest('hex').slice(0, 12);
  return `${OVERRIDES_DIR}/${file.path.replace(/^\//, '').replace(/\//g, '_')}.${digest}`;
}

/** `file`'s content with the override lines commented out, saying where the original is (`where`). */
export function neutralised(file: ConfigFile, overrides: readonly Override[], where: string): string {
  const at = new Set(overrides.filter((o) => o.file === file.path).map((o) => o.line));
  return lines(file.content)
    .map((l, i) => (at.has(i + 1) ? `# steward: overrode a managed setting (${where}): ${l}` : l))
    .join('\n');
}

/** Whether anything but comments, blank lines and section headings (a unit's `[Service]`) is left. */
export const hasSettings = (content: string) =>
  lines(content).some((l) => l.trim() !== '' && !/^\s*[#;]/.test(l) && !/^\s*\[[^\]]*\]\s*$/.test(l));

/** The overrides of one program's configuration, as a resource: one change per foreign file. */
export function overridesResource(spec: OverridesSpec, host: string): Resource<Observed> {
  return {
    id: spec.id,
    probe: listing(spec.paths),
    parse: (r) => {
      const files = parseListing(host, r, spec.id);
      return { files, overrides: spec.find(files) };
    },
    diff: ({ files, overrides }): Change[] =>
      files.flatMap((f) => {
        const here = overrides.filter((o) => o.file === f.path);
        if (here.length === 0) return [];
        const kept = spec.replacement?.(f).moveAside === false ? undefined : keptAt(f);
        return [
          {
            resource: `override:${f.path}`,
            action: 'update',
            before: Object.fromEntries(here.map((o) => [printable(o.setting), printable(o.value)])),
            after: {
              ...Object.fromEntries(here.map((o) => [printable(o.setting), o.managed])),
              ...(kept ? { keptAt: kept } : { maskedBy: spec.replacement!(f).path }),
            },
          },
        ];
      }),
    apply: async (session: HostSession, { files, overrides }) => {
      for (const f of files) {
        if (!overrides.some((o) => o.file === f.path)) continue;
        const target = spec.replacement?.(f) ?? { path: f.path, moveAside: true };
        const where = target.moveAside ? `original kept in ${keptAt(f)}` : `${f.path} is left as it is`;
        const content = neutralised(f, overrides, where);
        const keep = hasSettings(content) || !target.moveAside;
        if (target.moveAside) {
          // Kept first (a link as the link); the path changes only after, in one rename: a neutralised copy that
          // fails its validator leaves the original where it was.
          const copy = [run('install', '-d', '-m', '0700', OVERRIDES_DIR), run('cp', '-PpT', '--', f.path, keptAt(f))];
          if (!keep) copy.push(run('rm', '-f', '--', f.path));
          await session.check(copy.join(' && '), { label: `keep ${f.path} aside` });
        }
        if (keep) {
          const mode = f.link || !target.moveAside ? (spec.mode ?? '0644') : f.mode;
          await session.writeFile(target.path, content, 'root:root', mode, [...(spec.validate ?? [])]);
        }
      }
      if (spec.afterApply) await session.check(spec.afterApply, { label: `${spec.id}: ${spec.afterApply}` });
    },
  };
}

/**
 * Where a sysctl file is neutralised: one in /etc (a link included, moved aside as the link) in its place; one another
 * package or the runtime owns (/usr/lib, /run) is masked by a copy of the same name in /etc/sysctl.d.
 */
export function sysctlReplacement(f: ConfigFile): { path: string; moveAside: boolean } {
  return f.path.startsWith('/etc/')
    ? { path: f.path, moveAside: true }
    : { path: `/etc/sysctl.d/${base(f.path)}`, moveAside: false };
}

/**
 * Where a unit drop-in is neutralised: one in /etc in its place; one under /run or /usr/lib is masked by a drop-in of
 * the same name in the matching /etc/systemd/system directory (systemd reads one file per name, /etc's first).
 */
export function unitDropInReplacement(f: ConfigFile): { path: string; moveAside: boolean } {
  if (f.path.startsWith('/etc/')) return { path: f.path, moveAside: true };
  return { path: `/etc/systemd/system/${f.path.replace(/^.*\/systemd\/system\//, '')}`, moveAside: false };
}

/** The directories systemd reads drop-ins of `unit` from (`<unit>.d`, and `service.d` for every service). */
export function unitDropInPaths(unit: string): string {
  return ['/etc/systemd/system', '/run/systemd/system', '/usr/local/lib/systemd/system', '/usr/lib/systemd/system']
    .flatMap((d) => [`${d}/${unit}.d/*.conf`, `${d}/service.d/*.conf`])
    .join(' ');
}
