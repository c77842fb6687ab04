/**
 * The host's side of image transfer: layer files staged in a root-only directory until they are complete and
 * verified, then loaded from there. Two commands, each one SSH channel:
 *
 * - upload: under the staging lock, answers for each requested file whether it is there complete (`have`) or how
 *   many bytes of it are (`part <hex> <n>`), then appends what follows on stdin (gzip or raw) to each partial file in
 *   turn, from exactly that offset. A file that reaches its size is checked against its name (SHA-256) and renamed to
 *   its digest (`done`), or removed to be sent again (`bad`). A cut stream leaves a prefix for the next attempt.
 * - load: under the lock, builds the docker-load archive on the host from the manifest and configs sent on stdin
 *   and the staged files, loads it, and removes the files it loaded. While it runs it prints `tick` every
 *   TICK_SECONDS, so the caller knows the host is still at it.
 *
 * One command at a time holds the directory's lock; one that still holds it after LOCK_WAIT_SECONDS is taken to be an
 * attempt whose peer is gone, and is ended. The directory is STAGING_DIR, created 0700 root and refused (exit 70, not retried) when it, or its parent, is a
 * symlink, belongs to someone else, or is writable by others: only root can create entries there, so nothing planted
 * by another user is ever followed. Files idle for a week (a transfer never retried) are removed by the next upload.
 */
import { createReadStream } from 'node:fs';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import type { ClientChannel } from 'ssh2';
import { CommandFailed, CommandTimedOut, ConnectionFailed, HostError, UnexpectedHostOutput } from '../host/errors';
import type { HostSession } from '../host/session';
import {
  hexOf,
  loadManifest,
  parseHandshake,
  parseVerdicts,
  type ImageLayers,
  type LayerBlob,
  type StagedVerdict,
} from './image-layers';
import { writeTar } from './image-tar';

export const STAGING_PARENT = '/var/lib/steward';
export const STAGING_DIR = `${STAGING_PARENT}/images`;
const TICK_SECONDS = 2;
const GZIP_LEVEL = 1;
/** No byte accepted by the host for this long: the upload is stuck. */
const STALL_TIMEOUT_MS = 120_000;

/** After the last byte: the host hashes the files it completed, then `docker load` unpacks and registers layers. */
export const LOAD_TIMEOUT_MS = 600_000;
const WATCHDOG_INTERVAL_MS = 1_000;
const OUTPUT_LIMIT = 16_384;
const LINE_LIMIT = 4_096;

/**
 * How long a command waits for the staging lock before it ends the holder (and then as long again). A holder that
 * outlives this is an earlier attempt whose SSH peer is gone without the host noticing yet (a worker's machine lost,
 * a network cut: sshd may take many minutes to tell), blocked on input that will never come; every write it made is
 * an append, so ending it leaves each file a prefix of itself, and the lock is free only once all of it has exited.
 */
const LOCK_WAIT_SECONDS = 30;
/** The lock (twice LOCK_WAIT_SECONDS at worst), the prune and the staging answers. */
const HANDSHAKE_TIMEOUT_MS = (2 * LOCK_WAIT_SECONDS + 30) * 1000;
/** Exit codes of the scripts below, besides a failed command's own. */
const UNSAFE_DIR = 70;
const BUSY = 75;
const MISSING = 76;

/**
 * Checks (and makes) the staging directory, enters it and takes its lock on fd 9, ending a holder that keeps it past
 * LOCK_WAIT_SECONDS (its process group, recorded in `.owner`). Arguments: parent, dir.
 */
const PRELUDE = `set -eu
umask 077
p=$1 d=$2
shift 2
refuse() { echo "steward: $1 must be a directory only root can write to; leaving it alone" >&2; exit ${UNSAFE_DIR}; }
[ -L "$p" ] && refuse "$p"
[ -e "$p" ] || mkdir -m 0755 -- "$p" 2>/dev/null || :
{ [ -d "$p" ] && [ ! -L "$p" ]; } || refuse "$p"
o=$(stat -c '%u %a' -- "$p")
[ "\${o%% *}" = 0 ] && [ $((0\${o#* } & 022)) -eq 0 ] || refuse "$p"
[ -L "$d" ] && refuse "$d"
[ -e "$d" ] || mkdir -m 0700 -- "$d" 2>/dev/null || :
{ [ -d "$d" ] && [ ! -L "$d" ]; } || refuse "$d"
o=$(stat -c '%u %a' -- "$d")
[ "\${o%% *}" = 0 ] || refuse "$d"
[ "\${o#* }" = 700 ] || chmod 0700 -- "$d"
cd -P -- "$d"
read -r _ _ _ _ me _ </proc/$$/stat
exec 9>>.lock
if ! flock -w ${LOCK_WAIT_SECONDS} 9; then
  o=$(cat .owner 2>/dev/null || :)
  case "$o" in ''|*[!0-9]*) ;; *) [ "$o" -le 1 ] || [ "$o" = "$me" ] || kill -TERM "-$o" 2>/dev/null || : ;; esac
  flock -w ${LOCK_WAIT_SECONDS} 9 || { echo "steward: another image transfer holds $d/.lock" >&2; exit ${BUSY}; }
fi
echo "$me" >.owner
`;

/** Arguments: parent, dir, 1 (gzip) or 0 (raw), then `<hex> <size>` per file. */
const UPLOAD = `${PRELUDE}gz=$1
shift
find . -mindepth 1 -maxdepth 1 ! -name .lock -mmin +10080 -exec rm -rf -- {} +
todo=
while [ $# -ge 2 ]; do
  h=$1 s=$2
  shift 2
  if [ -f "$h" ]; then
    echo "have $h"
  else
    o=0
    if [ -f "$h.part" ]; then
      o=$(stat -c %s -- "$h.part")
      if [ "$o" -gt "$s" ]; then rm -f -- "$h.part"; o=0; fi
    fi
    echo "part $h $o"
    todo="$todo $h:$s:$o"
  fi
done
echo ready
[ -n "$todo" ] || exit 0
receive() { if [ "$gz" = 1 ]; then gzip -dc; else cat; fi; }
receive | {
  for t in $todo; do
    h=\${t%%:*} r=\${t#*:}
    s=\${r%%:*} o=\${r#*:}
    sum=
    if [ "$o" = 0 ]; then
      sum=$(head -c "$s" | tee -a -- "$h.part" | sha256sum)
    else
      head -c $((s - o)) >>"$h.part" || :
    fi
    got=$(stat -c %s -- "$h.part" 2>/dev/null || echo 0)
    if [ "$got" != "$s" ]; then echo "short $h $got"; exit 1; fi
    [ -n "$sum" ] || sum=$(sha256sum -- "$h.part")
    if [ "\${sum%% *}" = "$h" ]; then mv -f -- "$h.part" "$h"; echo "done $h"; else rm -f -- "$h.part"; echo "bad $h"; fi
  done
}
`;

/** Arguments: parent, dir, tick seconds, number of configs, config hexes, staged layer hexes; stdin: a small tar. */
const LOAD = `${PRELUDE}tick=$1 nc=$2
shift 2
t=$(mktemp -d "$d/load.XXXXXX")
trap 'rm -rf -- "$t"' EXIT
trap '' PIPE
tar -x -C "$t" --no-same-owner --no-same-permissions -f -
cfgs=
while [ "$nc" -gt 0 ]; do cfgs="$cfgs $1.json"; shift; nc=$((nc - 1)); done
for h; do [ -f "$h" ] || { echo "steward: staged layer $h is missing" >&2; exit ${MISSING}; }; done
( while sleep "$tick" </dev/null >/dev/null 2>&1 9>&-; do echo tick || exit 0; done ) &
tk=$!
rc=0
tar -c -f - -C "$t" manifest.json $cfgs -C "$d" "$@" | docker load >"$t/out" 2>&1 || rc=$?
kill "$tk" 2>/dev/null || :
wait "$tk" 2>/dev/null || :
tail -c ${OUTPUT_LIMIT} -- "$t/out" >&2 || :
[ "$rc" = 0 ] || exit "$rc"
rm -f -- "$@"
`;

/** The host scripts, for tests that run them against a directory of their own. */
export const HOST_SCRIPTS = { upload: UPLOAD, load: LOAD } as const;

/** Wire bytes as they leave, and a sign of life while the host works without input. */
export interface Meter {
  /** `n` more bytes went out. */
  add(n: number): void;
  /** The host is still working. */
  alive(): void;
  /** Layer bytes read for sending so far, of `total` this upload sends (before compression). */
  read?(bytes: number, total: number): void;
}

export interface StageResult {
  /** Raw (uncompressed) bytes of each file sent by this upload. */
  readonly raw: ReadonlyMap<string, number>;
  /** Bytes of each file already on the host before this upload (an earlier attempt's): partial or whole. */
  readonly resumed: ReadonlyMap<string, number>;
  /** Bytes that went over SSH (compressed when compressing). */
  readonly wire: number;
  /** Files that arrived whole but failed their digest: removed on the host, to be sent again. */
  readonly bad: readonly string[];
}

/**
 * Makes the host's staging directory hold each of `files` complete and verified, sending only what it lacks: files
 * it has whole are skipped, partial ones continue from their end.
 * @param path where the operator's copy of a file is (the image cache)
 * @throws CommandFailed (busy: retryable; unsafe directory or full disk: not), CommandTimedOut on a stall,
 *   ConnectionFailed when the session drops, UnexpectedHostOutput on answers outside the protocol.
 */
export async function stageFiles(
  session: HostSession,
  files: readonly LayerBlob[],
  path: (digest: string) => string,
  compress: boolean,
  meter: Meter,
): Promise<StageResult> {
  const host = session.target.name;
  const label = 'stage image layers';
  const args = files.flatMap((f) => [hexOf(f.digest), String(f.size)]);
  const channel = await session.channel([
    'sh',
    '-c',
    UPLOAD,
    'sh',
    STAGING_PARENT,
    STAGING_DIR,
    compress ? '1' : '0',
    ...args,
  ]);
  const handshake: string[] = [];
  const verdictLines: string[] = [];
  let ready: (() => void) | undefined;
  const readyLine = new Promise<void>((resolve) => (ready = resolve));
  let lastOutput = Date.now();
  const watch = watchChannel(host, channel, (line) => {
    lastOutput = Date.now();
    if (ready) {
      if (line === 'ready') {
        ready();
        ready = undefined;
      } else handshake.push(line);
    } else verdictLines.push(line);
  });

  const opened = await Promise.race([
    readyLine.then(() => 'ready' as const),
    watch.closed,
    settle(HANDSHAKE_TIMEOUT_MS).then(() => 'timeout' as const),
  ]);
  if (opened === 'timeout') {
    channel.destroy();
    throw new CommandTimedOut(host, label, HANDSHAKE_TIMEOUT_MS);
  }
  if (opened !== 'ready') throw exitError(session, label, watch.failure() ?? undefined, opened);

  let state: ReturnType<typeof parseHandshake>;
  try {
    state = parseHandshake(host, handshake, files);
  } catch (err) {
    channel.destroy();
    throw err;
  }
  const todo = files.flatMap((f) => {
    const s = state.get(hexOf(f.digest))!;
    return s.have ? [] : [{ file: f, offset: s.offset }];
  });
  const resumed = new Map<string, number>();
  for (const f of files) {
    const s = state.get(hexOf(f.digest))!;
    const there = s.have ? f.size : s.offset;
    if (there > 0) resumed.set(f.digest, there);
  }
  const raw = new Map<string, number>();
  let wire = 0;
  const toRead = todo.reduce((n, t) => n + Math.max(0, t.file.size - t.offset), 0);
  let read = 0;

  if (todo.length === 0) {
    channel.end();
  } else {
    const source = Readable.from(
      (async function* () {
        for (const { file, offset } of todo) {
          for await (const chunk of createReadStream(path(file.digest), { start: offset, highWaterMark: 1 << 18 })) {
            raw.set(file.digest, (raw.get(file.digest) ?? 0) + (chunk as Buffer).length);
            read += (chunk as Buffer).length;
            meter.read?.(read, toRead);
            yield chunk as Buffer;
          }
        }
      })(),
      { objectMode: false },
    );
    let lastProgress = Date.now();
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        wire += chunk.length;
        lastProgress = Date.now();
        meter.add(chunk.length);
        done(null, chunk);
      },
    });
    const abort = new AbortController();
    const watchdog = setInterval(() => {
      if (Date.now() - lastProgress > STALL_TIMEOUT_MS) abort.abort(new CommandTimedOut(host, label, STALL_TIMEOUT_MS));
    }, WATCHDOG_INTERVAL_MS);
    try {
      const stages = compress
        ? [source, createGzip({ level: GZIP_LEVEL }), counter, channel]
        : [source, counter, channel];
      await (pipeline as (...s: unknown[]) => Promise<void>)(...stages, { signal: abort.signal });
    } catch (err) {
      channel.destroy();
      const exit = await Promise.race([watch.closed, settle(2_000)]);
      throw streamError(session, label, wire, err, abort.signal.reason, exit);
    } finally {
      clearInterval(watchdog);
    }
  }

  lastOutput = Date.now();
  const exit = await untilClosed(session, channel, watch, label, () => lastOutput, LOAD_TIMEOUT_MS);
  const protocol = watch.failure();
  if (protocol) throw protocol;
  const uploading = new Set(todo.map((t) => hexOf(t.file.digest)));
  const verdicts = parseVerdicts(host, verdictLines, uploading);
  if (exit.code !== 0) throw exitError(session, label, undefined, exit);
  const missing = [...uploading].filter((h) => verdicts.get(h) !== 'done' && verdicts.get(h) !== 'bad');
  if (missing.length > 0)
    throw new UnexpectedHostOutput(host, `image staging exited 0 without a verdict on ${missing.join(', ')}`);
  const bad = todo.filter((t) => (verdicts.get(hexOf(t.file.digest)) as StagedVerdict) === 'bad');
  return { raw, resumed, wire, bad: bad.map((t) => t.file.digest) };
}

/** An image to load: its layers, tags and config (whose SHA-256 is its ID). */
export interface LoadImage extends ImageLayers {
  readonly config: Buffer;
}

/**
 * Loads `images` on the host from the staging directory: their manifest and configs go on stdin (counted by
 * `meter`), every file in `staged` must be there complete. Removes those files once the load succeeded.
 * @throws CommandFailed when `docker load` fails (full disk: not retryable) or a staged file is missing (retryable),
 *   CommandTimedOut after LOAD_TIMEOUT_MS, ConnectionFailed when the session drops.
 */
export async function loadStaged(
  session: HostSession,
  images: readonly LoadImage[],
  staged: readonly string[],
  meter: Meter,
): Promise<void> {
  const host = session.target.name;
  const label = `docker load (${images.flatMap((i) => i.tags).join(', ')})`;
  const archive = writeTar([
    { name: 'manifest.json', data: loadManifest(images) },
    ...images.map((i) => ({ name: `${hexOf(i.id)}.json`, data: i.config })),
  ]);
  const seconds = Math.ceil(LOAD_TIMEOUT_MS / 1000);
  const channel = await session.channel([
    'timeout',
    '-k',
    '5',
    String(seconds),
    'sh',
    '-c',
    LOAD,
    'sh',
    STAGING_PARENT,
    STAGING_DIR,
    String(TICK_SECONDS),
    String(images.length),
    ...images.map((i) => hexOf(i.id)),
    ...staged.map(hexOf),
  ]);
  let lastOutput = Date.now();
  const watch = watchChannel(host, channel, (line) => {
    if (line !== 'tick') throw new UnexpectedHostOutput(host, `${label} printed ${JSON.stringify(line.slice(0, 200))}`);
    lastOutput = Date.now();
    meter.alive();
  });
  channel.end(archive, () => meter.add(archive.length));
  // The remote `timeout` ends the load after `seconds`; this bound only catches a host that stopped answering.
  const exit = await untilClosed(session, channel, watch, label, () => lastOutput, LOAD_TIMEOUT_MS + 30_000);
  const protocol = watch.failure();
  if (protocol) throw protocol;
  if (exit.code === 124 || exit.code === 137) throw new CommandTimedOut(host, label, LOAD_TIMEOUT_MS);
  if (exit.code !== 0) throw exitError(session, label, undefined, exit);
}

export interface ChannelExit {
  readonly code: number | null;
  readonly signal?: string;
  /** The tail of stderr. */
  readonly output: string;
}

interface Watch {
  readonly closed: Promise<ChannelExit>;
  /** The first protocol violation seen on stdout, if any (the channel is then destroyed). */
  failure(): HostError | undefined;
}

/** Splits stdout into lines for `onLine` (which may throw to refuse one), keeps stderr's tail, resolves on close. */
function watchChannel(host: string, channel: ClientChannel, onLine: (line: string) => void): Watch {
  let pending = '';
  let stderr = '';
  let code: number | null = null;
  let signal: string | undefined;
  let failure: HostError | undefined;
  const fail = (err: unknown) => {
    failure ??= err instanceof HostError ? err : new UnexpectedHostOutput(host, String(err));
    channel.destroy();
  };
  channel.on('data', (d: Buffer) => {
    if (failure) return;
    pending += d.toString('utf8');
    let nl: number;
    while ((nl = pending.indexOf('\n')) !== -1) {
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + 1);
      try {
        onLine(line);
      } catch (err) {
        fail(err);
        return;
      }
    }
    if (pending.length > LINE_LIMIT) fail(new UnexpectedHostOutput(host, 'image staging printed an overlong line'));
  });
  // A write after the host closed its end (a script that refused to start) errors; the close says the rest.
  channel.on('error', () => undefined);
  channel.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-OUTPUT_LIMIT);
  });
  channel.on('exit', (c: number | null, s?: string) => {
    code = c;
    signal = s ?? undefined;
  });
  const closed = new Promise<ChannelExit>((resolve) => {
    channel.once('close', () => {
      if (pending !== '' && !failure) fail(new UnexpectedHostOutput(host, 'image staging output ends mid-line'));
      resolve({ code, ...(signal ? { signal } : {}), output: stderr });
    });
  });
  return { closed, failure: () => failure };
}

/** Waits for the channel to close; destroys it and throws when nothing was heard for `idleMs` or the session drops. */
async function untilClosed(
  session: HostSession,
  channel: ClientChannel,
  watch: Watch,
  label: string,
  lastHeard: () => number,
  idleMs: number,
): Promise<ChannelExit> {
  const host = session.target.name;
  let timer: NodeJS.Timeout | undefined;
  const stalled = new Promise<never>((_, reject) => {
    timer = setInterval(() => {
      if (!session.connected) reject(new ConnectionFailed(host, `session dropped during ${label}`));
      else if (Date.now() - lastHeard() > idleMs) reject(new CommandTimedOut(host, label, idleMs));
    }, WATCHDOG_INTERVAL_MS);
  });
  try {
    return await Promise.race([watch.closed, stalled]);
  } catch (err) {
    channel.destroy();
    throw err;
  } finally {
    clearInterval(timer);
  }
}

function settle(ms: number): Promise<undefined> {
  return new Promise((resolve) => setTimeout(() => resolve(undefined), ms).unref());
}

/** A failed command: a full disk is not retryable, an unsafe staging directory neither; the rest is. */
export function exitError(
  session: HostSession,
  label: string,
  protocol: HostError | undefined,
  exit: ChannelExit,
): HostError {
  const host = session.target.name;
  if (protocol) return protocol;
  if (exit.code === null && !session.connected) return new ConnectionFailed(host, `session dropped during ${label}`);
  const full = /no space left on device/i.test(exit.output);
  const detail =
    exit.code === BUSY
      ? `${exit.output.trim()} (retry when it is done)`
      : exit.code === MISSING
        ? `${exit.output.trim()} (removed since it was staged; the next attempt sends it again)`
        : exit.output.trim() || (exit.signal ? `killed by ${exit.signal}` : '');
  return new CommandFailed(host, label, exit.code, detail, !full && exit.code !== UNSAFE_DIR);
}

/** The error for a stream that did not reach its end: the stall, the dropped session, or what the host said. */
export function streamError(
  session: HostSession,
  label: string,
  bytes: number,
  err: unknown,
  reason: unknown,
  exit: ChannelExit | undefined,
): HostError {
  const host = session.target.name;
  if (reason instanceof HostError) return reason;
  if (!session.connected) return new ConnectionFailed(host, `session dropped during ${label} after ${bytes} bytes`);
  if (exit && exit.code !== null && exit.code !== 0) return exitError(session, label, undefined, exit);
  const message = err instanceof Error ? err.message : String(err);
  return new CommandFailed(host, label, exit?.code ?? null, `image stream broke after ${bytes} bytes: ${message}`);
}
