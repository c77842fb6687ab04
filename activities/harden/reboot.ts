/**
 * Rebooting a host inside its reboot window: only when a reboot is pending (observed again here, so a retry after
 * the reboot changes nothing), then reconnecting once the host has booted again and verifying what must have come
 * back — systemd finished starting, and the stack's containers healthy and reachable through the proxy.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Change, ControlResult, Finding, Mode } from '../../model/report';
import type { Spec } from '../../model/schema';
import { endProgress, reportProgress } from '../context';
import { HostError, UnexpectedHostOutput } from '../host/errors';
import type { HostSession, HostTarget, SessionPool } from '../host/session';
import { GATEWAY_SERVICE, PROXY_SERVICE } from '../../model/render/stack';
import { observeContainers, waitHealthy } from '../deploy/stack';
import { verifyStack } from '../deploy/verify';

/** The most a host may take from the reboot command to answering SSH again with a new boot id. */
export const REBOOT_LIMIT_MS = 10 * 60_000;
const POLL_MS = 3_000;

/** Debian's marker (kernel and library packages write it) or needrestart's kernel status 2/3 (a newer kernel). */
const PENDING_PROBE =
  'test -e /run/reboot-required && echo marker; needrestart -b -k 2>/dev/null | sed -n "s/^NEEDRESTART-KSTA: //p"';
const BOOT_ID = 'cat /proc/sys/kernel/random/boot_id';
/**
 * Written just before the reboot, in /run (a tmpfs every boot starts empty): gone means the host booted again. The
 * kernel's boot id alone cannot tell on a host that is a container (it is its host's).
 */
const MARKER = '/run/steward-reboot-pending';

/** The host did not come back from its reboot in time. Retrying would reboot nothing: the operator must look. */
export class RebootTimedOut extends HostError {
  override readonly name = 'RebootTimedOut';
  readonly retryable = false;
}

interface Observed {
  readonly boot: string;
  readonly pending: string | undefined;
  /** Whether steward's marker from before a reboot is still there (the host has not rebooted since). */
  readonly marked: boolean;
}

async function observe(session: HostSession, host: string): Promise<Observed> {
  const p = await session.probe({ boot: BOOT_ID, pending: PENDING_PROBE, marked: `test -e ${MARKER}` });
  const boot = p.boot.out.trim();
  if (!/^[0-9a-f-]{36}$/.test(boot)) throw new UnexpectedHostOutput(host, `not a boot id: ${JSON.stringify(boot)}`);
  const lines = p.pending.out.trim().split('\n');
  const pending = lines.includes('marker')
    ? '/run/reboot-required'
    : lines.some((l) => l === '2' || l === '3')
      ? 'a newer kernel is installed'
      : undefined;
  return { boot, pending, marked: p.marked.code === 0 };
}

/**
 * Reboots the host when a reboot is pending; reports the change (and nothing when none is pending). The reboot is
 * a transient systemd timer a few seconds out, so the command returns before the connection drops.
 */
export async function rebootHost(
  pool: SessionPool,
  target: HostTarget,
  mode: Mode,
): Promise<{ changes: Change[]; findings: Finding[] }> {
  const before = await observe(await pool.get(target), target.name);
  if (!before.pending) return { changes: [], findings: [] };
  const change = (after: string): Change => ({
    resource: 'host:reboot',
    action: 'update',
    before: `boot ${before.boot.slice(0, 8)} (reboot pending: ${before.pending})`,
    after,
  });
  if (mode !== 'apply') return { changes: [change('rebooted inside the reboot window')], findings: [] };

  const session = await pool.get(target);
  await session.check(`: > ${MARKER} && systemd-run --quiet --collect --on-active=3 /bin/systemctl reboot`, {
    label: 'schedule reboot',
  });
  await pool.forget(target);
  const started = Date.now();
  let now: Observed | undefined;
  while (!now || now.marked) {
    const waited = Date.now() - started;
    if (waited > REBOOT_LIMIT_MS) {
      throw new RebootTimedOut(target.name, `did not come back within ${REBOOT_LIMIT_MS / 60_000} min of its reboot`);
    }
    reportProgress({ doing: 'waiting for the host to boot', waited: waited / 1000, limit: REBOOT_LIMIT_MS / 1000 });
    await sleep(POLL_MS);
    try {
      now = await observe(await pool.get(target), target.name);
    } catch {
      // Down, or up without sshd yet: ask again until the limit.
      now = undefined;
    }
    // Still the old boot (the reboot not yet under way): its session is about to drop.
    if (!now || now.marked) await pool.forget(target);
  }
  endProgress();
  const after = await pool.get(target);
  const still = now.pending
    ? [
        {
          id: 'host.reboot-still-pending',
          severity: 'high' as const,
          message: `a reboot is still pending after the reboot (${now.pending}): the boot did not load what was installed; check the boot loader`,
        },
      ]
    : [];
  // Until systemd has started everything it will (running), or given up on something (degraded).
  const state = (await after.script('timeout 300 systemctl is-system-running --wait 2>/dev/null; true')).stdout.trim();
  const failed =
    state === 'running'
      ? []
      : (await after.script('systemctl --failed --no-legend --plain | cut -d" " -f1 | head -n 10')).stdout
          .trim()
          .split('\n')
          .filter((u) => /^[\w@.:-]+$/.test(u));
  const findings: Finding[] =
    state === 'running'
      ? []
      : [
          {
            id: 'host.after-reboot',
            severity: 'medium',
            message: `after its reboot the host is ${/^[a-z-]+$/.test(state) ? state : 'in an unknown state'}${failed.length ? `: failed units ${failed.join(', ')}` : ''}`,
          },
        ];
  return {
    changes: [change(`boot ${now.boot.slice(0, 8)}, system ${state || 'unknown'}`)],
    findings: [...still, ...findings],
  };
}

/**
 * After a reboot: the stack, when one is deployed on the host, is running, healthy and answers through the proxy
 * (the deploy verification), once it has come up — a container still unhealthy after the stack's health timeout fails
 * the step. A host without the stack has nothing more to verify.
 */
export async function verifyAfterReboot(
  session: HostSession,
  spec: Spec,
  tick: () => void,
): Promise<{ controls: ControlResult[]; findings: Finding[] }> {
  const containers = await observeContainers(session);
  if (containers.size === 0) {
    return {
      controls: [],
      findings: [
        { id: 'stack.after-reboot', severity: 'info', message: 'no stack deployed on this host: nothing to verify' },
      ],
    };
  }
  const healthy = await waitHealthy(session, [GATEWAY_SERVICE, PROXY_SERVICE], spec.stack.healthTimeoutSeconds, tick, {
    patient: true,
  });
  return verifyStack(session, spec, healthy, tick);
}
