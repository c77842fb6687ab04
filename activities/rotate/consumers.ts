/**
 * Bringing a secret's consumers to the live value. The gateway reads its secret files through bind mounts of the
 * files steward rewrites in place, so the container sees a new value at once; what the running process uses changes:
 * - on `openclaw secrets reload` for the files it reads through a SecretRef (the gateway token, the OpenRouter key):
 *   no restart, no dropped connection but the shared-token ones, which reconnect;
 * - on a restart for other files, or when the reload cannot run (no CLI in the image, a mount that still holds an
 *   older file);
 * - on a recreate for variables from the env file.
 * Each waits until the stack is healthy again; after a reload, until a health check that started after it passed.
 */
import { randomBytes } from 'node:crypto';
import { COMPOSE_PROJECT, GATEWAY_SERVICE, PROXY_SERVICE, stackLayout } from '../../model/render/stack';
import { isGatewayToken, secretConsumers, type SecretApply } from '../../model/rotation';
import type { Spec } from '../../model/schema';
import type { Change } from '../../model/report';
import { heartbeat } from '../context';
import { ensureEnvFile } from '../deploy/secrets';
import {
  forceRecreate,
  observeContainers,
  restartInPlace,
  StackUnhealthy,
  waitHealthy,
  type ObservedContainer,
} from '../deploy/stack';
import type { HostSession } from '../host/session';
import { run, sh } from '../host/shell';
import { observeSecret, versionPath, type ObservedSecret } from './host';

/** Seconds the gateway gets to drain on a restart (its compose `stop_grace_period`). */
const STOP_GRACE_SECONDS = 60;

/** Whether the secret reaches the gateway as a variable, so the env file must be rebuilt after a switch. */
export function deliveredAsEnv(spec: Spec, secret: string): boolean {
  return secretConsumers(spec, secret).some((c) => c.delivery === 'env');
}

/** Rebuilds the gateway's env file from the live secret files (on the host) when the secret is delivered in it. */
export async function refreshEnvFile(session: HostSession, spec: Spec, secret: string): Promise<Change[]> {
  return deliveredAsEnv(spec, secret) ? ensureEnvFile(session, spec, 'apply') : [];
}

/** How the gateway takes a new value of `secret`: the strongest of its consumers' ways (recreate > restart > reload). */
export function applyOf(spec: Spec, secret: string): SecretApply | undefined {
  const ways = new Set(secretConsumers(spec, secret).map((c) => c.apply));
  return (['recreate', 'restart', 'reload'] as const).find((w) => ways.has(w));
}

/**
 * Whether the live file is rewritten in place rather than replaced by a rename: for a gateway that reloads it or
 * restarts in place, whose bind mount must show the new content to the same container. Only a recreated container
 * (a value delivered as a variable) mounts the path afresh.
 */
export function switchesInPlace(spec: Spec, secret: string): boolean {
  return applyOf(spec, secret) !== 'recreate';
}

/** What `openclaw secrets reload` answered: ok, refused every token it was given, or failed otherwise. */
export type ReloadOutcome =
  | { readonly outcome: 'reloaded'; readonly since: string }
  | { readonly outcome: 'unauthorized' }
  | { readonly outcome: 'failed'; readonly reason: string };

const RELOAD_TIMEOUT_MS = 30_000;

/**
 * The script that asks the running gateway to re-read its SecretRefs, authenticated with the token in the first of
 * `authFiles` (host paths) it accepts. A token goes to the CLI on stdin and through its environment inside the
 * container, never on a command line; the URL in the environment makes the CLI prefer that token over the one its
 * config names (the live file, which may already hold a value the gateway does not know yet). Prints the engine's
 * clock before the reload, then per token `<nonce> <rc>` and the tail of the CLI's output (which the container
 * writes, so only the nonce marks steward's own lines).
 */
export function reloadScript(spec: Spec, authFiles: readonly string[], nonce: string): string {
  if (!/^[0-9a-f]{16,}$/.test(nonce)) throw new Error('reload nonce must be hex');
  const inner = [
    'IFS= read -r t || [ -n "$t" ]',
    `OPENCLAW_GATEWAY_URL=${run(`ws://127.0.0.1:${spec.stack.gateway.port}`)} OPENCLAW_GATEWAY_TOKEN="$t" exec openclaw secrets reload --json --timeout ${RELOAD_TIMEOUT_MS}`,
  ].join('; ');
  const user = `${spec.stack.uid}:${spec.stack.gid}`;
  return [
    'set -u',
    `id=$(docker ps -q --filter ${run(`label=com.docker.compose.project=${COMPOSE_PROJECT}`)} --filter ${run(`label=com.docker.compose.service=${GATEWAY_SERVICE}`)} | head -n1)`,
    `[ -n "$id" ] || { echo "${nonce} none"; exit 0; }`,
    `echo "${nonce} since $(date -u +%Y-%m-%dT%H:%M:%S.%NZ)"`,
    `for f in ${authFiles.map((f) => run(f)).join(' ')}; do`,
    '  [ -f "$f" ] || continue',
    `  out=$(docker exec -i -u ${run(user)} "$id" sh -c ${run(inner)} < "$f" 2>&1); rc=$?`,
    `  echo "${nonce} rc $rc"`,
    `  printf '%s\\n' "$out" | tail -n 8 | cut -c1-300`,
    '  case "$out" in *"token mismatch"*|*AUTH_TOKEN_MISMATCH*) continue ;; esac',
    '  exit 0',
    'done',
  ].join('\n');
}

/** Reads what {@link reloadScript} printed; undefined when no gateway container runs. */
export function parseReload(stdout: string, nonce: string): ReloadOutcome | undefined {
  const lines = stdout.split('\n');
  if (lines.includes(`${nonce} none`)) return undefined;
  const since = lines
    .find((l) => l.startsWith(`${nonce} since `))
    ?.slice(nonce.length + 7)
    .trim();
  const marks = lines.flatMap((l, i) => (new RegExp(`^${nonce} rc \\d+$`).test(l) ? [i] : []));
  const last = marks[marks.length - 1];
  if (!since || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z$/.test(since)) {
    return { outcome: 'failed', reason: 'the host printed no reload result' };
  }
  if (last === undefined) return { outcome: 'failed', reason: 'no token file to authenticate with' };
  const rc = Number(lines[last]!.split(' ')[2]);
  const out = lines
    .slice(last + 1)
    .join('\n')
    .trim();
  if (/token mismatch|AUTH_TOKEN_MISMATCH/.test(out)) return { outcome: 'unauthorized' };
  if (rc === 0 && /"ok"\s*:\s*true/.test(out)) return { outcome: 'reloaded', since };
  return {
    outcome: 'failed',
    reason: `exit ${rc}: ${out.split('\n').slice(-2).join(' ').slice(0, 300) || 'no output'}`,
  };
}

/**
 * Has the running gateway re-read its SecretRef files, then waits until a health check that started after the reload
 * passed. Returns why not instead when no gateway runs, the gateway refused every token in `authFiles`, or the reload
 * failed (the caller restarts then: a restart reads the live file whatever the gateway holds).
 * @throws StackUnhealthy when the gateway does not pass a health check after the reload in time.
 */
export async function reloadGateway(
  session: HostSession,
  spec: Spec,
  secret: string,
  authFiles: readonly string[],
  tick: () => void,
): Promise<{ changes: Change[] } | { instead: string }> {
  const nonce = randomBytes(12).toString('hex');
  const r = await session.script(reloadScript(spec, authFiles, nonce), {
    timeoutMs: (RELOAD_TIMEOUT_MS + 30_000) * Math.max(1, authFiles.length),
    onOutput: tick,
  });
  const outcome = parseReload(r.stdout, nonce);
  if (!outcome) return { instead: 'no gateway container runs' };
  if (outcome.outcome === 'unauthorized') return { instead: 'the gateway accepted no token steward holds for it' };
  if (outcome.outcome === 'failed') return { instead: `secrets reload failed (${outcome.reason})` };
  await waitHealthy(session, [GATEWAY_SERVICE, PROXY_SERVICE], spec.stack.healthTimeoutSeconds, tick, {
    patient: true,
    checkedAfter: { [GATEWAY_SERVICE]: outcome.since },
  });
  return {
    changes: [
      {
        resource: `container:${GATEWAY_SERVICE}`,
        action: 'reload',
        after: { reason: `secret ${secret} rotated`, how: 'openclaw secrets reload' },
      },
    ],
  };
}

/**
 * Restarts (or recreates) the gateway so it reads the live value, then waits until the stack is healthy.
 * @throws StackUnhealthy when the gateway does not turn healthy within the spec's health timeout.
 */
export async function reloadConsumers(
  session: HostSession,
  spec: Spec,
  secret: string,
  tick: () => void,
  why?: string,
): Promise<Change[]> {
  const consumers = secretConsumers(spec, secret);
  if (consumers.length === 0) return [];
  const recreate = consumers.some((c) => c.apply === 'recreate');
  const live = await observeContainers(session);
  const gateway = live.get(GATEWAY_SERVICE);
  const layout = stackLayout(spec);
  // An in-place restart reads the files the container's mounts show: only when they show the live one.
  const mountCurrent = async () => {
    const view = await observeSecret(session, spec, secret);
    return view.live !== undefined && view.consumer === view.live;
  };
  let how: string;
  let engineRestart: string | undefined;
  if (recreate || !gateway) {
    await forceRecreate(session, layout, GATEWAY_SERVICE, tick);
    how = 'recreated';
  } else {
    const inPlace = async () => {
      const r = await restartInPlace(session, spec, gateway, spec.stack.healthTimeoutSeconds, tick);
      return r === 'restarted'
        ? undefined
        : r === 'not-back'
          ? 'the gateway did not answer again after SIGUSR2'
          : 'the gateway did not restart on SIGUSR2';
    };
    engineRestart =
      gateway.status !== 'running'
        ? `the gateway is ${gateway.status}`
        : !(await mountCurrent())
          ? "the container's mount holds an older file"
          : await inPlace();
    if (engineRestart) {
      await session.check(sh(['docker', 'restart', '-t', String(STOP_GRACE_SECONDS), gateway.id]), {
        label: 'restart the gateway',
        timeoutMs: (STOP_GRACE_SECONDS + 120) * 1000,
        onOutput: tick,
      });
    }
    how = engineRestart ? 'restarted' : 'restarted in place (SIGUSR2)';
  }
  await waitStackHealthy(session, spec, tick);
  return [
    {
      resource: `container:${GATEWAY_SERVICE}`,
      action: 'restart',
      after: {
        reason: `secret ${secret} rotated`,
        how,
        ...(why ? { instead: why } : {}),
        ...(engineRestart ? { notInPlace: engineRestart } : {}),
      },
    },
  ];
}

/**
 * Waits until the gateway and the proxy are running and healthy. Patient: a gateway that is `unhealthy` while it
 * starts on a busy host often turns healthy, so only the spec's health timeout or a crash loop ends the wait early.
 * @throws StackUnhealthy naming each service's state and the tail of its log.
 */
export function waitStackHealthy(
  session: HostSession,
  spec: Spec,
  tick: () => void,
): Promise<Map<string, ObservedContainer>> {
  return waitHealthy(session, [GATEWAY_SERVICE, PROXY_SERVICE], spec.stack.healthTimeoutSeconds, tick, {
    patient: true,
  });
}

/**
 * The token files a reload of `secret` can authenticate with, in the order to try them: for the gateway token, the
 * given versions; for another secret, the gateway's live token file.
 */
export function reloadAuth(spec: Spec, secret: string, versions: readonly string[]): string[] {
  if (isGatewayToken(spec, secret)) return versions.map((v) => versionPath(spec, secret, v));
  return [`${stackLayout(spec).secretsDir}/${spec.stack.gateway.tokenSecret}`];
}

/**
 * Brings the gateway to the live value `want`. A secret it reloads: once the container's mount shows `want`, an
 * `openclaw secrets reload` (when `needed`), else a restart. Any other: a restart (or recreate) when it reads
 * something else or when the live file just changed under it. Otherwise it only waits until the stack is healthy.
 */
export async function bringConsumers(
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

export { StackUnhealthy };
