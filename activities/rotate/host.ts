/**
 * A secret's versions on the host. The live file is what the stack reads (`<installDir>/secrets/<name>`, bind-mounted
 * into the gateway); every version rotation knows about is a file of its own beside steward's release bookkeeping:
 *
 *   <installDir>/.steward/secrets/<name>/<version id>    0600, the gateway's uid; directories 0700 root
 *
 * A pending version is written there next to the current one, and the live file switches to it. For a secret the
 * gateway reloads, in place: the bind mount holds the file's inode, so only an in-place write reaches the running
 * container; the write does not truncate first, so the file is never empty, and a value as long as the old one (every
 * generated version) replaces it in one write. For one it reads on a restart, by a rename, so the live file is one
 * whole version at every moment and the container keeps its value until it restarts. Scripts print hashes and states
 * only, never a value; the values of generated secrets never leave the host.
 */
import { secretDeliveries, stackLayout } from '../../model/render/stack';
import { VERSION_ID } from '../../model/rotation';
import type { Spec } from '../../model/schema';
import { fingerprintScript, generateScript, parseFingerprint } from '../deploy/secrets';
import { secretRedactor } from '../redact';
import type { GeneratedFingerprint } from '../secrets-store';
import { UnexpectedHostOutput } from '../host/errors';
import type { HostSession } from '../host/session';
import { run } from '../host/shell';

export const SECRET_MODE = '0600';

export interface SecretPaths {
  /** The file the stack reads. */
  readonly live: string;
  /** Where the versions are kept. */
  readonly versionsDir: string;
}

export function secretPaths(spec: Spec, secret: string): SecretPaths {
  const layout = stackLayout(spec);
  return { live: `${layout.secretsDir}/${secret}`, versionsDir: `${layout.releaseDir}/secrets/${secret}` };
}

export function versionPath(spec: Spec, secret: string, id: string): string {
  if (!VERSION_ID.test(id)) throw new Error(`not a version id: ${id}`);
  return `${secretPaths(spec, secret).versionsDir}/${id}`;
}

/** What the host holds of a secret: the live file's hash, each version file's hash, and what the gateway reads. */
export interface ObservedSecret {
  /** SHA-256 of the live file; undefined when it is missing or empty. */
  readonly live?: string;
  readonly liveOwner?: string;
  readonly liveMode?: string;
  /** version id → SHA-256 of its file. */
  readonly versions: ReadonlyMap<string, string>;
  /** SHA-256 of the value the running gateway container reads; undefined when no container answers. */
  readonly consumer?: string;
  /** The live file's and the version files' fingerprints with their edges (for redaction). */
  readonly fingerprints: GeneratedFingerprint[];
}

const SHA = /^[0-9a-f]{64}$/;

/** The command that prints the SHA-256 of what the gateway container reads for `secret` (file or variable). */
function consumerProbe(spec: Spec, secret: string): string {
  const delivery = secretDeliveries(spec).find((d) => d.secret === secret);
  const id =
    'id=$(docker ps -q --filter label=com.docker.compose.project=openclaw --filter label=com.docker.compose.service=gateway | head -n1)';
  if (!delivery) return 'echo none';
  const read =
    delivery.kind === 'file'
      ? `docker exec "$id" cat ${run(delivery.path)}`
      : `docker exec "$id" printenv ${run(delivery.variable)}`;
  // The value stays in the pipe on the host; only its hash is printed. A failing read prints `none`.
  return `${id}; if [ -z "$id" ]; then echo none; elif v=$(${read} 2>/dev/null); then printf '%s' "$v" | sha256sum | cut -c1-64; else echo none; fi`;
}

/**
 * Observes the live file, the version files and the gateway's view in one round trip. Changes nothing.
 * @throws UnexpectedHostOutput when the host prints something unexpected.
 */
export async function observeSecret(session: HostSession, spec: Spec, secret: string): Promise<ObservedSecret> {
  const paths = secretPaths(spec, secret);
  const r = await session.probe({
    live: `if [ -s ${run(paths.live)} ]; then stat -c '%u:%g %a' ${run(paths.live)}; ${fingerprintScript(run(paths.live))}; else echo absent; fi`,
    versions: `if [ -d ${run(paths.versionsDir)} ]; then for f in ${run(paths.versionsDir)}/*; do [ -f "$f" ] || continue; printf '%s ' "\${f##*/}"; ${fingerprintScript('"$f"')}; done; fi`,
    consumer: consumerProbe(spec, secret),
  });
  const host = session.target.name;
  const liveLines = r.live.out.trim().split('\n');
  let live: string | undefined;
  let liveOwner: string | undefined;
  let liveMode: string | undefined;
  const fingerprints: GeneratedFingerprint[] = [];
  if (liveLines[0] !== 'absent') {
    const m = /^(\d+:\d+) ([0-7]{1,4})$/.exec(liveLines[0] ?? '');
    const f = parseFingerprint(liveLines[1] ?? '');
    if (!m || !f) throw new UnexpectedHostOutput(host, `unexpected state of secret ${secret}`);
    [live, liveOwner, liveMode] = [f.sha256, m[1], m[2]!.padStart(4, '0')];
    fingerprints.push(f);
  }
  const versions = new Map<string, string>();
  for (const line of r.versions.out.trim().split('\n').filter(Boolean)) {
    const [id = '', ...hashes] = line.split(' ');
    const f = parseFingerprint(hashes.join(' '));
    // Temp files of an interrupted write (`<id>.steward.XXXXXX`) are not versions.
    if (VERSION_ID.test(id) && f) {
      versions.set(id, f.sha256);
      fingerprints.push(f);
    }
  }
  const generate = spec.secrets[secret]?.generate;
  if (generate) for (const f of fingerprints) secretRedactor.rememberFingerprint(secret, f.sha256, generate, f);
  const consumer = r.consumer.out.trim();
  return {
    ...(live ? { live, liveOwner, liveMode } : {}),
    versions,
    ...(SHA.test(consumer) ? { consumer } : {}),
    fingerprints,
  };
}

/** Makes sure the versions directory exists (root, 0700). */
function versionsDirScript(spec: Spec, secret: string): string {
  const { versionsDir } = secretPaths(spec, secret);
  const parent = versionsDir.slice(0, versionsDir.lastIndexOf('/'));
  return `install -d -m 0700 ${run(parent)} ${run(versionsDir)}`;
}

/**
 * Keeps the live file as version `id` (a copy made by rename, so it is whole or absent), unless that file exists.
 * Returns its hash.
 */
export async function keepLiveAs(session: HostSession, spec: Spec, secret: string, id: string): Promise<string> {
  const { live } = secretPaths(spec, secret);
  const f = versionPath(spec, secret, id);
  const r = await session.check(
    [
      'set -eu',
      'umask 077',
      versionsDirScript(spec, secret),
      `f=${run(f)}`,
      `if [ ! -f "$f" ]; then t=$(mktemp "$f.steward.XXXXXX"); trap 'rm -f "$t"' EXIT; cp -p ${run(live)} "$t"; mv -f "$t" "$f"; trap - EXIT; fi`,
      'sha256sum < "$f" | cut -c1-64',
    ].join('\n'),
    { label: `keep ${secret} as version ${id}` },
  );
  return parseSha(session, r.stdout, secret);
}

/**
 * Generates version `id` on the host unless its file exists; the value never leaves the host. Returns its
 * fingerprint (hash and edges), which the worker's redactor learns.
 */
export async function generateVersion(
  session: HostSession,
  spec: Spec,
  secret: string,
  id: string,
): Promise<GeneratedFingerprint> {
  const generate = spec.secrets[secret]?.generate;
  if (!generate) throw new Error(`secret ${secret} is not generated`);
  const f = versionPath(spec, secret, id);
  const r = await session.check(
    [
      'set -eu',
      versionsDirScript(spec, secret),
      `if [ ! -f ${run(f)} ]; then (`,
      generateScript(f, generate.length, generate.alphabet, spec.stack.uid, spec.stack.gid),
      `); fi`,
      fingerprintScript(run(f)),
    ].join('\n'),
    { label: `generate ${secret} version ${id}` },
  );
  const made = parseFingerprint(r.stdout);
  if (!made) throw new UnexpectedHostOutput(session.target.name, `unexpected fingerprint of ${secret} version ${id}`);
  secretRedactor.rememberFingerprint(secret, made.sha256, generate, made);
  return made;
}

/** Writes version `id` of an external secret (the value on SSH stdin, never on a command line). */
export async function writeVersion(
  session: HostSession,
  spec: Spec,
  secret: string,
  id: string,
  value: string,
): Promise<void> {
  await session.check(versionsDirScript(spec, secret), { label: `versions of ${secret}` });
  await session.writeFile(versionPath(spec, secret, id), value, `${spec.stack.uid}:${spec.stack.gid}`, SECRET_MODE);
}

/**
 * Switches the live file to version `id`. `inPlace` (a secret the gateway reloads or restarts in place onto): rewritten
 * in place when it exists, so the container's mount sees it at once. Otherwise by rename (a copy beside it, then
 * `mv`), for a container that is recreated and mounts the path afresh. Owner and mode come with the version file. A symlink or other
 * non-file in its place is refused. Returns the live file's hash afterwards.
 */
export async function switchLive(
  session: HostSession,
  spec: Spec,
  secret: string,
  id: string,
  inPlace: boolean,
): Promise<string> {
  const { live } = secretPaths(spec, secret);
  const layout = stackLayout(spec);
  const r = await session.check(
    [
      'set -eu',
      'umask 077',
      `f=${run(versionPath(spec, secret, id))}`,
      `p=${run(live)}`,
      `[ -f "$f" ] || { echo "version file $f is missing" >&2; exit 3; }`,
      `install -d -m 0700 ${run(layout.secretsDir)}`,
      `if [ -L "$p" ] || { [ -e "$p" ] && [ ! -f "$p" ]; }; then echo "$p is not a regular file" >&2; exit 4; fi`,
      ...(inPlace
        ? [
            'if [ -f "$p" ]; then',
            '  cat "$f" 1<> "$p"',
            '  truncate -s "$(stat -c %s "$f")" "$p"',
            '  chown --reference="$f" "$p"',
            '  chmod --reference="$f" "$p"',
            'else',
          ]
        : ['{']),
      '  t=$(mktemp "$p.steward.XXXXXX")',
      `  trap 'rm -f "$t"' EXIT`,
      '  cp -p "$f" "$t"',
      '  mv -f "$t" "$p"',
      '  trap - EXIT',
      inPlace ? 'fi' : '}',
      'sha256sum < "$p" | cut -c1-64',
    ].join('\n'),
    { label: `switch ${secret} to version ${id}` },
  );
  return parseSha(session, r.stdout, secret);
}

/** Removes every version file of `secret` but `keep`, and leftovers of interrupted writes. Returns what it removed. */
export async function removeVersions(
  session: HostSession,
  spec: Spec,
  secret: string,
  keep: readonly string[],
): Promise<string[]> {
  const { versionsDir } = secretPaths(spec, secret);
  for (const id of keep) if (!VERSION_ID.test(id)) throw new Error(`not a version id: ${id}`);
  const r = await session.check(
    [
      'set -eu',
      `d=${run(versionsDir)}`,
      '[ -d "$d" ] || exit 0',
      `keep=${run(` ${keep.join(' ')} `)}`,
      'for f in "$d"/* "$d"/.[!.]*; do',
      '  [ -e "$f" ] || continue',
      '  n=${f##*/}',
      '  case "$keep" in *" $n "*) continue ;; esac',
      '  rm -f "$f"',
      '  echo "$n"',
      'done',
    ].join('\n'),
    { label: `prune versions of ${secret}` },
  );
  return r.stdout
    .trim()
    .split('\n')
    .filter((n) => VERSION_ID.test(n));
}

function parseSha(session: HostSession, out: string, secret: string): string {
  const sha = out.trim().split('\n').pop() ?? '';
  if (!SHA.test(sha)) throw new UnexpectedHostOutput(session.target.name, `no hash for a version of ${secret}`);
  return sha;
}
