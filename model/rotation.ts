/**
 * Secret rotation, as the spec describes it: which secrets can rotate, who consumes each and how a new value reaches
 * them, the rotation intervals (for `rotate --due` and the schedules), version ids and workflow ids. Pure: the
 * workflows, the activities and the CLI share it.
 *
 * A secret's versions carry stages as in AWS Secrets Manager: `pending` (created, maybe live, not yet proven),
 * `current` (proven, what the host serves) and `previous` (the one before, kept for rollback).
 */
import { GATEWAY_SERVICE, reloadableSecret, secretDeliveries } from './render/stack';
import type { Spec } from './schema';
import { compactTime } from './ids';
import { durationMs } from './units';

export type SecretStage = 'pending' | 'current' | 'previous';

/** How one consumer reads a secret and takes a new value. */
export interface SecretConsumer {
  readonly service: string;
  readonly delivery: 'file' | 'env';
  /** The file inside the container (file delivery). */
  readonly path?: string;
  /** The variable in the container's environment (env delivery). */
  readonly variable?: string;
  /**
   * `reload`: the running gateway re-reads its SecretRef files (`openclaw secrets reload`), no restart; `restart`
   * re-reads bind-mounted files; `recreate` also re-reads env files.
   */
  readonly apply: SecretApply;
}

export type SecretApply = 'reload' | 'restart' | 'recreate';

/** Secrets the stack consumes, in a stable order: the ones rotation can replace. */
export function rotatableSecrets(spec: Spec): string[] {
  return [...new Set(secretDeliveries(spec).map((d) => d.secret))].sort();
}

/**
 * The consumers of `secret`: as the spec lists them, else the gateway (reloaded for a SecretRef file, restarted for
 * another file, recreated for an env variable). A secret delivered both ways is read both ways; `recreate` then
 * wins, since a restart misses env files.
 */
export function secretConsumers(spec: Spec, secret: string): SecretConsumer[] {
  const deliveries = secretDeliveries(spec).filter((d) => d.secret === secret);
  if (deliveries.length === 0) return [];
  const apply =
    spec.secrets[secret]?.consumers?.find((c) => c.service === GATEWAY_SERVICE)?.apply ??
    (deliveries.some((d) => d.kind === 'env') ? 'recreate' : reloadableSecret(spec, secret) ? 'reload' : 'restart');
  return deliveries.map((d) =>
    d.kind === 'file'
      ? { service: GATEWAY_SERVICE, delivery: 'file', path: d.path, apply }
      : { service: GATEWAY_SERVICE, delivery: 'env', variable: d.variable, apply },
  );
}

/** Whether rotation can prove the new value authenticates and the old one is refused: the gateway token. */
export function isGatewayToken(spec: Spec, secret: string): boolean {
  return spec.stack.gateway.tokenSecret === secret;
}

/** Whether the secret is the enabled Telegram bot's token: rotation proves it with the channel's getMe. */
export function isTelegramToken(spec: Spec, secret: string): boolean {
  const t = spec.stack.integrations.telegram;
  return t?.enabled === true && t.botTokenSecret === secret;
}

export interface RotationSchedule {
  readonly secret: string;
  readonly every: string;
  readonly everyMs: number;
}

/** Every consumed secret with a `rotateEvery`: what the rotation schedule runs `rotate --due` for. */
export function rotationSchedules(spec: Spec): RotationSchedule[] {
  return rotatableSecrets(spec).flatMap((secret) => {
    const every = spec.secrets[secret]?.rotateEvery;
    return every ? [{ secret, every, everyMs: durationMs(every) }] : [];
  });
}

/** When a secret last rotated at `rotatedAt` is due again; undefined when it has no interval. */
export function nextRotationDue(spec: Spec, secret: string, rotatedAt: string | undefined): Date | undefined {
  const every = spec.secrets[secret]?.rotateEvery;
  if (!every) return undefined;
  if (!rotatedAt) return new Date(0);
  return new Date(Date.parse(rotatedAt) + durationMs(every));
}

/** A version id: a timestamp and random hex, safe in file names and workflow histories (it reveals nothing). */
export const VERSION_ID = /^v[0-9]{8}T[0-9]{6}Z-[0-9a-f]{8}$/;

/** Builds a version id from a time and 8 hex digits (workflows pass their deterministic clock and uuid). */
export function versionId(at: Date, hex: string): string {
  const id = `v${compactTime(at)}-${hex.replace(/[^0-9a-f]/g, '').slice(0, 8)}`;
  if (!VERSION_ID.test(id)) throw new Error(`cannot build a version id from ${hex}`);
  return id;
}

/** Error types (activities/rotate/errors.ts, the version store, the codec keys) no retry of a rotation step fixes. */
export const ROTATION_NON_RETRYABLE = [
  'SecretNotRotatable',
  'SecretMissingOnHost',
  'SecretUnchanged',
  'RotationStateInvalid',
  'SecretStoreUnreadable',
  'CodecKeyError',
];
