/**
 * Secret files on the host: generated ones are made there and never leave it; external ones are read by the worker
 * (env var, file or command) and written over SSH stdin. Values never appear in changes, errors or logs: changes
 * name the secret and its owner/mode only, and equality is decided by hashes that stay inside the activity.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Change, Mode } from '../../model/report';
import { secretDeliveries, stackLayout } from '../../model/render/stack';
import type { Secret, Spec } from '../../model/schema';
import { HostError, UnexpectedHostOutput } from '../host/errors';
import type { HostSession } from '../host/session';
import { run } from '../host/shell';
import { EDGE_LENGTH, secretRedactor, type SecretShape } from '../redact';
import type { GeneratedFingerprint } from '../secrets-store';

/** An external secret's source gave nothing usable. The operator must supply it; retrying cannot help. */
export class SecretSourceUnavailable extends HostError {
  override readonly name = 'SecretSourceUnavailable';
  readonly retryable = false;
  constructor(host: string, secret: string, reason: string) {
    super(host, `secrets.${secret}: ${reason}`);
  }
}

const SECRET_MODE = '0600';

interface ObservedSecret {
  readonly state: 'absent' | 'empty' | 'present';
  readonly uid?: number;
  readonly gid?: number;
  readonly mode?: string;
  readonly sha256?: string;
  /** A generated value's fingerprint with its edges, for redaction. */
  readonly fingerprint?: GeneratedFingerprint;
}

const SHA = /^[0-9a-f]{64}$/;

/**
 * Shell printing `<sha256> <sha256 of the first EDGE_LENGTH bytes> <sha256 of the last ones>` of the file the shell
 * word `file` names: what redaction keeps of a generated value that never leaves its host.
 */
export function fingerprintScript(file: string): string {
  const hash = (read: string) => `"$(${read} < ${file} | sha256sum | cut -c1-64)"`;
  return `printf '%s %s %s\\n' ${hash('cat')} ${hash(`head -c ${EDGE_LENGTH}`)} ${hash(`tail -c ${EDGE_LENGTH}`)}`;
}

/** The fingerprint a {@link fingerprintScript} line holds; undefined unless it is three hashes. */
export function parseFingerprint(line: string): GeneratedFingerprint | undefined {
  const [sha256 = '', head = '', tail = '', ...rest] = line.trim().split(' ');
  return rest.length === 0 && [sha256, head, tail].every((h) => SHA.test(h)) ? { sha256, head, tail } : undefined;
}

/** The secrets the stack consumes, in a stable order. */
export function consumedSecrets(spec: Spec): string[] {
  return [...new Set(secretDeliveries(spec).map((d) => d.secret))].sort();
}

function secretPath(spec: Spec, name: string): string {
  return `${stackLayout(spec).secretsDir}/${name}`;
}

function probeSecret(path: string): string {
  return [
    `if [ ! -e ${run(path)} ]; then echo absent`,
    `elif [ ! -s ${run(path)} ]; then echo empty`,
    `else ${run('stat', '-c', '%u %g %a', path)}; ${fingerprintScript(run(path))}; fi`,
  ].join('; ');
}

function parseSecret(host: string, name: string, out: string): ObservedSecret {
  const [line = '', hashes = ''] = out.trim().split('\n');
  if (line === 'absent' || line === 'empty') return { state: line };
  const m = /^(\d+) (\d+) ([0-7]{1,4})$/.exec(line);
  const fingerprint = parseFingerprint(hashes);
  if (!m || !fingerprint) throw new UnexpectedHostOutput(host, `unexpected stat output for secret ${name}`);
  return {
    state: 'present',
    uid: Number(m[1]),
    gid: Number(m[2]),
    mode: m[3]!.padStart(4, '0'),
    sha256: fingerprint.sha256,
    fingerprint,
  };
}

/** Shortest external value accepted unless `secrets.<name>.minLength` says otherwise. */
export const MIN_EXTERNAL_LENGTH = 16;

/** Reads an external secret's value on the worker. Never logs or returns it anywhere but to the caller. */
export async function resolveExternal(host: string, name: string, secret: Secret): Promise<string> {
  const source = secret.external;
  if (!source) throw new SecretSourceUnavailable(host, name, 'is generated, not external');
  let value: string;
  if ('env' in source) {
    value = process.env[source.env] ?? '';
    if (!value)
      throw new SecretSourceUnavailable(host, name, `environment variable ${source.env} is not set on the worker`);
  } else if ('file' in source) {
    value = await readFile(source.file, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new SecretSourceUnavailable(host, name, `cannot read ${source.file}: ${err.code ?? err.message}`);
    });
  } else {
    const [cmd, ...args] = source.command;
    const out = await promisify(execFile)(cmd!, args, { timeout: 30_000, maxBuffer: 1 << 20 }).catch(
      (err: NodeJS.ErrnoException & { code?: unknown }) => {
        throw new SecretSourceUnavailable(host, name, `command ${cmd} failed (${String(err.code ?? 'error')})`);
      },
    );
    value = out.stdout;
  }
  value = value.replace(/\r?\n$/, '');
  if (!value) throw new SecretSourceUnavailable(host, name, 'the source gave an empty value');
  // Known to the worker from now on: any error that would carry it is scrubbed before it leaves an activity.
  secretRedactor.remember(name, value);
  if (/[\r\n\0]/.test(value)) throw new SecretSourceUnavailable(host, name, 'the value must be a single line');
  const min = secret.minLength ?? MIN_EXTERNAL_LENGTH;
  if (value.length < min) {
    throw new SecretSourceUnavailable(
      host,
      name,
      `the source gave ${value.length} characters; secrets.${name}.minLength is ${min}`,
    );
  }
  return value;
}

/**
 * Reads each consumed external secret's source — so the worker's redactor knows the value before a step that only
 * reads the host (a verification) reports what the host printed — and returns the values by name (drift compares
 * the host's files with them). A source that gives nothing is passed over.
 */
export async function rememberExternalSecrets(spec: Spec, host: string): Promise<Record<string, string>> {
  const external = consumedSecrets(spec).filter((n) => spec.secrets[n]?.external);
  const values = await Promise.all(
    external.map((n) => resolveExternal(host, n, spec.secrets[n]!).catch(() => undefined)),
  );
  return Object.fromEntries(external.flatMap((n, i) => (values[i] === undefined ? [] : [[n, values[i]]])));
}

/**
 * A script that generates a value on the host from /dev/urandom into `path` (temp file, then renamed), owned by
 * `uid:gid`, mode 0600. It prints nothing; the value never leaves the host.
 */
export function generateScript(
  path: string,
  length: number,
  alphabet: 'base62' | 'hex',
  uid: number,
  gid: number,
): string {
  const chars = alphabet === 'hex' ? '0-9a-f' : 'A-Za-z0-9';
  return [
    'set -eu',
    `p=${run(path)}`,
    'umask 077',
    't=$(mktemp "$p.steward.XXXXXX")',
    'trap \'rm -f "$t"\' EXIT',
    `LC_ALL=C tr -dc ${run(chars)} < /dev/urandom | head -c ${length} > "$t"`,
    `[ "$(wc -c < "$t")" -eq ${length} ]`,
    `chown ${uid}:${gid} "$t"`,
    `chmod ${SECRET_MODE} "$t"`,
    'mv -f "$t" "$p"',
    'trap - EXIT',
  ].join('\n');
}

/**
 * Where a generated value's fingerprint goes so that every later worker can redact it (the secret version store);
 * called in apply mode only.
 */
export type KeepFingerprints = (secret: string, shape: SecretShape, seen: GeneratedFingerprint) => Promise<void>;

/**
 * Makes every consumed secret exist on the host as a file owned by the gateway's uid/gid, mode 0600, and assembles
 * the gateway's env file from those files on the host itself. Generated secrets are created once and then kept
 * (rotation replaces them); external ones are rewritten when the source's value differs from the host's.
 */
export async function ensureSecrets(
  session: HostSession,
  spec: Spec,
  mode: Mode,
  keep?: KeepFingerprints,
): Promise<Change[]> {
  const host = session.target.name;
  const { uid, gid } = spec.stack;
  const names = consumedSecrets(spec);
  const layout = stackLayout(spec);
  const probes = Object.fromEntries(names.map((n, i) => [`s${i}`, probeSecret(secretPath(spec, n))]));
  const observed = await session.probe(probes);
  const changes: Change[] = [];

  for (const [i, name] of names.entries()) {
    const secret = spec.secrets[name]!;
    const path = secretPath(spec, name);
    const o = parseSecret(host, name, observed[`s${i}`]!.out);
    const learn = async (f: GeneratedFingerprint | undefined) => {
      if (!secret.generate || !f) return;
      secretRedactor.rememberFingerprint(name, f.sha256, secret.generate, f);
      if (mode === 'apply') await keep?.(name, secret.generate, f);
    };
    await learn(o.fingerprint);
    const resource = `secret:${name}`;
    const after = { owner: `${uid}:${gid}`, mode: SECRET_MODE };

    if (secret.generate) {
      if (o.state !== 'present') {
        changes.push({ resource, action: 'create', after: { ...after, generated: true } });
        if (mode === 'apply') {
          // The new value's fingerprint comes back in the same round trip; the value itself never leaves.
          const made = await session.check(
            [
              run('install', '-d', '-m', '0700', layout.secretsDir),
              generateScript(path, secret.generate.length, secret.generate.alphabet, uid, gid),
              fingerprintScript(run(path)),
            ].join('\n'),
            { label: `generate secret ${name}` },
          );
          const fingerprint = parseFingerprint(made.stdout.trim().split('\n').pop() ?? '');
          if (!fingerprint) throw new UnexpectedHostOutput(host, `unexpected fingerprint of generated secret ${name}`);
          await learn(fingerprint);
        }
        continue;
      }
    } else {
      const value = await resolveExternal(host, name, secret);
      const want = createHash('sha256').update(value).digest('hex');
      if (o.sha256 !== want) {
        changes.push({
          resource,
          action: o.state === 'present' ? 'update' : 'create',
          after: { ...after, source: sourceLabel(secret) },
        });
        if (mode === 'apply') {
          await session.check(run('install', '-d', '-m', '0700', layout.secretsDir), { label: 'secrets dir' });
          await session.writeFile(path, value, `${uid}:${gid}`, SECRET_MODE);
        }
        continue;
      }
    }
    if (o.uid !== uid || o.gid !== gid || o.mode !== SECRET_MODE) {
      changes.push({ resource, action: 'update', before: { owner: `${o.uid}:${o.gid}`, mode: o.mode }, after });
      if (mode === 'apply') {
        await session.check(`chown ${uid}:${gid} ${run(path)} && chmod ${SECRET_MODE} ${run(path)}`, {
          label: `secret ${name} owner`,
        });
      }
    }
  }

  changes.push(...(await ensureEnvFile(session, spec, mode)));
  return changes;
}

/** Where an external secret comes from, for reports: `env NAME`, `file PATH`, `command CMD`. */
export function sourceLabel(secret: Secret): string {
  const s = secret.external!;
  return 'env' in s ? `env ${s.env}` : 'file' in s ? `file ${s.file}` : `command ${s.command[0]}`;
}

/**
 * The gateway's env file, built on the host from the secret files (`NAME=value` lines), so values never travel.
 * Absent when no secret is delivered as a variable.
 */
export async function ensureEnvFile(session: HostSession, spec: Spec, mode: Mode): Promise<Change[]> {
  const layout = stackLayout(spec);
  const vars = secretDeliveries(spec).flatMap((d) => (d.kind === 'env' ? [d] : []));
  const resource = `file:${layout.gatewayEnv}`;
  if (vars.length === 0) {
    const r = await session.script(`[ -e ${run(layout.gatewayEnv)} ] && echo present || echo absent`);
    if (r.stdout.trim() !== 'present') return [];
    if (mode === 'apply') await session.check(run('rm', '-f', layout.gatewayEnv), { label: 'remove env file' });
    return [{ resource, action: 'delete' }];
  }
  const build = vars
    .map((v) => `printf '%s=%s\\n' ${run(v.variable)} "$(cat ${run(`${layout.secretsDir}/${v.secret}`)})"`)
    .join('\n');
  const script = [
    'set -eu',
    `p=${run(layout.gatewayEnv)}`,
    'umask 077',
    'if [ -e "$p" ]; then action=update; else action=create; fi',
    't=$(mktemp "$p.steward.XXXXXX")',
    'trap \'rm -f "$t"\' EXIT',
    `{\n${build}\n} > "$t"`,
    `chown ${spec.stack.uid}:${spec.stack.gid} "$t"; chmod ${SECRET_MODE} "$t"`,
    'if [ -e "$p" ] && cmp -s "$t" "$p" && [ "$(stat -c %u:%g:%a "$p")" = "$(stat -c %u:%g:%a "$t")" ]; then echo same; exit 0; fi',
    `if [ ${run(mode)} = apply ]; then mv -f "$t" "$p"; trap - EXIT; fi`,
    'echo "$action"',
  ].join('\n');
  const r = await session.check(script, { label: 'gateway env file' });
  const outcome = r.stdout.trim().split('\n').pop();
  if (outcome === 'same') return [];
  return [
    {
      resource,
      action: outcome === 'create' ? 'create' : 'update',
      after: {
        owner: `${spec.stack.uid}:${spec.stack.gid}`,
        mode: SECRET_MODE,
        variables: vars.map((v) => v.variable),
      },
    },
  ];
}
