/**
 * Secret rotation on one host, in AWS Secrets Manager's four phases plus the way back:
 *
 *   inspectSecret   reconcile the version store with the host (adopt a live value it does not know; find a pending
 *                   version an interrupted run left)
 *   createSecret    a pending version beside the current one: generated on the host, or the operator's new value
 *   setSecret       switch the live file to it atomically, then restart/recreate the consumer and wait until healthy
 *   testSecret      the consumer is healthy and reads the new version; for the gateway token, a WebSocket `connect`
 *                   with the new value is accepted and one with the old value refused
 *   finishSecret    promote: pending → current, current → previous; prune older version files
 *   rollbackSecret  switch back to current, restart the consumer, drop the pending version
 *
 * Only version ids travel through the workflow (and its history); values stay on the host (generated) or in the
 * worker and its encrypted version store (external). Every step is idempotent: a retry after a worker crash observes
 * the host and the store and carries on from where they are.
 */
import { createHash, randomBytes } from 'node:crypto';
import { GATEWAY_SERVICE, stackLayout } from '../model/render/stack';
import type { Change, ControlResult, Finding } from '../model/report';
import { isGatewayToken, nextRotationDue, secretConsumers, versionId as makeVersionId } from '../model/rotation';
import type { Spec } from '../model/schema';
import { activityStep, heartbeat, targetOf, type ActivityDeps, type StepInput, type StepResult } from './context';
import { resolveExternal, sourceLabel } from './deploy/secrets';
import { containerState, observeContainers } from './deploy/stack';
import {
  describeOutcome,
  outsideAddress,
  probeGatewayAuth,
  type AuthProbeResult,
  type ProbeOutcome,
} from './deploy/verify';
import { VerificationFailed } from './host/errors';
import type { HostSession } from './host/session';
import { run } from './host/shell';
import { secretRedactor } from './redact';
import { applyOf, refreshEnvFile, reloadConsumers, reloadGateway, waitStackHealthy } from './rotate/consumers';
import { RotationStateInvalid, SecretMissingOnHost, SecretNotRotatable, SecretUnchanged } from './rotate/errors';
import {
  generateVersion,
  keepLiveAs,
  observeSecret,
  removeVersions,
  switchLive,
  versionPath,
  writeVersion,
  type ObservedSecret,
} from './rotate/host';
import { lazyStore, staged, type SecretRecord, type SecretStore, type SecretVersion } from './secrets-store';

/** Input of a rotation step: the host step input, the secret, and the version the step works on. */
export interface RotateStepInput extends StepInput {
  readonly secret: string;
  readonly versionId?: string;
  /** `rotate --due`: inspect reports whether the interval has passed. */
  readonly due?: boolean;
  /** Why a rollback happens (a failure message, already scrubbed). */
  readonly reason?: string;
}

/** Where a secret stands, by version ids. */
export interface SecretState {
  readonly current?: string;
  readonly previous?: string;
  /** A pending version, and whether the host's live file already is it (an interrupted run switched it). */
  readonly pending?: { readonly id: string; readonly live: boolean };
  readonly rotatedAt?: string;
  /** When the next rotation is due (`rotateEvery`); absent without an interval. */
  readonly nextDue?: string;
  /** False only for `rotate --due` when the interval has not passed. */
  readonly due: boolean;
}

export interface InspectSecretResult extends StepResult {
  readonly state: SecretState;
}

export interface CreateSecretResult extends StepResult {
  readonly versionId: string;
  /** The current version the new one replaces. */
  readonly replaces: string;
}

export interface TestSecretResult extends StepResult {
  readonly controls: ControlResult[];
}

export interface RollbackSecretResult extends StepResult {
  /** Whether the live file had to be switched back. */
  readonly restored: boolean;
  /** For the gateway token, once it went live: the restored value authenticates again. */
  readonly controls: ControlResult[];
  readonly current?: string;
}

export interface RotateDeps extends ActivityDeps {
  /** The version store; default {@link SecretStore.fromEnv}, opened on first use. */
  readonly secretStore?: SecretStore;
}

/**
 * How long the WebSocket checks retry while the gateway gives no clear answer: just restarted, it may refuse every
 * `connect` with a retryable UNAVAILABLE (startup sidecars still loading) although its health check passes.
 */
const PROBE_PATIENCE_MS = 120_000;
const PROBE_RETRY_MS = 5_000;

const now = () => new Date().toISOString();
const sha256 = (value: string) => createHash('sha256').update(value).digest('hex');

export function createRotateActivities({ pool, secretStore }: RotateDeps) {
  const store = lazyStore(secretStore);

  /** The session, the spec, and the store record of the input's host and secret; fingerprints go to the redactor. */
  const open = async (input: RotateStepInput) => {
    const { spec, host, secret } = input;
    if (!spec.secrets[secret] || secretConsumers(spec, secret).length === 0) {
      throw new SecretNotRotatable(
        host,
        `secret ${secret} is ${spec.secrets[secret] ? 'not consumed by the stack' : 'not declared under secrets'}; nothing on the host reads it`,
      );
    }
    const [session, st] = await Promise.all([pool.get(targetOf(input)), store()]);
    let record = await st.read(host, secret);
    // The shape of a generated secret goes into its record, for every later worker's redactor (SecretStore.preload).
    const generate = spec.secrets[secret]!.generate;
    const shape = generate && { length: generate.length, alphabet: generate.alphabet };
    if (shape && input.mode === 'apply' && JSON.stringify(record.shape) !== JSON.stringify(shape)) {
      record = await st.update(host, secret, (r) => ({ ...r, shape }));
    }
    remember(
      spec,
      secret,
      record.versions.flatMap((v) => (v.sha256 ? [v.sha256] : [])),
    );
    return { session, spec, st, record };
  };

  return {
    /**
     * Reconciles the version store with the host: a live value the store does not know (first rotation, or a deploy
     * wrote a new external value) is kept as a version and becomes current; the current version's file is kept
     * beside the live one; a pending version is reported with whether it is already live. In plan mode it only
     * reports. Safe to retry.
     * @throws SecretMissingOnHost when the host has no live file (deploy first).
     */
    async inspectSecret(input: RotateStepInput): Promise<InspectSecretResult> {
      return activityStep(async () => {
        const { session, spec, st, record } = await open(input);
        const { host, secret } = input;
        const observed = await observeSecret(session, spec, secret);
        const generate = spec.secrets[secret]!.generate;
        if (generate && input.mode === 'apply')
          await st.keepFingerprints(host, secret, generate, observed.fingerprints);
        if (!observed.live) {
          throw new SecretMissingOnHost(host, `${secret} has no live file on the host; deploy the stack first`);
        }
        const changes: Change[] = [];
        const findings: Finding[] = [];
        let next = record;
        const pending = staged(record, 'pending');
        const known = record.versions.find((v) => v.stages.length > 0 && v.sha256 === observed.live);
        if (!known) {
          // The live value is not a version the store knows: keep it as the current version.
          const id = makeVersionId(new Date(), randomBytes(4).toString('hex'));
          const before = staged(record, 'current')?.id;
          changes.push({
            resource: `secret:${secret}`,
            action: 'update',
            ...(before ? { before: { current: before } } : {}),
            after: { current: id, adopted: 'the live value on the host' },
          });
          if (input.mode === 'apply') {
            next = await st.update(host, secret, (r) => adopt(r, id, observed.live!));
            await keepLiveAs(session, spec, secret, id);
          }
        } else if (known.stages.includes('current') && !observed.versions.has(known.id) && input.mode === 'apply') {
          await keepLiveAs(session, spec, secret, known.id);
        } else if (known.stages.includes('previous')) {
          findings.push({
            id: 'secret.live-is-previous',
            severity: 'medium',
            message: `${secret}: the host serves the previous version ${known.id}, not the current one; it is kept as current`,
            resource: `secret:${secret}`,
          });
          if (input.mode === 'apply') next = await st.update(host, secret, (r) => promoteLive(r, known.id));
        }
        const current = staged(next, 'current');
        const nextDue = nextRotationDue(spec, secret, next.rotatedAt);
        const state: SecretState = {
          ...(current ? { current: current.id } : {}),
          ...(staged(next, 'previous') ? { previous: staged(next, 'previous')!.id } : {}),
          ...(pending
            ? { pending: { id: pending.id, live: !!pending.sha256 && pending.sha256 === observed.live } }
            : {}),
          ...(next.rotatedAt ? { rotatedAt: next.rotatedAt } : {}),
          ...(nextDue ? { nextDue: nextDue.toISOString() } : {}),
          due: !input.due || (nextDue !== undefined && nextDue.getTime() <= Date.now()),
        };
        if (pending) {
          findings.push({
            id: 'secret.pending-found',
            severity: 'medium',
            message: `${secret}: pending version ${pending.id} left by an interrupted rotation is ${state.pending?.live ? 'live; this run tests and finishes it, or rolls it back' : 'not live; this run discards it'}`,
            resource: `secret:${secret}`,
          });
        }
        if (input.mode === 'plan') {
          const apply = applyOf(spec, secret);
          findings.push({
            id: 'secret.apply',
            severity: 'info',
            message: `${secret}: a rotation brings the gateway to the new value by ${
              apply === 'reload'
                ? 'a reload (openclaw secrets reload), without a restart'
                : apply === 'recreate'
                  ? 'recreating its container (the value is a variable)'
                  : 'restarting it (it reads the file only when it starts)'
            }`,
            resource: `secret:${secret}`,
          });
        }
        if (input.due && !state.due) {
          findings.push({
            id: 'secret.not-due',
            severity: 'info',
            message: nextDue
              ? `${secret}: next rotation due ${nextDue.toISOString()} (every ${spec.secrets[secret]!.rotateEvery})`
              : `${secret}: no rotateEvery in the spec; --due never rotates it`,
            resource: `secret:${secret}`,
          });
        }
        return { changes, findings, state };
      });
    },

    /**
     * Creates version `versionId` as pending, beside the current one: generated on the host, or the external
     * source's value written over SSH stdin. The live file does not change. Safe to retry with the same id.
     * @throws SecretUnchanged when an external source still gives the current value.
     */
    async createSecret(input: RotateStepInput): Promise<CreateSecretResult> {
      return activityStep(async () => {
        const { session, spec, st, record } = await open(input);
        const { host, secret } = input;
        const id = requireVersion(input);
        const current = staged(record, 'current');
        if (!current?.sha256)
          throw new RotationStateInvalid(host, `${secret} has no current version; inspect it first`);
        let pending = staged(record, 'pending');
        if (pending && pending.id !== id) {
          throw new RotationStateInvalid(host, `${secret} already has pending version ${pending.id}; resolve it first`);
        }
        const definition = spec.secrets[secret]!;
        if (!pending) {
          let value: string | undefined;
          if (definition.external) {
            value = await resolveExternal(host, secret, definition);
            if (sha256(value) === current.sha256) {
              throw new SecretUnchanged(
                host,
                `secrets.${secret}: ${sourceLabel(definition)} still gives the current value; put the new value there, then rotate`,
              );
            }
          }
          const version: SecretVersion = {
            id,
            createdAt: now(),
            origin: definition.external ? 'external' : 'generated',
            stages: ['pending'],
            ...(value !== undefined ? { value, sha256: sha256(value) } : {}),
          };
          const updated = await st.update(host, secret, (r) => ({ ...r, versions: [...r.versions, version] }));
          pending = staged(updated, 'pending')!;
        }
        let sha: string;
        if (definition.generate) {
          const made = await generateVersion(session, spec, secret, id);
          await st.keepFingerprints(host, secret, definition.generate, [made]);
          sha = made.sha256;
        } else {
          const value = pending.value;
          if (value === undefined)
            throw new RotationStateInvalid(host, `pending version ${id} of ${secret} lost its value`);
          await writeVersion(session, spec, secret, id, value);
          sha = sha256(value);
          const observed = await observeSecret(session, spec, secret);
          if (observed.versions.get(id) !== sha) throw new VerificationFailed(host, [`secret-version:${secret}/${id}`]);
        }
        if (sha === current.sha256) {
          throw new RotationStateInvalid(host, `new version ${id} of ${secret} equals the current one`);
        }
        if (pending.sha256 !== sha) {
          await st.update(host, secret, (r) => withVersion(r, id, (v) => ({ ...v, sha256: sha })));
        }
        return {
          changes: [
            {
              resource: `secret:${secret}`,
              action: 'create',
              after: { version: id, stage: 'pending', origin: definition.external ? 'external' : 'generated' },
            },
          ],
          findings: [],
          versionId: id,
          replaces: current.id,
        };
      });
    },

    /**
     * Switches the live file to the pending version atomically (the current one stays beside it), rebuilds the env
     * file when the secret is a variable, then restarts or recreates the gateway unless it already reads the new
     * value, and waits until the stack is healthy. Safe to retry: a retry after a crash finds the switch made and
     * restarts only when the gateway still reads the old value.
     * @throws StackUnhealthy when the gateway does not turn healthy (the workflow rolls back).
     */
    async setSecret(input: RotateStepInput): Promise<StepResult> {
      return activityStep(async () => {
        const { session, spec, st, record } = await open(input);
        const { host, secret } = input;
        const id = requireVersion(input);
        const pending = staged(record, 'pending');
        const current = staged(record, 'current');
        if (pending?.id !== id || !pending.sha256 || !current?.sha256) {
          throw new RotationStateInvalid(host, `${secret} has no pending version ${id} to set`);
        }
        const observed = await observeSecret(session, spec, secret);
        if (observed.versions.get(id) !== pending.sha256) {
          throw new RotationStateInvalid(host, `version file ${id} of ${secret} is missing or altered on the host`);
        }
        const changes: Change[] = [];
        if (observed.live !== pending.sha256) {
          if (observed.live === current.sha256 && !observed.versions.has(current.id)) {
            await keepLiveAs(session, spec, secret, current.id);
          }
          const live = await switchLive(session, spec, secret, id, applyOf(spec, secret) === 'reload');
          if (live !== pending.sha256) throw new VerificationFailed(host, [`secret:${secret}`]);
          await st.update(host, secret, (r) => withVersion(r, id, (v) => ({ ...v, liveAt: now() })));
          changes.push({
            resource: `secret:${secret}`,
            action: 'update',
            before: { live: current.id },
            after: { live: id, stage: 'pending' },
          });
        }
        changes.push(...(await refreshEnvFile(session, spec, secret)));
        // The gateway takes the new value on a reload authenticated with the token it holds: the current one, or the
        // pending one when this is a retry after the reload.
        const auth = reloadAuth(spec, secret, [current.id, id]);
        changes.push(...(await bringConsumers(session, spec, secret, observed, pending.sha256, auth)));
        return { changes, findings: [] };
      });
    },

    /**
     * Proves the pending version: the live file is it, the gateway reads it and is healthy; for the gateway token, a
     * WebSocket `connect` through the proxy with the new value is accepted and one with the old value refused
     * (AUTH_TOKEN_MISMATCH). Changes nothing. A failing control makes the workflow roll back.
     */
    async testSecret(input: RotateStepInput): Promise<TestSecretResult> {
      return activityStep(async () => {
        const { session, spec, record } = await open(input);
        const { host, secret } = input;
        const id = requireVersion(input);
        const pending = staged(record, 'pending');
        const current = staged(record, 'current');
        if (pending?.id !== id || !pending.sha256 || !current) {
          throw new RotationStateInvalid(host, `${secret} has no pending version ${id} to test`);
        }
        const [observed, containers] = await Promise.all([
          observeSecret(session, spec, secret),
          observeContainers(session),
        ]);
        const versionOf = (sha: string | undefined) =>
          sha === undefined
            ? 'none'
            : (record.versions.find((v) => v.sha256 === sha && v.stages.length > 0)?.id ?? 'an unknown value');
        const health = containerState(containers, GATEWAY_SERVICE);
        const controls: ControlResult[] = [
          control(`secret.${secret}.live-version`, id, versionOf(observed.live), observed.live === pending.sha256),
          control(
            `secret.${secret}.consumer-version`,
            `${GATEWAY_SERVICE} reads ${id}`,
            `${GATEWAY_SERVICE} reads ${versionOf(observed.consumer)}`,
            observed.consumer === pending.sha256,
          ),
          control(`secret.${secret}.consumer-healthy`, 'running/healthy', health, health === 'running/healthy'),
        ];
        if (isGatewayToken(spec, secret)) {
          const p = await probeVersions(session, spec, secret, { new: id, old: current.id });
          const fresh = p.tokens.new;
          const old = p.tokens.old;
          controls.push(
            control(
              `secret.${secret}.new-accepted`,
              `accepted at wss://${spec.proxy.domain}${spec.proxy.websocketPath}`,
              describeOutcome(fresh),
              fresh?.outcome === 'accepted',
              `version ${id}`,
            ),
            control(
              `secret.${secret}.old-refused`,
              'refused (AUTH_TOKEN_MISMATCH)',
              describeOutcome(old),
              old?.outcome === 'refused' && old.code === 'AUTH_TOKEN_MISMATCH',
              `version ${current.id}`,
            ),
          );
        } else {
          controls.push({
            control: `secret.${secret}.old-refused`,
            expected: 'the old value refused by its issuer',
            observed: 'not tested',
            status: 'not-applicable',
            note: 'an external credential is revoked where it was issued; revoke the previous value there',
          });
        }
        return { changes: [], findings: [], controls };
      });
    },

    /**
     * Promotes the pending version: it becomes current, the current one previous (kept for rollback); older versions
     * lose their value in the store and their file on the host. Safe to retry.
     */
    async finishSecret(input: RotateStepInput): Promise<StepResult> {
      return activityStep(async () => {
        const { session, spec, st, record } = await open(input);
        const { host, secret } = input;
        const id = requireVersion(input);
        const pending = staged(record, 'pending');
        const changes: Change[] = [];
        let next = record;
        if (pending?.id === id) {
          const before = { current: staged(record, 'current')?.id, previous: staged(record, 'previous')?.id };
          next = await st.update(host, secret, (r) => promote(r, id));
          changes.push({
            resource: `secret:${secret}`,
            action: 'update',
            before,
            after: { current: id, previous: staged(next, 'previous')?.id },
          });
        } else if (staged(record, 'current')?.id !== id) {
          throw new RotationStateInvalid(host, `${secret} has no pending version ${id} to finish`);
        }
        const keep = [staged(next, 'current')!.id, ...(staged(next, 'previous') ? [staged(next, 'previous')!.id] : [])];
        const removed = await removeVersions(session, spec, secret, keep);
        for (const r of removed) changes.push({ resource: `secret-version:${secret}/${r}`, action: 'delete' });
        const due = nextRotationDue(spec, secret, next.rotatedAt);
        const findings: Finding[] = due
          ? [
              {
                id: 'secret.next-rotation',
                severity: 'info',
                message: `${secret}: next rotation due ${due.toISOString()} (every ${spec.secrets[secret]!.rotateEvery})`,
                resource: `secret:${secret}`,
              },
            ]
          : [];
        return { changes, findings };
      });
    },

    /**
     * Undoes a pending version: when the live file is it, switches back to the current version (atomically), rebuilds
     * the env file, restarts the gateway unless it already reads the current value and waits until healthy (for the
     * gateway token, until the restored value authenticates); then removes the pending version's file and marks it
     * rolled back in the store. Also discards a pending version an
     * interrupted run left that never went live. Safe to retry.
     * @throws StackUnhealthy when the gateway does not turn healthy on the restored value.
     */
    async rollbackSecret(input: RotateStepInput): Promise<RollbackSecretResult> {
      return activityStep(async () => {
        const { session, spec, st, record } = await open(input);
        const { host, secret } = input;
        const id = requireVersion(input);
        const pending = staged(record, 'pending');
        const current = staged(record, 'current');
        if (!current?.sha256) throw new RotationStateInvalid(host, `${secret} has no current version to restore`);
        const observed = await observeSecret(session, spec, secret);
        const changes: Change[] = [];
        let restored = false;
        if (observed.live !== current.sha256) {
          if (observed.versions.get(current.id) !== current.sha256) {
            throw new RotationStateInvalid(
              host,
              `cannot restore ${secret}: the file of current version ${current.id} is missing or altered`,
            );
          }
          const live = await switchLive(session, spec, secret, current.id, applyOf(spec, secret) === 'reload');
          if (live !== current.sha256) throw new VerificationFailed(host, [`secret:${secret}`]);
          restored = true;
          changes.push({
            resource: `secret:${secret}`,
            action: 'update',
            before: { live: pending?.id === id ? id : 'an unknown value' },
            after: { live: current.id, rolledBack: true },
          });
        }
        changes.push(...(await refreshEnvFile(session, spec, secret)));
        // A gateway that never restarted onto the pending value still reads the current one: no restart then. One
        // that may have reloaded onto it (it went live) reloads back, authenticated with whichever token it holds.
        const auth = reloadAuth(spec, secret, observed.versions.has(id) ? [id, current.id] : [current.id]);
        const needed = restored || !!pending?.liveAt;
        changes.push(...(await bringConsumers(session, spec, secret, observed, current.sha256, auth, needed)));
        if (observed.versions.has(id) && id !== current.id && id !== staged(record, 'previous')?.id) {
          const keep = [...observed.versions.keys()].filter((v) => v !== id);
          await removeVersions(session, spec, secret, keep);
          changes.push({ resource: `secret-version:${secret}/${id}`, action: 'delete' });
        }
        const controls: ControlResult[] = [];
        if (isGatewayToken(spec, secret) && (restored || pending?.liveAt)) {
          const p = await probeVersions(session, spec, secret, { current: current.id });
          controls.push(
            control(
              `secret.${secret}.restored-accepted`,
              'accepted',
              describeOutcome(p.tokens.current),
              p.tokens.current?.outcome === 'accepted',
              `version ${current.id}`,
            ),
          );
        }
        if (pending?.id === id) {
          const outcome = pending.liveAt || restored ? 'rolled-back' : 'discarded';
          await st.update(host, secret, (r) =>
            withVersion(r, id, (v) => ({
              ...v,
              stages: [],
              outcome,
              ...(input.reason ? { reason: secretRedactor.redact(input.reason).slice(0, 2000) } : {}),
            })),
          );
        }
        return { changes, findings: [], controls, restored, current: current.id };
      });
    },
  };
}

function requireVersion(input: RotateStepInput): string {
  if (!input.versionId) throw new Error(`${input.secret}: the step needs a version id`);
  return input.versionId;
}

/**
 * The token files a reload of `secret` can authenticate with, in the order to try them: for the gateway token, the
 * given versions; for another secret, the gateway's live token file.
 */
function reloadAuth(spec: Spec, secret: string, versions: readonly string[]): string[] {
  if (isGatewayToken(spec, secret)) return versions.map((v) => versionPath(spec, secret, v));
  return [`${stackLayout(spec).secretsDir}/${spec.stack.gateway.tokenSecret}`];
}

/**
 * Brings the gateway to the live value `want`. A secret it reloads: once the container's mount shows `want`, an
 * `openclaw secrets reload` (when `needed`), else a restart. Any other: a restart (or recreate) when it reads
 * something else or when the live file just changed under it. Otherwise it only waits until the stack is healthy.
 */
async function bringConsumers(
  session: HostSession,
  spec: Spec,
  secret: string,
  observed: ObservedSecret,
  want: string,
  auth: readonly string[],
  needed = true,
): Promise<Change[]> {
  if (applyOf(spec, secret) === 'reload') {
    if (!needed) {
      await waitStackHealthy(session, spec, heartbeat);
      return [];
    }
    // The file was rewritten in place; a mount that still shows another value holds an older file (a restart mends).
    const view = await observeSecret(session, spec, secret);
    if (view.consumer === want) {
      const r = await reloadGateway(session, spec, secret, auth, heartbeat);
      if ('changes' in r) return r.changes;
      return reloadConsumers(session, spec, secret, heartbeat, r.instead);
    }
    const why = view.consumer ? "the container's mount holds an older file" : 'no gateway container answers';
    return reloadConsumers(session, spec, secret, heartbeat, why);
  }
  if (observed.consumer === want) {
    await waitStackHealthy(session, spec, heartbeat);
    return [];
  }
  return reloadConsumers(session, spec, secret, heartbeat);
}

/** Whether a `connect` outcome is the gateway's answer about the token (not "busy starting", not a network error). */
function decisive(o: ProbeOutcome | undefined): boolean {
  return o?.outcome === 'accepted' || (o?.outcome === 'refused' && o.code !== 'UNAVAILABLE');
}

/**
 * WebSocket `connect`s through the proxy with the given versions' files, retried while the gateway gives no decisive
 * answer (for up to {@link PROBE_PATIENCE_MS}).
 */
async function probeVersions(
  session: HostSession,
  spec: Spec,
  secret: string,
  versions: Readonly<Record<string, string>>,
): Promise<AuthProbeResult> {
  const layout = stackLayout(spec);
  if (spec.proxy.tls === 'internal') {
    await session.check(`install -m 0644 ${run(layout.proxyRootCa)} ${run(`${layout.releaseDir}/proxy-ca.crt`)}`, {
      label: 'copy the proxy CA root',
    });
  }
  const address = await outsideAddress(session);
  const tokens = Object.fromEntries(
    Object.entries(versions).map(([label, id]) => [label, versionPath(spec, secret, id)]),
  );
  const deadline = Date.now() + PROBE_PATIENCE_MS;
  for (;;) {
    heartbeat();
    const result = await probeGatewayAuth(session, spec, address, { tokens });
    if (Object.keys(tokens).every((l) => decisive(result.tokens[l])) || Date.now() > deadline) return result;
    await new Promise((r) => setTimeout(r, PROBE_RETRY_MS));
  }
}

function control(id: string, expected: string, observed: string, pass: boolean, note?: string): ControlResult {
  return { control: id, expected, observed, status: pass ? 'pass' : 'fail', ...(note ? { note } : {}) };
}

/** Tells the worker's redactor how to recognise generated values of `secret` by their hashes. */
function remember(spec: Spec, secret: string, hashes: readonly string[]): void {
  const generate = spec.secrets[secret]?.generate;
  if (!generate) return;
  for (const h of hashes) secretRedactor.rememberFingerprint(secret, h, generate);
}

function withVersion(r: SecretRecord, id: string, f: (v: SecretVersion) => SecretVersion): SecretRecord {
  return { ...r, versions: r.versions.map((v) => (v.id === id ? f(v) : v)) };
}

const without = (v: SecretVersion, stage: SecretVersion['stages'][number]) => v.stages.filter((s) => s !== stage);

/** The live value becomes the current version `id`; the current one previous; the previous one deprecated. */
function adopt(r: SecretRecord, id: string, sha: string): SecretRecord {
  const hadCurrent = !!staged(r, 'current');
  const versions = r.versions.map((v): SecretVersion => {
    if (v.stages.includes('previous') && hadCurrent)
      return { ...v, stages: without(v, 'previous'), outcome: 'deprecated' };
    if (v.stages.includes('current')) return { ...v, stages: [...without(v, 'current'), 'previous'] };
    return v;
  });
  return {
    ...r,
    versions: [
      ...versions,
      { id, createdAt: now(), origin: 'adopted', sha256: sha, stages: ['current'], liveAt: now() },
    ],
  };
}

/** The previous version `id` is live again: it becomes current and the current one previous. */
function promoteLive(r: SecretRecord, id: string): SecretRecord {
  return {
    ...r,
    versions: r.versions.map((v): SecretVersion => {
      if (v.id === id) return { ...v, stages: [...without(v, 'previous'), 'current'] };
      if (v.stages.includes('current')) return { ...v, stages: [...without(v, 'current'), 'previous'] };
      return v;
    }),
  };
}

/** Pending `id` becomes current; current becomes previous; previous is deprecated. */
function promote(r: SecretRecord, id: string): SecretRecord {
  return {
    ...r,
    rotatedAt: now(),
    versions: r.versions.map((v): SecretVersion => {
      if (v.id === id) return { ...v, stages: [...without(v, 'pending'), 'current'] };
      if (v.stages.includes('current')) return { ...v, stages: [...without(v, 'current'), 'previous'] };
      if (v.stages.includes('previous')) return { ...v, stages: without(v, 'previous'), outcome: 'deprecated' };
      return v;
    }),
  };
}
