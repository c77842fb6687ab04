/**
 * memory check: proves mem0 works on a host and, with --repair, fixes what it safely can.
 *
 *   checkMemoryDatabases    SQLite integrity and journal mode of every mem0 database; a damaged one is backed up
 *                           (repair) before anything else happens, and reported — never replaced or removed
 *   checkMemoryPaths        state and memory volumes, databases and their -wal/-shm/-journal: exist, owner, mode,
 *                           on a persistent volume, free space; repair chowns, chmods and creates directories
 *   restartMemoryConsumer   after a repair, the gateway (or REST server) restarts so it opens its data afresh
 *   proveMemoryCanary       canary write → read by id → search → history → delete → gone; history switched on;
 *                           the embedder's vector length against the store's
 *   proveMemoryPersistence  a second canary, written through the gateway, reads back in a fresh container that has
 *                           only the gateway's volumes (the gateway keeps serving), then is deleted; with
 *                           --restart-proof (and always for a REST server) it must survive a restart of the consumer
 *
 * Every step observes first; only repair mode changes anything, and every change is reported. Canaries live under
 * the spec's probe user and start with a fixed prefix; nothing else is ever deleted.
 */
import { randomUUID } from 'node:crypto';
import { compactTime } from '../../model/ids';
import type { Change, ControlResult, Finding } from '../../model/report';
import { GATEWAY_SERVICE, secretDeliveries, stackLayout } from '../../model/render/stack';
import type { Spec } from '../../model/schema';
import { activityStep, heartbeat, targetOf, type ActivityDeps, type StepInput, type StepResult } from '../context';
import { StackUnhealthy, waitHealthy } from '../deploy/stack';
import { HostError } from '../host/errors';
import type { HostSession } from '../host/session';
import { run } from '../host/shell';
import { control } from './controls';
import { evaluatePaths, observePaths, repairPaths } from './paths';
import { pluginPathOf, runPluginProof, type ProofPlace } from './plugin-proof';
import { CANARY_PREFIX, canaryText, type ProofReport, type ProofRequest } from './proof-report';
import { canaryControls, dimensionControl, historyControl, persistenceControl, type PersistenceProof } from './proof';
import { restApiKey, runRestProof, waitRestReady, type ApiKey } from './rest-proof';
import { backupDamaged, checkIntegrity, integrityControls, MEMORY_BACKUP_DIR, storedDimensions } from './sqlite';
import { observeTargets, type Consumer, type MemoryTargets } from './targets';

export interface MemoryStepResult extends StepResult {
  readonly controls: ControlResult[];
}

/** The REST server did not answer again after its restart. */
class ConsumerUnavailable extends HostError {
  override readonly name = 'ConsumerUnavailable';
  readonly retryable = false;
}

/** A report for a proof that could not start, so every control says why. */
function notStarted(error: string): ProofReport {
  return { warnings: [], steps: [{ step: 'init', ok: false, ms: 0, error }], history: { enabled: false }, config: {} };
}

function consumerLabel(spec: Spec, consumer: Consumer | undefined): string {
  return consumer?.name ?? (spec.stack.memory.check.adapter === 'rest' ? 'the mem0 REST server' : 'the gateway');
}

export interface PersistenceInput extends StepInput {
  /** Prove persistence across a restart of the consumer instead of in a fresh container (`--restart-proof`). */
  readonly restartProof?: boolean;
}

/** Where the gateway's canary is read back without a restart, or why it cannot be. */
function freshPlace(spec: Spec, gateway: Consumer): ProofPlace | { error: string } {
  if (!gateway.image) return { error: `the image of ${gateway.name} is unknown: docker inspect showed no image ID` };
  const env = secretDeliveries(spec).some((d) => d.kind === 'env');
  return {
    kind: 'fresh',
    image: gateway.image,
    tmpfs: gateway.tmpfs,
    ...(env ? { envFile: stackLayout(spec).gatewayEnv } : {}),
  };
}

/** Runs a proof with the spec's adapter. */
async function runProof(
  session: HostSession,
  spec: Spec,
  targets: MemoryTargets,
  request: ProofRequest,
  key: ApiKey | undefined,
  place?: ProofPlace,
): Promise<ProofReport> {
  if (targets.adapter === 'rest') return runRestProof(session, spec, request, key ?? { kind: 'none' });
  const c = targets.consumer;
  if (!c) return notStarted('no gateway container: deploy the stack first');
  if (c.status !== 'running') return notStarted(`the gateway container is ${c.status}`);
  return runPluginProof(session, spec, c.id, pluginPathOf(targets.live), request, place);
}

/**
 * Restarts the consumer and waits until it serves again: the gateway until healthy, the REST server until it
 * answers. Returns how long it took.
 * @throws StackUnhealthy when it does not come back in `stack.healthTimeoutSeconds`.
 */
async function restartConsumer(
  session: HostSession,
  spec: Spec,
  targets: MemoryTargets,
  key: ApiKey | undefined,
): Promise<number> {
  const c = targets.consumer!;
  const started = performance.now();
  const grace = c.stopTimeout ?? 10;
  await session.check(run('docker', 'restart', '-t', String(grace), c.id), {
    label: `docker restart ${c.name}`,
    timeoutMs: (grace + 120) * 1000,
  });
  const timeout = spec.stack.healthTimeoutSeconds;
  if (targets.adapter === 'openclaw-plugin') {
    await waitHealthy(session, [GATEWAY_SERVICE], timeout, heartbeat);
  } else if (!(await waitRestReady(session, spec, key ?? { kind: 'none' }, timeout, heartbeat))) {
    throw new ConsumerUnavailable(session.target.name, `${c.name} does not answer ${timeout} s after its restart`);
  }
  return performance.now() - started;
}

function basename(p: string): string {
  return p.slice(p.lastIndexOf('/') + 1);
}

/** After a canary: the configured databases exist on the host where the spec says (not silently elsewhere). */
async function onDiskControls(session: HostSession, targets: MemoryTargets): Promise<ControlResult[]> {
  const dbs = targets.databases.filter((d) => d.role !== 'db');
  if (dbs.length === 0) return [];
  const probes = Object.fromEntries(
    dbs.flatMap((d, i) =>
      d.hostPath ? [[`f${i}`, `stat -c '%s' ${run(d.hostPath)} 2>/dev/null || echo absent`]] : [],
    ),
  );
  const r = Object.keys(probes).length > 0 ? await session.probe(probes) : {};
  return dbs.map((d, i) => {
    const id = `memory.on-disk.${d.role}`;
    const expected = `exists on the host after the canary${d.hostPath ? ` (${d.hostPath})` : ''}`;
    if (!d.hostPath) {
      const where =
        d.location?.kind === 'tmpfs' ? `on a tmpfs (${d.containerPath})` : `inside the container (${d.containerPath})`;
      return control(id, expected, `not on a host path: ${where}`, false);
    }
    const out = (r as Record<string, { out: string }>)[`f${i}`]?.out.trim() ?? 'absent';
    return control(id, expected, out === 'absent' ? 'absent' : `exists, ${out} bytes`, out !== 'absent');
  });
}

export function createMemoryActivities({ pool }: ActivityDeps) {
  const session = (input: StepInput) => pool.get(targetOf(input));

  return {
    /**
     * Integrity and journal mode of every mem0 database. In apply (repair) mode a damaged database is backed up with
     * its companions first; it is never replaced. Changes only the backup directory.
     */
    async checkMemoryDatabases(input: StepInput): Promise<MemoryStepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const targets = await observeTargets(s, input.spec);
        const paths = await observePaths(s, input.spec, targets);
        const results = await checkIntegrity(s, paths.databases);
        const controls = integrityControls(results);
        const changes: Change[] = [];
        const findings: Finding[] = [];
        if (results.some((r) => r.state === 'no-sqlite3')) {
          controls.push(
            control('memory.sqlite3', 'sqlite3 on the host (provision installs it)', 'not installed', false),
          );
        }
        const stamp = compactTime(new Date());
        for (const r of results) {
          if (r.state === 'locked') {
            findings.push({
              id: 'memory.database-locked',
              severity: 'medium',
              resource: `file:${r.path}`,
              message: `${r.path} stayed locked for 5 s (mem0 #7196): a writer holds it; run the check again`,
            });
          }
          if (r.state !== 'damaged') continue;
          if (input.mode === 'apply') {
            const b = await backupDamaged(s, r, stamp);
            changes.push(...b.changes);
            findings.push(...b.findings);
          } else {
            changes.push({
              resource: `backup:${MEMORY_BACKUP_DIR}/${stamp}/${basename(r.path)}`,
              action: 'create',
              after: { of: r.path },
            });
            findings.push({
              id: 'memory.database-damaged',
              severity: 'high',
              resource: `file:${r.path}`,
              message: `${r.path} is damaged (${r.evidence}). \`memory check --repair\` backs it up first; it does not replace it.`,
            });
          }
        }
        return { changes, findings, controls };
      });
    },

    /**
     * Volumes and database files: exist, owner, mode, on a persistent volume, free space. In apply mode fixes owner
     * and mode drift and creates missing volume directories, then observes again: the controls are the state after.
     */
    async checkMemoryPaths(input: StepInput): Promise<MemoryStepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const targets = await observeTargets(s, input.spec);
        const before = evaluatePaths(input.spec, targets, await observePaths(s, input.spec, targets));
        if (input.mode === 'plan' || before.changes.length === 0) {
          return { changes: before.changes, findings: [], controls: before.controls };
        }
        await repairPaths(s, targets, before.changes);
        const after = evaluatePaths(input.spec, targets, await observePaths(s, input.spec, targets));
        return { changes: before.changes, findings: [], controls: after.controls };
      });
    },

    /** Restarts the consumer so it opens its repaired data afresh, and waits until it serves. */
    async restartMemoryConsumer(input: StepInput): Promise<MemoryStepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const targets = await observeTargets(s, input.spec);
        if (!targets.consumer) {
          const finding: Finding = {
            id: 'memory.no-consumer',
            severity: 'medium',
            message: `no container to restart for ${consumerLabel(input.spec, undefined)}`,
          };
          return { changes: [], findings: [finding], controls: [] };
        }
        const key = targets.adapter === 'rest' ? await restApiKey(s.target.name, input.spec) : undefined;
        const ms = await restartConsumer(s, input.spec, targets, key);
        const change: Change = {
          resource: `container:${targets.consumer.name}`,
          action: 'restart',
          after: { reason: 'memory repair', seconds: +(ms / 1000).toFixed(1) },
        };
        return { changes: [change], findings: [], controls: [] };
      });
    },

    /**
     * The canary proof through the spec's adapter, the history switch, the dimension check, and the databases on
     * disk afterwards. Writes one canary and deletes it; stale canaries of an interrupted run are removed first.
     */
    async proveMemoryCanary(input: StepInput): Promise<MemoryStepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const spec = input.spec;
        const targets = await observeTargets(s, spec);
        const key = targets.adapter === 'rest' ? await restApiKey(s.target.name, spec) : undefined;
        const user = spec.stack.memory.probeUser;
        const request: ProofRequest = {
          op: 'canary',
          userId: user,
          prefix: CANARY_PREFIX,
          text: canaryText(randomUUID(), 'canary'),
        };
        const report = await runProof(s, spec, targets, request, key);
        const vectorDb = targets.databases.find((d) => d.role === 'vector-db')?.hostPath;
        const stored = vectorDb ? await storedDimensions(s, vectorDb) : undefined;
        const controls = [
          ...canaryControls(report, user),
          historyControl(report),
          dimensionControl(spec, targets.adapter === 'rest' && !vectorDb ? undefined : report, stored),
          ...(targets.adapter === 'openclaw-plugin' ? await onDiskControls(s, targets) : []),
        ];
        const findings: Finding[] = report.warnings.slice(0, 5).map((w) => ({
          id: 'memory.mem0-warning',
          severity: 'info',
          message: `mem0: ${w}`,
        }));
        return { changes: [], findings, controls };
      });
    },

    /**
     * Writes a canary and reads it back where only persisted data can be: by default in a fresh container of the
     * gateway's image with its volumes (no restart: a scheduled check never takes the agent down); with
     * `restartProof` after a restart of the consumer. The REST adapter has only the restart proof. Not run when the
     * spec turns the proof off, or for a REST server without a named container.
     */
    async proveMemoryPersistence(input: PersistenceInput): Promise<MemoryStepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const spec = input.spec;
        const targets = await observeTargets(s, spec);
        const restart = input.restartProof === true;
        const expected = restart ? 'a canary survives a restart of the consumer' : 'a canary survives outside it';
        const only = (observed: string, pass: boolean, note?: string, status?: 'na') => ({
          changes: [],
          findings: [],
          controls: [control('memory.persistence', expected, observed, pass, note, status)],
        });
        if (!spec.stack.memory.check.persistence) {
          return only('turned off', true, 'stack.memory.check.persistence: false', 'na');
        }
        if (!targets.consumer) {
          return targets.adapter === 'rest'
            ? only('no container named (stack.memory.check.rest.container)', true, undefined, 'na')
            : only('no gateway container', false);
        }
        if (targets.adapter === 'rest' && !restart) {
          return only(
            'not proven: a REST server is proven across a restart, which a check does not do unasked',
            true,
            'memory check --restart-proof',
            'na',
          );
        }
        const place = restart ? undefined : freshPlace(spec, targets.consumer);
        if (place && 'error' in place) return only(place.error, false);
        const key = targets.adapter === 'rest' ? await restApiKey(s.target.name, spec) : undefined;
        const started = performance.now();
        const text = canaryText(randomUUID(), 'persistence');
        const base = { userId: spec.stack.memory.probeUser, prefix: CANARY_PREFIX, text };
        const before = await runProof(s, spec, targets, { op: 'write', ...base }, key);
        const id = before.steps.find((x) => x.step === 'write' && x.ok)?.detail?.id;
        let after: ProofReport | undefined;
        let proof: PersistenceProof = { kind: restart ? 'restart' : 'fresh' };
        if (typeof id === 'string' && place) {
          const t = performance.now();
          after = await runProof(s, spec, targets, { op: 'readback', id, ...base }, key, place);
          proof = { kind: 'fresh', ms: performance.now() - t };
        } else if (typeof id === 'string') {
          try {
            proof = { kind: 'restart', ms: await restartConsumer(s, spec, targets, key) };
          } catch (err) {
            if (!(err instanceof StackUnhealthy || err instanceof ConsumerUnavailable)) throw err;
            proof = { kind: 'restart', error: err.message };
          }
          if (!proof.error) {
            const again = await observeTargets(s, spec);
            after = await runProof(s, spec, again, { op: 'readback', id, ...base }, key);
          }
        }
        const name = consumerLabel(spec, targets.consumer);
        const result = persistenceControl(name, before, after, proof, performance.now() - started);
        return { changes: [], findings: [], controls: [result] };
      });
    },
  };
}
