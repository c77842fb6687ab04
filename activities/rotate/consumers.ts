/**
 * Bringing a secret's consumers to the live value: the gateway reads its secret files through bind mounts, which keep
 * the file they were made with — after the live file is renamed over, only a container restart (a new mount) sees the
 * new value. Variables from the env file need the container recreated. Both wait until the stack is healthy again.
 */
import { COMPOSE_PROJECT, GATEWAY_SERVICE, PROXY_SERVICE, stackLayout } from '../../spec/render/stack';
import { secretConsumers } from '../../spec/rotation';
import type { Spec } from '../../spec/schema';
import type { Change } from '../../spec/report';
import { ensureEnvFile } from '../deploy/secrets';
import { observeContainers, StackUnhealthyError, waitHealthy, type ObservedContainer } from '../deploy/stack';
import type { HostSession } from '../host/session';
import { sh } from '../host/shell';

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

/**
 * Restarts (or recreates) the gateway so it reads the live value, then waits until the stack is healthy.
 * @throws StackUnhealthyError when the gateway does not turn healthy within the spec's health timeout.
 */
export async function reloadConsumers(
  session: HostSession,
  spec: Spec,
  secret: string,
  tick: () => void,
): Promise<Change[]> {
  const consumers = secretConsumers(spec, secret);
  if (consumers.length === 0) return [];
  const recreate = consumers.some((c) => c.apply === 'recreate');
  const live = await observeContainers(session);
  const gateway = live.get(GATEWAY_SERVICE);
  const layout = stackLayout(spec);
  if (recreate || !gateway) {
    const argv = ['docker-compose', '--no-ansi', '-p', COMPOSE_PROJECT, '-f', layout.composeFile, 'up', '-d'];
    await session.check(sh([...argv, '--no-deps', '--force-recreate', GATEWAY_SERVICE]), {
      label: 'recreate the gateway',
      timeoutMs: 300_000,
      onOutput: tick,
    });
  } else {
    await session.check(sh(['docker', 'restart', '-t', String(STOP_GRACE_SECONDS), gateway.id]), {
      label: 'restart the gateway',
      timeoutMs: (STOP_GRACE_SECONDS + 120) * 1000,
      onOutput: tick,
    });
  }
  await waitStackHealthy(session, spec, tick);
  return [
    {
      resource: `container:${GATEWAY_SERVICE}`,
      action: 'restart',
      after: { reason: `secret ${secret} rotated`, how: recreate || !gateway ? 'recreated' : 'restarted' },
    },
  ];
}

/**
 * Waits until the gateway and the proxy are running and healthy. Patient: a gateway that is `unhealthy` while it
 * starts on a busy host often turns healthy, so only the spec's health timeout or a crash loop ends the wait early.
 * @throws StackUnhealthyError naming each service's state and the tail of its log.
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

export { StackUnhealthyError };
