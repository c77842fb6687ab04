/**
 * The SSH baseline (dev-sec ssh-baseline style): one sshd drop-in owned by steward, the pre-login banner, strong
 * DH moduli only, an ed25519 host key; and the controls that read the effective values back with `sshd -T`.
 *
 * The drop-in wins over the main file because Debian's /etc/ssh/sshd_config includes sshd_config.d/*.conf on its
 * first line and sshd keeps the FIRST value it reads for each single-valued keyword; `00-` sorts it before other
 * drop-ins such as cloud-init's `50-cloud-init.conf`. List keywords (Port, HostKey, AllowUsers, AllowGroups)
 * accumulate instead: a value set elsewhere as well shows up in `sshd -T` and fails its control.
 */
import type { Change, ControlResult } from '../../model/report';
import type { Spec } from '../../model/schema';
import { CommandFailed, UnexpectedHostOutput, UnsupportedHost } from '../host/errors';
import type { HostSession, ProbeResult } from '../host/session';
import { run } from '../host/shell';
import { fileResource, type ObservedPath } from '../resources/files';
import type { Resource } from '../resources/resource';
import {
  overridesResource,
  sshdOptionOverrides,
  sshdOverrides,
  type SshdSetting,
  unitDropInPaths,
  sshUnitOverrides,
  unitDropInReplacement,
} from './overrides';

/** steward's sshd drop-in. */
export const SSHD_DROP_IN = '/etc/ssh/sshd_config.d/00-steward.conf';
/** The only host key sshd offers after hardening. */
export const SSH_HOST_KEY = '/etc/ssh/ssh_host_ed25519_key';
const SSHD_CONFIG = '/etc/ssh/sshd_config';
/** Sourced by ssh.service: its SSHD_OPTS go on sshd's command line. */
const SSH_DEFAULTS = '/etc/default/ssh';
const DROP_IN_DIR = '/etc/ssh/sshd_config.d';
const ISSUE_NET = '/etc/issue.net';
const MODULI = '/etc/ssh/moduli';
/** moduli's size column is the bit length minus one: 3071 is a 3072-bit group. */
const MIN_MODULUS_SIZE = 3071;
/** Exit code of the drop-in validator when sshd rejects the candidate (EX_CONFIG): retrying cannot help. */
const REJECTED = 78;

/** One sshd_config line and how `sshd -T` prints it back. */
interface Directive {
  readonly keyword: string;
  /** As written in the drop-in; an empty value is not written (and expected absent from `sshd -T`). */
  readonly value: string;
  /** How `sshd -T` prints the value when it differs from `value`. */
  readonly effective?: string;
  /** False when `sshd -T` does not print it, or another control covers it. */
  readonly checked?: false;
}

const yesNo = (b: boolean) => (b ? 'yes' : 'no');

/** The baseline in drop-in order, grouped under comment headings. */
function baseline(spec: Spec): { readonly heading: string; readonly directives: readonly Directive[] }[] {
  const s = spec.ssh;
  return [
    {
      heading: 'Listener and host key: ed25519 only',
      directives: [
        { keyword: 'Port', value: String(s.port) },
        { keyword: 'HostKey', value: SSH_HOST_KEY, checked: false },
      ],
    },
    {
      heading: 'Authentication: public keys only, listed users only',
      directives: [
        {
          keyword: 'PermitRootLogin',
          value: s.permitRootLogin,
          ...(s.permitRootLogin === 'prohibit-password' ? { effective: 'without-password' } : {}),
        },
        { keyword: 'PubkeyAuthentication', value: 'yes' },
        { keyword: 'AuthenticationMethods', value: 'publickey' },
        { keyword: 'PasswordAuthentication', value: 'no' },
        { keyword: 'KbdInteractiveAuthentication', value: 'no' },
        { keyword: 'PermitEmptyPasswords', value: 'no' },
        { keyword: 'HostbasedAuthentication', value: 'no' },
        { keyword: 'IgnoreRhosts', value: 'yes' },
        { keyword: 'StrictModes', value: 'yes' },
        { keyword: 'PermitUserEnvironment', value: 'no' },
        { keyword: 'MaxAuthTries', value: String(s.maxAuthTries) },
        { keyword: 'LoginGraceTime', value: String(s.loginGraceTime) },
        { keyword: 'AllowUsers', value: (s.allowUsers ?? [s.opsUser]).join(' ') },
        { keyword: 'AllowGroups', value: s.allowGroups.join(' ') },
      ],
    },
    {
      heading: 'Sessions and forwarding',
      directives: [
        { keyword: 'ClientAliveInterval', value: String(s.clientAliveInterval) },
        { keyword: 'ClientAliveCountMax', value: String(s.clientAliveCountMax) },
        // Dead peers are found by the encrypted client-alive messages above, not by spoofable TCP keepalives.
        { keyword: 'TCPKeepAlive', value: 'no' },
        { keyword: 'AllowTcpForwarding', value: yesNo(s.allowTcpForwarding) },
        { keyword: 'AllowAgentForwarding', value: yesNo(s.allowAgentForwarding) },
        { keyword: 'X11Forwarding', value: yesNo(s.x11Forwarding) },
        { keyword: 'PermitTunnel', value: 'no' },
        { keyword: 'GatewayPorts', value: 'no' },
      ],
    },
    {
      heading: 'Algorithms',
      directives: [
        { keyword: 'KexAlgorithms', value: s.kexAlgorithms.join(',') },
        { keyword: 'Ciphers', value: s.ciphers.join(',') },
        { keyword: 'MACs', value: s.macs.join(',') },
      ],
    },
    {
      heading: 'Logging and what the server tells strangers',
      directives: [
        { keyword: 'LogLevel', value: 'VERBOSE' },
        { keyword: 'Banner', value: s.banner.trim() ? ISSUE_NET : 'none' },
        { keyword: 'DebianBanner', value: 'no', checked: false },
        { keyword: 'PrintMotd', value: 'no' },
        { keyword: 'PrintLastLog', value: 'yes' },
        { keyword: 'UseDNS', value: 'no' },
        { keyword: 'Compression', value: 'no' },
      ],
    },
  ];
}

/** sshd keywords that accumulate across files instead of the first value winning. */
const LIST_KEYWORDS = new Set(['Port', 'HostKey', 'AllowUsers', 'AllowGroups']);

/** Every keyword the baseline sets, with its value: what a foreign file must not override. */
export function sshdSettings(spec: Spec): SshdSetting[] {
  return baseline(spec)
    .flatMap((s) => s.directives)
    .filter((d) => d.value !== '')
    .map((d) => ({ keyword: d.keyword, value: d.value, ...(LIST_KEYWORDS.has(d.keyword) ? { list: true } : {}) }));
}

/** Foreign sshd lines that win over the drop-in (read before it, in a Match block, or adding to a list keyword). */
export function sshdOverridesResource(spec: Spec, host: string): Resource {
  return overridesResource(
    {
      id: 'overrides:sshd',
      paths: `${SSHD_CONFIG} ${DROP_IN_DIR}/*`,
      find: (files) => sshdOverrides(files, SSHD_CONFIG, SSHD_DROP_IN, sshdSettings(spec)),
    },
    host,
  );
}

/**
 * Foreign options on sshd's command line (/etc/default/ssh's SSHD_OPTS) and drop-ins that change how ssh.service
 * starts sshd. A running sshd keeps its command line across a reload, so a change here restarts it (open sessions
 * stay); the SSH change's activation then waits until it listens again.
 */
export function sshdServiceOverridesResource(spec: Spec, host: string): Resource {
  return overridesResource(
    {
      id: 'overrides:sshd-service',
      paths: `${SSH_DEFAULTS} ${unitDropInPaths('ssh.service')}`,
      find: (files) => [
        ...sshdOptionOverrides(files, SSH_DEFAULTS, sshdSettings(spec)),
        ...sshUnitOverrides(files.filter((f) => f.path !== SSH_DEFAULTS)),
      ],
      replacement: unitDropInReplacement,
      afterApply: 'systemctl daemon-reload && systemctl restart ssh',
    },
    host,
  );
}

/**
 * The drop-in /etc/ssh/sshd_config.d/00-steward.conf for `spec`. Pure.
 *
 * AllowUsers defaults to the ops user; with AllowGroups set too, sshd admits only users matching both.
 * Only the ed25519 host key is offered (see {@link sshResources} for the pinning guard).
 */
export function renderSshdConfig(spec: Spec): string {
  const sections = baseline(spec).map(({ heading, directives }) => {
    const lines = directives.filter((d) => d.value !== '').map((d) => `${d.keyword} ${d.value}`);
    return [`# ${heading}`, ...lines].join('\n');
  });
  return [
    '# Managed by steward (harden): the SSH baseline. Local edits are reverted; change ssh in steward.yaml instead.',
    '# sshd keeps the first value it reads and sshd_config includes this directory first, so these settings win.',
    '',
    sections.join('\n\n'),
    '',
  ].join('\n');
}

/**
 * Validator run by `writeFile` on the candidate drop-in (its path is `$1`; the temp name does not match the Include
 * glob). It copies the drop-in directory with the candidate in place of the live drop-in, points a copy of the main
 * config at it, and runs `sshd -t` on that: the candidate is tested together with everything sshd will read.
 * Exits {@link REJECTED} with sshd's complaint (paths mapped back to the real ones) when the result is invalid.
 */
const VALIDATE_DROP_IN = [
  'set -eu',
  'candidate=$1',
  `dir=${run(DROP_IN_DIR)} live=${run(SSHD_DROP_IN)} main=${run(SSHD_CONFIG)}`,
  'tmp=$(mktemp -d)',
  `trap 'rm -rf "$tmp"' EXIT`,
  'mkdir "$tmp/d"',
  'for f in "$dir"/*.conf; do if [ -f "$f" ] && [ "$f" != "$live" ]; then cp "$f" "$tmp/d/"; fi; done',
  'cp "$candidate" "$tmp/d/${live##*/}"',
  `sed -E "s#^([[:space:]]*[Ii][Nn][Cc][Ll][Uu][Dd][Ee][[:space:]]+)(/etc/ssh/)?sshd_config\\.d/#\\1$tmp/d/#" "$main" > "$tmp/sshd_config"`,
  'if ! grep -qF "$tmp/d/" "$tmp/sshd_config"; then',
  '  echo "$main does not include $dir/*.conf: the steward drop-in would have no effect" >&2',
  `  exit ${REJECTED}`,
  'fi',
  'if ! out=$(sshd -t -f "$tmp/sshd_config" 2>&1); then',
  `  printf '%s\\n' "$out" | sed "s#$tmp/d/\${live##*/}#$live (candidate)#g; s#$tmp/d/#$dir/#g; s#$tmp/sshd_config#$main#g" >&2`,
  `  exit ${REJECTED}`,
  'fi',
].join('\n');

/** The drop-in, written only after the full configuration with it passes `sshd -t`. */
function dropInResource(spec: Spec, host: string): Resource<ObservedPath> {
  const file = fileResource(
    {
      path: SSHD_DROP_IN,
      content: renderSshdConfig(spec),
      owner: 'root',
      group: 'root',
      mode: '0600',
      validate: ['sh', '-c', VALIDATE_DROP_IN, 'steward-sshd-validate'],
    },
    host,
  );
  return {
    ...file,
    apply: async (session, observed, changes) => {
      try {
        await file.apply(session, observed, changes);
      } catch (err) {
        if (err instanceof CommandFailed && err.exitCode === REJECTED) {
          throw new CommandFailed(host, `sshd -t with the new ${SSHD_DROP_IN}`, err.exitCode, err.stderr, false);
        }
        throw err;
      }
    },
  };
}

type ObservedHostKey =
  { readonly exists: false } | { readonly exists: true; readonly ownerMode: string; readonly type: string };

/** The ed25519 host key: generated when missing, root:root 0600. A key of another type there is left to the operator. */
function hostKeyResource(host: string): Resource<ObservedHostKey> {
  const id = `hostkey:${SSH_HOST_KEY}`;
  return {
    id,
    probe: `if [ -e ${run(SSH_HOST_KEY)} ]; then ${run('stat', '-c', '%U:%G %a', SSH_HOST_KEY)}; ${run('ssh-keygen', '-lf', SSH_HOST_KEY)} 2>&1; else echo absent; fi`,
    parse: ({ out }) => {
      const [stat = '', fp = ''] = out.trim().split('\n');
      if (stat === 'absent') return { exists: false };
      const m = /^(\S+:\S+) ([0-7]{1,4})$/.exec(stat);
      const t = /^\d+ \S+ (?:.* )?\((\S+)\)$/.exec(fp.trim());
      if (!m || !t) throw new UnexpectedHostOutput(host, `cannot read ${SSH_HOST_KEY}: ${JSON.stringify(out.trim())}`);
      return { exists: true, ownerMode: `${m[1]} ${m[2]!.padStart(4, '0')}`, type: t[1]! };
    },
    diff: (o): Change[] => {
      if (!o.exists) return [{ resource: id, action: 'create', after: { type: 'ED25519' } }];
      if (o.type !== 'ED25519') {
        throw new UnexpectedHostOutput(host, `${SSH_HOST_KEY} holds a ${o.type} key, not ed25519; move it away first`);
      }
      const want = 'root:root 0600';
      return o.ownerMode === want ? [] : [{ resource: id, action: 'update', before: o.ownerMode, after: want }];
    },
    apply: async (session, o) => {
      const create = o.exists
        ? []
        : [
            run('rm', '-f', `${SSH_HOST_KEY}.pub`),
            run('ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', SSH_HOST_KEY),
          ];
      await session.check(
        ['set -e', ...create, run('chown', 'root:root', SSH_HOST_KEY), run('chmod', '0600', SSH_HOST_KEY)].join('\n'),
        { label: `ensure ${SSH_HOST_KEY}` },
      );
    },
  };
}

/** Counts moduli lines (comments aside) smaller than 3072 bits; `absent` when there is no moduli file. */
const SMALL_MODULI_PROBE = `if [ -f ${run(MODULI)} ]; then awk '$1 !~ /^#/ && NF >= 7 && $5 < ${MIN_MODULUS_SIZE} { n++ } END { print n + 0 }' ${run(MODULI)}; else echo absent; fi`;

function parseSmallModuli(host: string, { out }: ProbeResult): number | 'absent' {
  const line = out.trim();
  if (line === 'absent') return line;
  if (!/^\d+$/.test(line)) throw new UnexpectedHostOutput(host, `unexpected moduli count: ${JSON.stringify(line)}`);
  return Number(line);
}

/** /etc/ssh/moduli without the groups under 3072 bits that DH group exchange could otherwise pick. */
function moduliResource(host: string): Resource<number | 'absent'> {
  const id = `moduli:${MODULI}`;
  return {
    id,
    probe: SMALL_MODULI_PROBE,
    parse: (r) => parseSmallModuli(host, r),
    diff: (n) =>
      n === 'absent' || n === 0
        ? []
        : [{ resource: id, action: 'update', before: { smallModuli: n }, after: { smallModuli: 0 } }],
    apply: async (session) => {
      const script = [
        'set -eu',
        `f=${run(MODULI)}`,
        't=$(mktemp "$f.steward.XXXXXX")',
        `trap 'rm -f "$t"' EXIT`,
        `awk '$1 ~ /^#/ || NF < 7 || $5 >= ${MIN_MODULUS_SIZE}' "$f" > "$t"`,
        'chown root:root "$t"',
        'chmod 0644 "$t"',
        'mv -f "$t" "$f"',
        'trap - EXIT',
      ].join('\n');
      await session.check(script, { label: `remove small moduli from ${MODULI}` });
    },
  };
}

/**
 * The SSH baseline's resources for `host`, in apply order: ed25519 host key, /etc/issue.net (when the banner is
 * not empty), moduli without groups under 3072 bits, and the drop-in last (its validation loads the host key).
 * The drop-in is validated with the full configuration before it replaces the old one; a candidate sshd rejects
 * throws a non-retryable CommandFailed and leaves the old file in place. Nothing is live until {@link SSH_ACTIVATE}.
 * @throws UnsupportedHost when the spec pins a non-ed25519 host key for `host`: after hardening the host
 *   offers only ed25519, so steward could no longer verify it. Pin the host's ed25519 key first.
 */
export function sshResources(spec: Spec, host: string): Resource[] {
  const pinned = spec.hosts.find((h) => h.name === host)?.hostKey;
  const pinnedType = pinned?.split(' ')[0];
  if (pinnedType !== undefined && pinnedType !== 'ssh-ed25519') {
    throw new UnsupportedHost(
      host,
      `hosts[].hostKey pins an ${pinnedType} key, but the SSH baseline offers only the ed25519 host key: ` +
        `pin the host's ed25519 key instead (ssh-keyscan -t ed25519)`,
    );
  }
  const banner = spec.ssh.banner.trim();
  return [
    hostKeyResource(host),
    ...(banner
      ? [fileResource({ path: ISSUE_NET, content: `${banner}\n`, owner: 'root', group: 'root', mode: '0644' }, host)]
      : []),
    moduliResource(host),
    sshdOverridesResource(spec, host),
    sshdServiceOverridesResource(spec, host),
    dropInResource(spec, host),
  ];
}

/**
 * Makes the written configuration live: `sshd -t`, then `systemctl reload ssh` (SIGHUP: sshd re-executes itself;
 * open sessions are kept). sshd is briefly not listening while it re-executes, so the script waits until new
 * listening sockets cover every configured port: a login right after it returns reaches the new configuration.
 * With a socket-activated sshd (ssh.socket, Ubuntu 22.10+) systemd holds the listener, so there is nothing to wait
 * for; a changed Port then also needs the socket regenerated, which this script does not do (not tested here).
 * Fails (non-zero) when the configuration is invalid or sshd does not listen again within 10 s. Runs in a subshell,
 * so it can be embedded in a larger script (the commit-confirm revert). Safe to repeat.
 */
export const SSH_ACTIVATE = `(
set -eu
sshd -t
if systemctl is-active --quiet ssh.socket; then systemctl try-reload-or-restart ssh; exit 0; fi
listening() { ss -Hltnpe | awk '/"sshd"/ { p = $4; sub(/.*:/, "", p); for (i = 5; i <= NF; i++) if ($i ~ /^ino:/) print p, substr($i, 5) }'; }
before=" $(listening | awk '{ print $2 }' | tr '\\n' ' ')"
systemctl reload ssh
ports=$(sshd -T | awk '$1 == "port" { print $2 }' | tr '\\n' ' ')
tries=0
until listening | awk -v before="$before" -v ports="$ports" '
  { if (index(before, " " $2 " ")) stale = 1; up[$1] = 1 }
  END { n = split(ports, p, " "); for (i = 1; i <= n; i++) if (!(p[i] in up)) exit 1; exit stale }'; do
  tries=$((tries + 1))
  if [ "$tries" -ge 100 ]; then echo "sshd is not listening on port(s) $ports 10 s after reload" >&2; exit 1; fi
  sleep 0.1
done
)`;

/** Effective sshd settings: lowercase keyword → every value printed for it, in order. */
export type SshdSettings = ReadonlyMap<string, readonly string[]>;

/** `sshd -T` with its stdout as is and its stderr lines prefixed `! ` (the probe merges the two streams). */
const SSHD_T_PROBE = `e=$(mktemp) && { sshd -T 2>"$e"; c=$?; sed 's/^/! /' "$e"; rm -f "$e"; exit "$c"; }`;

/**
 * Parses `sshd -T` output. Pure.
 * @throws CommandFailed (non-retryable) when sshd -T failed: the live configuration is invalid.
 * @throws UnexpectedHostOutput when the output is not sshd -T's.
 */
export function parseSshdT(host: string, { out, code }: ProbeResult): SshdSettings {
  const lines = out
    .split('\n')
    .map((l) => l.replace(/\r$/, ''))
    .filter((l) => l.trim() !== '');
  const diagnostics = lines.filter((l) => l.startsWith('! ')).map((l) => l.slice(2));
  if (code !== 0) throw new CommandFailed(host, 'sshd -T', code, diagnostics.join('\n') || out, false);
  const settings = new Map<string, string[]>();
  for (const line of lines) {
    if (line.startsWith('! ')) continue;
    const m = /^([a-z][a-z0-9]*)(?: (.*))?$/.exec(line);
    if (!m) throw new UnexpectedHostOutput(host, `unexpected sshd -T line: ${JSON.stringify(line.slice(0, 120))}`);
    const values = settings.get(m[1]!) ?? [];
    values.push(m[2] ?? '');
    settings.set(m[1]!, values);
  }
  for (const key of ['port', 'permitrootlogin', 'passwordauthentication', 'pubkeyauthentication']) {
    if (!settings.has(key)) throw new UnexpectedHostOutput(host, `sshd -T printed no "${key}": not sshd -T output`);
  }
  return settings;
}

const NONE = '(unset)';

/** Pure: one control per checked baseline directive, `ssh.<keyword>` in sshd -T's lowercase. */
export function compareSshd(spec: Spec, effective: SshdSettings): ControlResult[] {
  return baseline(spec)
    .flatMap((section) => section.directives)
    .filter((d) => d.checked !== false)
    .map((d): ControlResult => {
      const key = d.keyword.toLowerCase();
      const expected = d.effective ?? d.value;
      const observed = (effective.get(key) ?? []).join(' ');
      return {
        control: `ssh.${key}`,
        expected: expected || NONE,
        observed: observed || NONE,
        status: observed === expected ? 'pass' : 'fail',
      };
    });
}

/** Each host key sshd offers, with `ssh-keygen -l`'s bits and type. */
const HOST_KEYS_PROBE = `sshd -T 2>/dev/null | awk '$1 == "hostkey" { print $2 }' | while read -r k; do printf '%s %s\\n' "$k" "$(ssh-keygen -lf "$k" 2>&1 | head -n 1)"; done`;

/** Pure: the offered host keys must be exactly the ed25519 key. */
export function hostKeysControl({ out }: ProbeResult): ControlResult {
  const keys = out
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const m = /^(\S+) (\d+) \S+ (?:.* )?\((\S+)\)$/.exec(line);
      return m ? `${m[1]} (${m[3]} ${m[2]})` : `${line.split(' ')[0]} (unreadable)`;
    });
  const expected = `${SSH_HOST_KEY} (ED25519 256)`;
  const observed = keys.join(', ') || NONE;
  return { control: 'ssh.hostkeys', expected, observed, status: observed === expected ? 'pass' : 'fail' };
}

/** Pure: no DH group-exchange modulus under 3072 bits. */
export function moduliControl(host: string, result: ProbeResult): ControlResult {
  const n = parseSmallModuli(host, result);
  const base = { control: 'ssh.moduli', expected: 'no moduli under 3072 bits' };
  if (n === 'absent') {
    return { ...base, observed: `no ${MODULI}`, status: 'pass', note: 'sshd uses its built-in groups' };
  }
  return { ...base, observed: n === 0 ? base.expected : `${n} moduli under 3072 bits`, status: n ? 'fail' : 'pass' };
}

/**
 * Reads the effective sshd configuration (`sshd -T`), the offered host keys and the moduli in one round trip and
 * checks every baseline value against `spec`. Read-only; safe to retry. Values set in Match blocks are not seen
 * (sshd -T without -C prints the global values).
 * @throws CommandFailed when sshd -T fails; UnexpectedHostOutput when the host prints something unexpected.
 */
export async function sshControls(session: HostSession, spec: Spec): Promise<ControlResult[]> {
  const host = session.target.name;
  const p = await session.probe(
    { effective: SSHD_T_PROBE, hostKeys: HOST_KEYS_PROBE, moduli: SMALL_MODULI_PROBE },
    { label: 'sshd -T' },
  );
  return [
    ...compareSshd(spec, parseSshdT(host, p.effective)),
    hostKeysControl(p.hostKeys),
    moduliControl(host, p.moduli),
  ];
}
