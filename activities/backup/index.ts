/**
 * Backup, restore and restore drills. A backup writes a canary memory, streams the host's archive (archive.ts) into
 * restic on the worker and reads the new snapshot back whole to prove it; retention follows. A restore stages a
 * snapshot beside the live volumes and checks it before anything live is touched, swaps the volumes with the gateway
 * stopped (the old ones kept), starts it and proves the snapshot's canary is read back and found by search. A drill
 * stages and proves the same way in a short-lived container beside production, then removes the stage.
 */
import { createHash, randomBytes } from 'node:crypto';
import { Transform, type Readable, type Writable } from 'node:stream';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { ClientChannel } from 'ssh2';
import type { Change, ControlResult, Finding } from '../../model/report';
import { GATEWAY_SERVICE, secretDeliveries, stackLayout } from '../../model/render/stack';
import type { Spec } from '../../model/schema';
import { activityStep, reportProgress, targetOf, type ActivityDeps, type StepInput, type StepResult } from '../context';
import { resolveExternal } from '../deploy/secrets';
import { compose, composeUp, observeContainers, waitHealthy, type ObservedContainer } from '../deploy/stack';
import { CommandFailed, ConnectionFailed, HostError } from '../host/errors';
import type { HostSession } from '../host/session';
import { control } from '../memory/controls';
import { run } from '../host/shell';
import { secretRedactor } from '../redact';
import { pluginPathOf, runPluginProof } from '../memory/plugin-proof';
import { BACKUP_CANARY_PREFIX, backupCanaryText, type ProofReport } from '../memory/proof-report';
import { observeTargets } from '../memory/targets';
import {
  archiveScript,
  backedUpVolumes,
  drillMounts,
  freeSpaceScript,
  MANIFEST_MARK,
  parseManifest,
  parseStaged,
  removeStageScript,
  revertScript,
  stageScript,
  swapScript,
  type Manifest,
} from './archive';
import { collect, PENDING, Restic, SnapshotUnsound, unsound, type Snapshot } from './restic';

/** The spec has no repository, or no password for it: the operator must add them. */
export class BackupNotConfigured extends HostError {
  override readonly name = 'BackupNotConfigured';
  readonly retryable = false;
}

/** The canary memory a backup leaves in the probe user's memories, named in its snapshot's tags. */
export interface BackupCanary {
  readonly id: string;
  readonly nonce: string;
}

export interface BackupStepInput extends StepInput {
  readonly canary?: BackupCanary;
}

export interface CanaryStepResult extends StepResult {
  readonly canary?: BackupCanary;
}

/** A snapshot as the run reports it. No secret and no memory text is in it. */
export interface SnapshotRecord {
  readonly id: string;
  readonly shortId: string;
  readonly time: string;
  /** Bytes of the archive read from the host, and how many of them were new to the repository. */
  readonly bytes: number;
  readonly added: number;
  readonly sha256: string;
  readonly files: number;
  readonly databases: number;
  readonly canary?: BackupCanary;
}

export interface SnapshotStepResult extends StepResult {
  readonly snapshot: SnapshotRecord;
}

export interface RestoreStepInput extends StepInput {
  /** Where on the host this run stages (letters, digits, dashes): the workflow's run id. */
  readonly stageId: string;
  /** The snapshot to restore (full or short id); default the host's newest. */
  readonly snapshot?: string;
  readonly drill?: boolean;
  /** When the run began: the time to a proven restore (RTO) counts from here. */
  readonly startedAt?: string;
  /** Volumes staged (swap, revert). */
  readonly volumes?: readonly string[];
  readonly canary?: BackupCanary;
  /** The snapshot's time: its age at the proof is the RPO. */
  readonly snapshotTime?: string;
  /** swapVolumes leaves the gateway stopped (an upgrade's rollback starts the previous release itself). */
  readonly leaveStopped?: boolean;
}

export interface StageStepResult extends StepResult {
  readonly snapshot: { readonly id: string; readonly shortId: string; readonly time: string };
  readonly volumes: readonly string[];
  readonly canary?: BackupCanary;
  readonly controls: ControlResult[];
}

export interface ProofStepResult extends StepResult {
  readonly controls: ControlResult[];
}

/** The file a host's archive is stored as in its snapshots. */
export function archiveName(host: string): string {
  return `/steward-${host}.tar`;
}

const CANARY_TAG = /^canary=([0-9a-f-]{8,64})\/([0-9a-f]{16,64})$/;

export function canaryTag(c: BackupCanary): string {
  return `canary=${c.id}/${c.nonce}`;
}

export function canaryOf(snapshot: Pick<Snapshot, 'tags'>): BackupCanary | undefined {
  for (const t of snapshot.tags ?? []) {
    const m = CANARY_TAG.exec(t);
    if (m) return { id: m[1]!, nonce: m[2]! };
  }
  return undefined;
}

/** Counts and hashes what passes, and reports progress every second. */
class Meter extends Transform {
  bytes = 0;
  private readonly hash = createHash('sha256');
  private readonly started = Date.now();
  private last = 0;

  constructor(private readonly doing: string) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null, data?: Buffer) => void): void {
    this.bytes += chunk.length;
    this.hash.update(chunk);
    const now = Date.now();
    if (now - this.last >= 1000) {
      this.last = now;
      const seconds = (now - this.started) / 1000;
      reportProgress({ doing: this.doing, done: this.bytes, ...(seconds > 0 ? { rate: this.bytes / seconds } : {}) });
    }
    done(null, chunk);
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

/** A channel's exit code, stderr's tail (up to `limit` characters), and the lines starting with `keep`, whole. */
function channelExit(
  channel: ClientChannel,
  limit = 200_000,
  keep?: string,
): Promise<{ code: number | null; stderr: string; kept: string[] }> {
  let stderr = '';
  let pending = '';
  const kept: string[] = [];
  let code: number | null = null;
  channel.stderr.on('data', (d: Buffer) => {
    const text = d.toString('utf8');
    stderr = (stderr + text).slice(-limit);
    if (!keep) return;
    pending += text;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    kept.push(...lines.filter((l) => l.startsWith(keep)));
    // A line longer than any manifest is not one: keep only its start.
    if (pending.length > 8_000_000) pending = pending.slice(0, 0);
  });
  channel.on('exit', (c: number | null) => (code = c));
  channel.on('error', () => undefined);
  return new Promise((resolve) => channel.once('close', () => resolve({ code, stderr, kept })));
}

/**
 * Pipes `from` through `meter` into `to`. Resolves with the first error, or undefined once `to` finished. On an
 * error, or when either side closes before the end, `abort` tears both sides down (the restic child killed, the SSH
 * channel closed), so neither waits for the other forever.
 */
function pump(from: Readable, meter: Meter, to: Writable, abort: () => void): Promise<unknown> {
  return new Promise((resolve) => {
    let settled = false;
    const done = (err?: unknown) => {
      if (settled) return;
      settled = true;
      if (err !== undefined) abort();
      resolve(err);
    };
    from.on('error', done);
    meter.on('error', done);
    to.on('error', done);
    to.on('finish', () => done());
    from.on('close', () => {
      if (!from.readableEnded) done(new Error('the stream closed before its end'));
    });
    to.on('close', () => {
      if (!to.writableFinished) done(new Error('the far side closed before the stream ended'));
    });
    from.pipe(meter).pipe(to);
  });
}

/** Tears a transfer down: the child killed, the channel closed. */
function aborter(child: ChildProcessWithoutNullStreams, channel: ClientChannel): () => void {
  return () => {
    child.kill('SIGTERM');
    channel.close();
    channel.destroy();
  };
}

function lastLines(s: string, n = 4): string {
  return s.trim().split('\n').slice(-n).join(' | ').slice(0, 600);
}

export function createBackupActivities({ pool }: ActivityDeps) {
  const session = (input: StepInput) => pool.get(targetOf(input));

  async function repository(input: StepInput): Promise<Restic> {
    const b = input.spec.backup;
    if (!b.repository || !b.passwordSecret) {
      throw new BackupNotConfigured(
        input.host,
        'backup.repository is not set in the spec: there is nowhere to keep snapshots',
      );
    }
    const secret = input.spec.secrets[b.passwordSecret];
    if (!secret) throw new BackupNotConfigured(input.host, `backup.passwordSecret names no secret`);
    const password = await resolveExternal(input.host, b.passwordSecret, secret);
    return new Restic({ repository: b.repository, password, host: input.host });
  }

  /** The gateway container (when there is one) and the image the throwaway containers run. */
  async function gatewayImage(s: HostSession, spec: Spec): Promise<{ gateway?: ObservedContainer; image: string }> {
    const gateway = (await observeContainers(s)).get(GATEWAY_SERVICE);
    const image = gateway && /^sha256:[0-9a-f]{64}$/.test(gateway.image) ? gateway.image : spec.stack.image;
    return { ...(gateway ? { gateway } : {}), image };
  }

  /** Runs a memory proof of `op` for the canary, in the gateway or in a container with the staged volumes. */
  async function canaryProof(
    s: HostSession,
    spec: Spec,
    request: { op: 'write' | 'recall'; text: string; id?: string },
    place?: { image: string; mounts: { source: string; target: string }[] },
  ): Promise<ProofReport | { error: string }> {
    if (spec.stack.memory.check.adapter !== 'openclaw-plugin') {
      return { error: `the ${spec.stack.memory.check.adapter} adapter keeps no backup canary` };
    }
    const targets = await observeTargets(s, spec);
    const c = targets.consumer;
    if (!c) return { error: 'no gateway container' };
    if (c.status !== 'running') return { error: `the gateway container is ${c.status}` };
    const env = secretDeliveries(spec).some((d) => d.kind === 'env');
    return runPluginProof(
      s,
      spec,
      c.id,
      pluginPathOf(targets.live),
      {
        op: request.op,
        userId: spec.stack.memory.probeUser,
        prefix: BACKUP_CANARY_PREFIX,
        text: request.text,
        ...(request.id ? { id: request.id } : {}),
      },
      place
        ? {
            kind: 'mounts',
            image: place.image,
            mounts: place.mounts,
            ...(env ? { envFile: stackLayout(spec).gatewayEnv } : {}),
          }
        : { kind: 'exec' },
    );
  }

  /**
   * Stops the gateway and runs `script` (moving volumes) in one round trip, then starts the stack and waits until
   * the gateway is healthy, unless told to leave it stopped. Returns the script's stdout.
   */
  async function withGatewayStopped(input: StepInput, script: string, label: string, start: boolean): Promise<string> {
    const s = await session(input);
    const layout = stackLayout(input.spec);
    const r = await s.check(`set -e\n${compose(layout, 'stop', GATEWAY_SERVICE)} >&2\n${script}`, {
      label: `stop the gateway and ${label}`,
      timeoutMs: 300_000,
    });
    if (start) {
      await composeUp(s, layout);
      await waitHealthy(s, [GATEWAY_SERVICE], input.spec.stack.healthTimeoutSeconds);
    }
    return r.stdout;
  }

  /** The canary read back by id and found by search: in the gateway, or in a container given `mounts`. */
  async function recallControls(
    s: HostSession,
    input: StepInput & { readonly canary?: BackupCanary },
    mounts?: { source: string; target: string }[],
  ): Promise<ControlResult[]> {
    if (!input.canary) {
      return [
        control(
          'backup.restore.canary',
          'the canary written before the snapshot',
          'the snapshot has no canary: integrity proven only',
          true,
          undefined,
          'na',
        ),
      ];
    }
    const text = backupCanaryText(input.canary.nonce);
    // A drill's container runs the gateway's image; a proof in the gateway needs no second look at the containers.
    const place = mounts ? { image: (await gatewayImage(s, input.spec)).image, mounts } : undefined;
    const report = await canaryProof(s, input.spec, { op: 'recall', text, id: input.canary.id }, place);
    return (['read', 'search'] as const).map((step) => {
      const got = 'steps' in report ? report.steps.find((x) => x.step === step) : undefined;
      const why =
        'error' in report ? report.error : (got?.error ?? report.steps.find((x) => !x.ok)?.error ?? 'not run');
      return control(
        `backup.restore.canary-${step}`,
        step === 'read' ? 'the canary written before the snapshot reads back by id' : 'the canary is found by search',
        got?.ok
          ? step === 'read'
            ? `read back ${input.canary!.id}`
            : `found, score ${Number(got.detail?.score ?? 0).toFixed(3)}`
          : why,
        got?.ok === true,
        mounts ? 'in a short-lived container given the staged volumes' : 'in the serving gateway',
        undefined,
        got?.ms,
      );
    });
  }

  return {
    /**
     * The canary written before this run's snapshot, read back by id and found by search in the serving gateway:
     * after an upgrade, the new version reads the memories the old one wrote.
     */
    async recallCanary(input: BackupStepInput): Promise<ProofStepResult> {
      return activityStep(async () => {
        const s = await session(input);
        return { changes: [], findings: [], controls: await recallControls(s, input) };
      });
    },

    /**
     * The operator's own check after an upgrade (`--check`): a command run in the new gateway container as its uid,
     * as an argument vector (no shell), within 2 minutes; it passes on exit 0.
     */
    async runUpgradeCheck(input: StepInput & { readonly check?: readonly string[] }): Promise<ProofStepResult> {
      return activityStep(async () => {
        const argv = input.check ?? [];
        if (argv.length === 0) return { changes: [], findings: [], controls: [] };
        const s = await session(input);
        const gateway = (await observeContainers(s)).get(GATEWAY_SERVICE);
        if (!gateway) throw new CommandFailed(input.host, 'upgrade check', null, 'no gateway container', false);
        const started = performance.now();
        const r = await s.script(
          `out=$(timeout 120 ${run('docker', 'exec', '-u', `${input.spec.stack.uid}:${input.spec.stack.gid}`, gateway.id, ...argv)} 2>&1); rc=$?; printf '%s' "$out" | tail -c 600; exit $rc`,
          { timeoutMs: 150_000, label: 'upgrade check' },
        );
        // Its own output, the tail only and with every secret value the worker knows scrubbed, on failure alone.
        const out =
          r.code === 0 ? '' : secretRedactor.redact(r.stdout.trim().split('\n').slice(-2).join(' | ')).slice(0, 300);
        return {
          changes: [],
          findings: [],
          controls: [
            control(
              'upgrade.check',
              `${argv.join(' ')} exits 0 in the new gateway`,
              `exit ${r.code}${out ? `: ${out}` : ''}`,
              r.code === 0,
              undefined,
              undefined,
              performance.now() - started,
            ),
          ],
        };
      });
    },

    /**
     * Leaves one canary memory under the probe user (replacing the last backup's), so the snapshot holds a memory a
     * restore can look for. A gateway that cannot take it does not stop the backup: the finding says the restore
     * will prove integrity only.
     */
    async writeBackupCanary(input: StepInput): Promise<CanaryStepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const nonce = randomBytes(12).toString('hex');
        const report = await canaryProof(s, input.spec, { op: 'write', text: backupCanaryText(nonce) });
        const write = 'steps' in report ? report.steps.find((x) => x.step === 'write') : undefined;
        const id = write?.ok ? String(write.detail?.id ?? '') : '';
        if (!/^[0-9a-f-]{8,64}$/.test(id)) {
          const why =
            'error' in report ? report.error : (write?.error ?? report.steps.find((x) => !x.ok)?.error ?? 'no id');
          return {
            changes: [],
            findings: [
              {
                id: 'backup.no-canary',
                severity: 'medium',
                message: `no canary memory written (${why}): a restore of this snapshot can prove its databases' integrity, not that memories are found`,
              },
            ],
          };
        }
        const cleanup = 'steps' in report ? report.steps.find((x) => x.step === 'cleanup') : undefined;
        const removed = Number(cleanup?.detail?.removed ?? 0);
        const changes: Change[] = [
          { resource: `memory:canary/${id}`, action: 'create', after: { user: input.spec.stack.memory.probeUser } },
        ];
        if (removed > 0)
          changes.push({ resource: 'memory:canary/earlier', action: 'delete', before: { count: removed } });
        return { changes, findings: [], canary: { id, nonce } };
      });
    },

    /**
     * Streams the host's archive into the repository as a new snapshot, then reads the snapshot back whole and
     * compares its SHA-256 with what was sent. A snapshot of an archive the host did not finish is forgotten at once.
     */
    async snapshotHost(input: BackupStepInput): Promise<SnapshotStepResult> {
      return activityStep(async () => {
        const restic = await repository(input);
        const created = await restic.ensure();
        const s = await session(input);
        const { image } = await gatewayImage(s, input.spec);
        const createdAt = new Date().toISOString();
        const channel = await s.channel(['sh', '-c', archiveScript(input.spec, input.host, image, createdAt)]);
        const exited = channelExit(channel, 20_000, MANIFEST_MARK);
        // Stored as pending: a stream cut short (this worker killed, the host gone) is still stored by restic as a
        // snapshot, but never counts until it was read back whole and retagged verified.
        const tags = ['steward', PENDING, ...(input.canary ? [canaryTag(input.canary)] : [])];
        const child = restic.start([
          'backup',
          '--json',
          '--stdin',
          '--stdin-filename',
          archiveName(input.host).slice(1),
          '--host',
          input.host,
          ...tags.flatMap((t) => ['--tag', t]),
        ]);
        const resticDone = collect(child);
        const meter = new Meter('archive into the repository');
        const piped = pump(channel, meter, child.stdin, aborter(child, channel));
        const [pipeErr, host, done] = await Promise.all([piped, exited, resticDone]);
        const summary = done.code === 0 ? restic.summary(done.stdout) : undefined;
        let snap: Snapshot | undefined;
        let verified = false;
        try {
          if (host.code !== 0) {
            if (host.code === null && !s.connected) {
              throw new ConnectionFailed(input.host, 'session dropped during the backup');
            }
            const said = host.stderr
              .split('\n')
              .filter((l) => !l.startsWith('STEWARD_'))
              .join('\n');
            throw new CommandFailed(input.host, 'backup archive', host.code, lastLines(said), host.code !== 3);
          }
          if (pipeErr) {
            throw new CommandFailed(
              input.host,
              'backup stream',
              null,
              pipeErr instanceof Error ? pipeErr.message : String(pipeErr),
            );
          }
          if (!summary) throw restic.failure('backup', done);
          snap = await restic.find(input.host, summary.snapshot_id, PENDING);
          const manifest = parseManifest(input.host, host.kept.join('\n'));
          const sha256 = meter.digest();
          // Read back: every blob is decrypted and checked against its hash by restic, the whole against ours.
          const back = await dumpDigest(restic, snap.id, archiveName(input.host));
          if (back.digest !== sha256 || back.bytes !== meter.bytes) {
            throw new SnapshotUnsound(
              input.host,
              `snapshot ${snap.short_id} read back ${back.bytes} bytes that differ from the ${meter.bytes} sent`,
            );
          }
          await restic.run(['check'], 'check');
          const kept = await restic.verify(snap);
          verified = true;
          return record(kept, manifest, sha256, summary.data_added);
        } finally {
          // Anything short of a verified snapshot is forgotten now (pruneSnapshots forgets what a crash left).
          const leftover = verified ? undefined : (snap?.id ?? summary?.snapshot_id);
          if (leftover) await restic.run(['forget', leftover], 'forget the unverified snapshot').catch(() => undefined);
        }

        function record(kept: Snapshot, manifest: Manifest, sha256: string, added: number): SnapshotStepResult {
          const snapshot: SnapshotRecord = {
            id: kept.id,
            shortId: kept.short_id,
            time: kept.time,
            bytes: meter.bytes,
            added,
            sha256,
            files: manifest.files,
            databases: manifest.databases.length,
            ...(input.canary ? { canary: input.canary } : {}),
          };
          const changes: Change[] = [];
          if (created === 'created') changes.push({ resource: 'backup:repository', action: 'create' });
          changes.push({
            resource: `snapshot:${snapshot.shortId}`,
            action: 'create',
            after: {
              bytes: snapshot.bytes,
              added: snapshot.added,
              files: snapshot.files,
              databases: snapshot.databases,
              sha256: sha256.slice(0, 12),
            },
          });
          return { changes, findings: unreadableFindings(manifest), snapshot };
        }
      });
    },

    /** Applies `backup.keep` to the host's snapshots (restic forget --prune); the newest is always kept. */
    async pruneSnapshots(input: StepInput): Promise<StepResult> {
      return activityStep(async () => {
        const restic = await repository(input);
        // Pending snapshots a cut backup left: never verified, never kept.
        const pending = await restic.snapshots(input.host, PENDING);
        if (pending.length > 0) {
          await restic.run(['forget', ...pending.map((x) => x.id)], 'forget unverified snapshots');
        }
        const before = await restic.snapshots(input.host);
        const k = input.spec.backup.keep;
        await restic.run(
          [
            'forget',
            '--host',
            input.host,
            '--tag',
            'steward,verified',
            '--keep-last',
            '1',
            '--keep-daily',
            String(k.daily),
            '--keep-weekly',
            String(k.weekly),
            '--keep-monthly',
            String(k.monthly),
            '--prune',
          ],
          'forget --prune',
        );
        const after = new Set((await restic.snapshots(input.host)).map((x) => x.id));
        const removed = [...pending, ...before.filter((x) => !after.has(x.id))];
        return {
          changes: removed.map((x) => ({
            resource: `snapshot:${x.short_id}`,
            action: 'delete' as const,
            before: { time: x.time, ...(x.tags?.includes(PENDING) ? { unverified: true } : {}) },
          })),
          findings: [],
        };
      });
    },

    /**
     * Stages the snapshot beside the live volumes and checks it — every blob authentic (restic), the archive whole
     * (tar), each database's integrity, nothing owned by anyone but the gateway's uid — before anything live is
     * touched. A snapshot that fails is refused, named, and its stage removed.
     */
    async stageSnapshot(input: RestoreStepInput): Promise<StageStepResult> {
      return activityStep(async () => {
        const restic = await repository(input);
        const snap = await restic.find(input.host, input.snapshot);
        const s = await session(input);
        const { image } = await gatewayImage(s, input.spec);
        const size = await restoreSize(restic, snap.id);
        const free = Number((await s.check(freeSpaceScript(input.spec), { label: 'free space' })).stdout.trim());
        if (Number.isFinite(free) && free * 1024 < size * 1.2 + 64e6) {
          throw new CommandFailed(
            input.host,
            'restore staging',
            null,
            `needs ${Math.ceil((size * 1.2 + 64e6) / 1e6)} MB free beside the volumes, ${Math.floor((free * 1024) / 1e6)} MB are`,
            false,
          );
        }
        const channel = await s.channel(['sh', '-c', stageScript(input.spec, image, input.stageId)]);
        const exited = channelExit(channel, 20_000);
        let stdout = '';
        channel.on('data', (d: Buffer) => (stdout = (stdout + d.toString('utf8')).slice(-1_000_000)));
        const child = restic.start(['dump', snap.id, archiveName(input.host)]);
        const resticDone = collect(child, false);
        const meter = new Meter('snapshot to the host');
        const piped = pump(child.stdout, meter, channel, aborter(child, channel));
        const [pipeErr, host, done] = await Promise.all([piped, exited, resticDone]);
        const name = `snapshot ${snap.short_id} of ${input.host} (${snap.time})`;
        const discard = () =>
          s
            .check(removeStageScript(input.spec, input.stageId), { label: 'remove the restore stage' })
            .catch(() => undefined);
        if (done.code !== 0) {
          await discard();
          if (!unsound(done.stderr)) throw restic.failure(`dump of ${name} (nothing live was touched)`, done);
          throw new SnapshotUnsound(
            input.host,
            `${name} does not read back whole and authentic, refused; nothing live was touched: ${lastLines(done.stderr)}`,
          );
        }
        if (host.code !== 0 || pipeErr) {
          await discard();
          if (host.code === null && !s.connected)
            throw new ConnectionFailed(input.host, 'session dropped during the restore staging');
          if (host.code === 3) {
            throw new SnapshotUnsound(
              input.host,
              `${name} is refused, nothing live was touched: ${lastLines(host.stderr)}`,
            );
          }
          throw new CommandFailed(input.host, 'restore staging', host.code, lastLines(host.stderr) || String(pipeErr));
        }
        const staged = parseStaged(input.host, stdout);
        const controls: ControlResult[] = staged.databases.map((d) =>
          control(
            `backup.restore.integrity.${d.volume}/${d.path}`,
            'PRAGMA integrity_check: ok',
            d.integrity,
            d.integrity === 'ok',
          ),
        );
        controls.push(
          control(
            'backup.restore.ownership',
            `every staged file owned by ${input.spec.stack.uid}:${input.spec.stack.gid}`,
            staged.foreign.length ? staged.foreign.join('; ') : 'all',
            staged.foreign.length === 0,
          ),
        );
        const wanted = backedUpVolumes(input.spec).map((v) => v.name);
        const present = staged.manifest.volumes.map((v) => v.name);
        const missing = wanted.filter((v) => !present.includes(v));
        controls.push(
          control(
            'backup.restore.volumes',
            `the snapshot holds ${wanted.join(', ')}`,
            missing.length ? `missing ${missing.join(', ')}` : present.join(', '),
            missing.length === 0,
          ),
        );
        const failed = controls.filter((c) => c.status === 'fail');
        if (failed.length > 0) {
          await discard();
          throw new SnapshotUnsound(
            input.host,
            `${name} is refused, nothing live was touched: ${failed.map((c) => `${c.control}: ${c.observed}`).join('; ')}`,
          );
        }
        const canary = canaryOf(snap);
        return {
          changes: [],
          findings: [],
          controls,
          snapshot: { id: snap.id, shortId: snap.short_id, time: snap.time },
          volumes: wanted,
          ...(canary ? { canary } : {}),
        };
      });
    },

    /**
     * Stops the gateway, swaps each staged volume in for the live one (kept beside it as `<path>.pre-restore-<id>`)
     * and starts it again, waiting until it is healthy.
     */
    async swapVolumes(input: RestoreStepInput): Promise<StepResult> {
      return activityStep(async () => {
        const out = await withGatewayStopped(
          input,
          swapScript(input.spec, input.stageId, input.volumes ?? []),
          'swap the volumes',
          !input.leaveStopped,
        );
        const byName = new Map(backedUpVolumes(input.spec).map((v) => [v.name, v.path]));
        const changes: Change[] = [...out.matchAll(/^restored (\S+)$/gm)].map((m) => ({
          resource: `volume:${byName.get(m[1]!) ?? m[1]!}`,
          action: 'update' as const,
          before: { keptAt: `${byName.get(m[1]!)}.pre-restore-${input.stageId}` },
          after: { snapshot: input.snapshot ?? 'latest' },
        }));
        return {
          changes,
          findings: changes.length
            ? [
                {
                  id: 'backup.kept-volumes',
                  severity: 'info',
                  message: `the volumes as they were before the restore are kept beside them (*.pre-restore-${input.stageId}); remove them once the restore is accepted`,
                },
              ]
            : [],
        };
      });
    },

    /** Removes this run's stage: a drill's once it has its answer, a restore's once it is proven. */
    async removeRestoreStage(input: RestoreStepInput): Promise<StepResult> {
      return activityStep(async () => {
        const s = await session(input);
        await s.check(removeStageScript(input.spec, input.stageId), { label: 'remove the restore stage' });
        return { changes: [], findings: [] };
      });
    },

    /** After a failed restore: the gateway stopped, the kept volumes put back, the gateway started. */
    async revertRestore(input: RestoreStepInput): Promise<StepResult> {
      return activityStep(async () => {
        const out = await withGatewayStopped(
          input,
          revertScript(input.spec, input.stageId, input.volumes ?? []),
          'put the volumes back',
          true,
        );
        const byName = new Map(backedUpVolumes(input.spec).map((v) => [v.name, v.path]));
        return {
          changes: [...out.matchAll(/^reverted (\S+)$/gm)].map((m) => ({
            resource: `volume:${byName.get(m[1]!) ?? m[1]!}`,
            action: 'update' as const,
            after: 'as before the restore',
          })),
          findings: [],
        };
      });
    },

    /**
     * Proves the restored memories: the snapshot's canary read back by id and found by search — in the restarted
     * gateway after a restore, or, in a drill, in a short-lived container given the staged volumes (production's
     * volumes and containers untouched). Reports the RPO (the snapshot's age) and the RTO (the run's time to this
     * proof).
     */
    async proveRestore(input: RestoreStepInput): Promise<ProofStepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const controls = await recallControls(
          s,
          input,
          input.drill ? drillMounts(input.spec, input.stageId) : undefined,
        );
        const now = Date.now();
        if (input.snapshotTime) {
          const rpo = now - Date.parse(input.snapshotTime);
          controls.push(
            control(
              'backup.rpo',
              'the age of the snapshot restored',
              formatAge(rpo),
              true,
              `snapshot ${input.snapshot ?? ''} of ${input.snapshotTime}`.trim(),
              undefined,
              rpo,
            ),
          );
        }
        if (input.startedAt) {
          const rto = now - Date.parse(input.startedAt);
          controls.push(
            control(
              'backup.rto',
              'the time to a proven restore',
              formatAge(rto),
              controls.every((c) => c.status !== 'fail'),
              input.drill ? 'drill: staged and proven beside production' : undefined,
              undefined,
              rto,
            ),
          );
        }
        return { changes: [], findings: [], controls };
      });
    },
  };
}

/** A database the backup could not copy through SQLite (damaged, locked, not one at all): archived as it was. */
function unreadableFindings(manifest: Manifest): Finding[] {
  return (manifest.unreadable ?? []).map((u) => ({
    id: 'backup.database-copied-raw',
    severity: 'medium' as const,
    resource: `file:${u.volume}/${u.path}`,
    message: `${u.volume}/${u.path} looks like a SQLite database but its online backup failed (${u.error}); it is in the snapshot as it was on disk, which may not be consistent`,
  }));
}

/** `3m 12s`, `2h 05m`, `4d 03h`. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(s / 86400)}d ${String(Math.floor((s % 86400) / 3600)).padStart(2, '0')}h`;
}

/** Reads a snapshot's archive back through restic (which checks each blob) and hashes it. */
async function dumpDigest(restic: Restic, id: string, file: string): Promise<{ digest: string; bytes: number }> {
  const child: ChildProcessWithoutNullStreams = restic.start(['dump', id, file]);
  const done = collect(child, false);
  child.stdin.end();
  const hash = createHash('sha256');
  let bytes = 0;
  child.stdout.on('data', (d: Buffer) => {
    bytes += d.length;
    hash.update(d);
  });
  const r = await done;
  if (r.code !== 0 && !unsound(r.stderr)) throw restic.failure(`read back of snapshot ${id.slice(0, 8)}`, r);
  if (r.code !== 0) {
    throw new SnapshotUnsound(restic.host, `snapshot ${id.slice(0, 8)} does not read back: ${lastLines(r.stderr)}`);
  }
  return { digest: hash.digest('hex'), bytes };
}

/** Bytes a snapshot restores to. */
async function restoreSize(restic: Restic, id: string): Promise<number> {
  const out = await restic.run(['stats', '--json', '--mode', 'restore-size', id], 'stats');
  try {
    const n = (JSON.parse(out) as { total_size?: unknown }).total_size;
    return typeof n === 'number' ? n : 0;
  } catch {
    return 0;
  }
}
