/**
 * restic on the worker's machine: the repository, its password and every byte of a snapshot stay off the hosts. A
 * host only ever streams its archive out (backup) or in (restore) over its SSH session; restic encrypts,
 * deduplicates and authenticates what it stores, and checks every blob it reads back against its hash.
 *
 * restic gets the repository as an argument and the password in its environment, never through a shell.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { z } from 'zod';
import { validate } from '../../model/validate';
import { HostError } from '../host/errors';

/** restic failed: retryable unless the repository or its password is wrong, or the snapshot is unsound. */
export class ResticFailed extends HostError {
  override readonly name = 'ResticFailed';
  constructor(
    host: string,
    what: string,
    readonly detail: string,
    readonly retryable = true,
  ) {
    super(host, `restic ${what} failed${detail ? `: ${detail}` : ''}`);
  }
}

/** A snapshot that does not read back whole and authentic: refused, named. */
export class SnapshotUnsound extends HostError {
  override readonly name = 'SnapshotUnsound';
  readonly retryable = false;
}

/**
 * A snapshot is stored `pending` and retagged `verified` once it was read back whole; only verified ones are restored
 * or kept by retention, and a pending one left by a crash is forgotten by the next backup's retention.
 */
export const PENDING = 'pending';
export const VERIFIED = 'verified';

const snapshotSchema = z.object({
  id: z.string().regex(/^[0-9a-f]{64}$/),
  /** The snapshot this one replaced when its tags changed. */
  original: z.string().optional(),
  short_id: z.string(),
  time: z.string(),
  hostname: z.string(),
  tags: z.array(z.string()).nullish(),
  paths: z.array(z.string()),
});

export type Snapshot = z.infer<typeof snapshotSchema>;

const summarySchema = z.object({
  message_type: z.literal('summary'),
  /** restic 0.14 prints the short id here, later versions the full one. */
  snapshot_id: z.string().regex(/^[0-9a-f]{8,64}$/),
  data_added: z.number(),
  total_bytes_processed: z.number(),
  total_duration: z.number().optional(),
});

export type BackupSummary = z.infer<typeof summarySchema>;

/** restic's words for a repository that has no config where it was told to look (a local path, or a bucket). */
const NO_REPOSITORY = /config file does not exist|Is there a repository at the following location\?/i;
const WRONG_PASSWORD = /wrong password or no key found/i;
/** restic's words for data that does not authenticate or match its hash: the snapshot is unsound, not the network. */
const UNSOUND =
  /ciphertext verification failed|hash does not match|invalid data returned|blob .* not found|unexpected EOF|decrypting blob/i;

/** Whether a failed read of a snapshot means its data is damaged, rather than the repository being out of reach. */
export function unsound(stderr: string): boolean {
  return UNSOUND.test(stderr);
}

export interface ResticOptions {
  readonly repository: string;
  readonly password: string;
  /** Whose backup this is: errors name it. */
  readonly host: string;
  /** The restic binary; default `restic` on PATH. */
  readonly binary?: string;
}

export interface Done {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export class Restic {
  constructor(private readonly o: ResticOptions) {}

  get host(): string {
    return this.o.host;
  }

  /** Starts restic with `args`; stdout is kept unless `stream` (the caller reads it). */
  start(args: readonly string[]): ChildProcessWithoutNullStreams {
    return spawn(this.o.binary ?? 'restic', ['-r', this.o.repository, '--no-cache', ...args], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: process.env.HOME ?? '/',
        RESTIC_PASSWORD: this.o.password,
        ...s3Env(),
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  }

  /** Runs restic to the end. */
  async run(args: readonly string[], what: string): Promise<string> {
    const done = await finished(this.start(args));
    if (done.code !== 0) throw this.failure(what, done);
    return done.stdout;
  }

  /**
   * Creates the repository when there is none at its location: for a local path, when the directory is missing or
   * empty; elsewhere, when restic says the config does not exist. A wrong password, a directory holding something
   * else, or a repository out of reach is an error, and nothing is created.
   */
  async ensure(): Promise<'created' | 'exists'> {
    const probe = await finished(this.start(['cat', 'config']));
    if (probe.code === 0) return 'exists';
    const local = this.o.repository.startsWith('/');
    const empty = local && (!existsSync(this.o.repository) || readdirSync(this.o.repository).length === 0);
    if (local ? !empty : !NO_REPOSITORY.test(probe.stderr) || WRONG_PASSWORD.test(probe.stderr)) {
      throw this.failure('open the repository', probe);
    }
    await this.run(['init'], 'init');
    return 'created';
  }

  /** The host's steward snapshots tagged `tag` (default verified), oldest first. */
  async snapshots(host: string, tag: string = VERIFIED): Promise<Snapshot[]> {
    const out = await this.run(['snapshots', '--json', '--host', host, '--tag', `steward,${tag}`], 'snapshots');
    const list = validate(z.array(snapshotSchema), JSON.parse(out || '[]'), 'restic snapshots');
    return [...list].sort((a, b) => Date.parse(a.time) - Date.parse(b.time));
  }

  /**
   * The verified snapshot `id` (full or short) of `host`, or its newest.
   * @throws SnapshotUnsound when there is none (or the id names no single one).
   */
  async find(host: string, id?: string, tag: string = VERIFIED): Promise<Snapshot> {
    const list = await this.snapshots(host, tag);
    const found = id ? list.filter((s) => s.id.startsWith(id)) : list.slice(-1);
    if (found.length !== 1) {
      throw new SnapshotUnsound(
        this.o.host,
        id
          ? `no single ${tag} snapshot ${id} of ${host} in the repository (${list.length} ${tag} snapshots of it)`
          : `the repository has no ${tag} snapshot of ${host}`,
      );
    }
    return found[0]!;
  }

  /** Retags a pending snapshot verified; restic stores that as a new snapshot replacing it, which is returned. */
  async verify(snap: Snapshot): Promise<Snapshot> {
    await this.run(['tag', '--remove', PENDING, '--add', VERIFIED, snap.id], 'tag the snapshot verified');
    const replaced = (await this.snapshots(snap.hostname)).filter((s) => s.original === snap.id || s.id === snap.id);
    if (replaced.length !== 1) {
      throw new ResticFailed(
        this.o.host,
        'tag',
        `the verified snapshot replacing ${snap.short_id} is not in the repository`,
      );
    }
    return replaced[0]!;
  }

  /** Parses `restic backup --json`'s last line. */
  summary(stdout: string): BackupSummary {
    const last = stdout.trim().split('\n').filter(Boolean).at(-1) ?? '';
    let data: unknown;
    try {
      data = JSON.parse(last);
    } catch {
      throw new ResticFailed(this.o.host, 'backup', 'printed no summary');
    }
    return validate(summarySchema, data, 'restic backup summary');
  }

  /** An error for a finished restic: retried, unless the password is wrong. */
  failure(what: string, done: Done): ResticFailed {
    const tail = done.stderr.trim().split('\n').slice(-4).join(' | ').slice(0, 600);
    // A wrong password stays wrong; anything else (a lock, the network, a bucket out of reach) may pass.
    const permanent = WRONG_PASSWORD.test(done.stderr);
    return new ResticFailed(this.o.host, what, tail || `exited ${done.code ?? 'by signal'}`, !permanent);
  }
}

/** The S3 credentials restic reads, passed on from the worker's environment when set there. */
function s3Env(): Record<string, string> {
  const names = [
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'AWS_DEFAULT_REGION',
    'AWS_PROFILE',
  ];
  return Object.fromEntries(names.flatMap((n) => (process.env[n] ? [[n, process.env[n]!]] : [])));
}

/** Waits for a restic process to exit, collecting stdout (unless the caller reads it) and stderr's tail. */
export function collect(child: ChildProcessWithoutNullStreams, keepStdout = true): Promise<Done> {
  let stdout = '';
  let stderr = '';
  if (keepStdout) child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString('utf8')).slice(-20_000)));
  child.stdin.on('error', () => undefined);
  return new Promise((resolve) => {
    child.on('error', (err) => resolve({ code: -1, stdout, stderr: `${stderr}\n${err.message}` }));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs a restic that reads nothing on stdin to its end. */
function finished(child: ChildProcessWithoutNullStreams): Promise<Done> {
  const done = collect(child);
  child.stdin.end();
  return done;
}
