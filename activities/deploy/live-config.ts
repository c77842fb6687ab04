/**
 * Config changes the running containers take without being recreated. OpenClaw watches openclaw.json and applies a
 * valid change itself — live where it can, by an in-process restart (about 3 s) where it must — and keeps the config
 * it accepted last as openclaw.json.last-good beside it: when that holds the bytes steward wrote, the gateway took
 * them (a repeat, or a retry after the gateway already took them, is confirmed at once). Caddy loads a new Caddyfile on `caddy reload`
 * through its admin endpoint, keeping its listeners. A container that does not confirm is recreated instead, and the
 * change says so.
 */
import type { Change } from '../../model/report';
import { GATEWAY_SERVICE, PROXY_SERVICE, type StackLayout } from '../../model/render/stack';
import type { Spec } from '../../model/schema';
import type { HostSession } from '../host/session';
import { run, sh } from '../host/shell';
import { forceRecreate, observeContainers, type ObservedContainer } from './stack';
import { endProgress, reportProgress } from '../context';

/** How long the gateway may take to accept a new openclaw.json (its watcher settles, validates and applies). */
export const GATEWAY_ACCEPT_TIMEOUT_MS = 30_000;
const POLL_MS = 500;

/** Which of the files the running containers read again this change rewrote. */
export interface Rewritten {
  readonly openclawJson: boolean;
  readonly caddyfile: boolean;
}

/** What a plan says about the containers that will take a rewritten file live. */
export function plannedReloads(rewritten: Rewritten, recreated: ReadonlySet<string>): Change[] {
  const changes: Change[] = [];
  if (rewritten.openclawJson && !recreated.has(GATEWAY_SERVICE)) {
    changes.push(reload(GATEWAY_SERVICE, 'openclaw.json changed', 'OpenClaw applies it in place'));
  }
  if (rewritten.caddyfile && !recreated.has(PROXY_SERVICE)) {
    changes.push(reload(PROXY_SERVICE, 'Caddyfile changed', 'caddy reload'));
  }
  return changes;
}

function reload(service: string, reason: string, how: string): Change {
  return { resource: `container:${service}`, action: 'reload', after: { reason, how } };
}

/**
 * After the files are written and `docker-compose up` ran: each running container that was neither recreated nor
 * started by it takes its rewritten file live; one that does not confirm is recreated. Returns what happened.
 */
export async function reloadLive(
  session: HostSession,
  spec: Spec,
  layout: StackLayout,
  /** The SHA-256 of the openclaw.json written. */
  openclawDigest: string,
  rewritten: Rewritten,
  before: ReadonlyMap<string, ObservedContainer>,
  tick: () => void,
): Promise<Change[]> {
  const after = await observeContainers(session);
  const kept = (service: string) => {
    const b = before.get(service);
    const a = after.get(service);
    return b !== undefined && a !== undefined && b.id === a.id && b.status === 'running' && a.status === 'running';
  };
  const changes: Change[] = [];
  if (rewritten.openclawJson && kept(GATEWAY_SERVICE)) {
    if (reloadOff(spec)) {
      await forceRecreate(session, layout, GATEWAY_SERVICE, tick);
      changes.push(recreated(GATEWAY_SERVICE, 'openclaw.json changed and gateway.reload.mode is off'));
    } else if (await gatewayAccepted(session, layout, openclawDigest, tick)) {
      changes.push(reload(GATEWAY_SERVICE, 'openclaw.json changed', 'OpenClaw applied it in place'));
    } else {
      await forceRecreate(session, layout, GATEWAY_SERVICE, tick);
      changes.push(
        recreated(
          GATEWAY_SERVICE,
          `the gateway did not accept openclaw.json within ${GATEWAY_ACCEPT_TIMEOUT_MS / 1000} s`,
        ),
      );
    }
  }
  if (rewritten.caddyfile && kept(PROXY_SERVICE)) {
    const id = after.get(PROXY_SERVICE)!.id;
    const r = await session.script(
      sh(['docker', 'exec', id, 'caddy', 'reload', '--config', '/etc/caddy/Caddyfile', '--adapter', 'caddyfile']),
      { label: 'caddy reload', timeoutMs: 60_000 },
    );
    if (r.code === 0) {
      changes.push(reload(PROXY_SERVICE, 'Caddyfile changed', 'caddy reload'));
    } else {
      await forceRecreate(session, layout, PROXY_SERVICE, tick);
      changes.push(recreated(PROXY_SERVICE, `caddy reload exited ${r.code}`));
    }
  }
  return changes;
}

function recreated(service: string, reason: string): Change {
  return { resource: `container:${service}`, action: 'update', after: { recreated: reason } };
}

/** The operator turned OpenClaw's own reloading off in `stack.settings`. */
function reloadOff(spec: Spec): boolean {
  const settings = spec.stack.settings as { gateway?: { reload?: { mode?: unknown } } } | undefined;
  return settings?.gateway?.reload?.mode === 'off';
}

/**
 * Waits until the gateway's openclaw.json.last-good holds exactly `wanted` (a SHA-256). The file is in the container's
 * state volume: read only when it is a regular file, opened inside the timeout (a FIFO swapped in cannot hang the
 * probe); a link swapped in between the test and the open is followed only to be hashed, and only the hash returns.
 */
async function gatewayAccepted(
  session: HostSession,
  layout: StackLayout,
  wanted: string,
  tick: () => void,
): Promise<boolean> {
  const file = run(`${layout.openclawJson}.last-good`);
  const probe = `if [ -f ${file} ] && [ ! -L ${file} ]; then timeout 5 sh -c 'exec sha256sum < "$1"' sh ${file}; else echo absent; fi`;
  const started = Date.now();
  const deadline = started + GATEWAY_ACCEPT_TIMEOUT_MS;
  for (;;) {
    tick();
    const r = await session.script(probe, { label: 'openclaw.json accepted' });
    const done = r.stdout.trim().split(' ')[0] === wanted;
    if (done || Date.now() > deadline) {
      endProgress();
      return done;
    }
    reportProgress({
      doing: 'waiting for the gateway to take the new openclaw.json',
      waited: (Date.now() - started) / 1000,
      limit: GATEWAY_ACCEPT_TIMEOUT_MS / 1000,
    });
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
