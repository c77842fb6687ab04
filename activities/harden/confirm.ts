/**
 * Commit-confirmed apply for changes that can cut steward off (sshd, firewall): back up the files, schedule an
 * on-host revert with a transient systemd timer, apply, then prove access over a NEW SSH connection before
 * cancelling the revert. If that login fails, the host restores itself when the window ends; steward reconnects
 * afterwards and fails with a non-retryable error naming the change. A host is never left unreachable by steward.
 */
import type { Change, Mode } from '../../model/report';
import { ApplicationFailure } from '@temporalio/common';
import { HostError } from '../host/errors';
import { openSession, type HostSession, type HostTarget } from '../host/session';
import { run } from '../host/shell';
import { converge, type Resource } from '../resources/resource';

/** Where revert scripts and backups live on the host. */
export const REVERT_DIR = '/var/lib/steward/revert';

export interface ConfirmedChange {
  /** Short name, used in the revert unit `steward-revert-<name>` and in errors: `ssh`, `firewall`. */
  readonly name: string;
  readonly resources: readonly Resource[];
  /** Every file the resources may write: backed up before, restored by the revert. */
  readonly files: readonly string[];
  /** Script that makes the files live; run after applying and again by the revert after restoring. */
  readonly activate: string;
}

/** The change cut access and the host reverted it. Permanent until the spec changes. */
export class ChangeReverted extends HostError {
  override readonly name = 'ChangeReverted';
  readonly retryable = false;
  constructor(
    host: string,
    readonly change: string,
    reason: string,
  ) {
    super(host, `${change} change was reverted on the host: steward could not log in after applying it (${reason})`);
  }
}

const unit = (name: string) => `steward-revert-${name}`;

/** Shell that restores each file from its backup (or removes it if it did not exist), then re-activates. */
export function revertScript(change: Pick<ConfirmedChange, 'name' | 'files' | 'activate'>): string {
  const dir = `${REVERT_DIR}/${change.name}`;
  const restore = change.files.map((file, i) => {
    const backup = `${dir}/${i}`;
    return `if [ -e ${run(`${backup}.absent`)} ]; then rm -f ${run(file)}; else cp -a ${run(backup)} ${run(file)}; fi`;
  });
  return [
    '#!/bin/sh',
    `# steward: restores the ${change.name} configuration unless steward confirms the new one in time.`,
    'set -u',
    ...restore,
    change.activate,
    `date -u +%FT%TZ > ${run(`${dir}.reverted`)}`,
    `logger -t steward ${run(`reverted unconfirmed ${change.name} change`)}`,
  ].join('\n');
}

/** Shell that snapshots the current files next to the revert script. */
function backupScript(change: ConfirmedChange): string {
  const dir = `${REVERT_DIR}/${change.name}`;
  return [
    'set -e',
    `rm -rf ${run(dir)} ${run(`${dir}.reverted`)}`,
    run('install', '-d', '-m', '0700', dir),
    ...change.files.map((file, i) => {
      const backup = `${dir}/${i}`;
      return `if [ -e ${run(file)} ]; then cp -a ${run(file)} ${run(backup)}; else : > ${run(`${backup}.absent`)}; fi`;
    }),
  ].join('\n');
}

/**
 * A revert left pending by an interrupted run means the last change was never confirmed: run it now, so this
 * attempt starts from the last confirmed state rather than backing up an unconfirmed one.
 */
async function settlePendingRevert(session: HostSession, name: string): Promise<boolean> {
  const timer = `${unit(name)}.timer`;
  const r = await session.script(
    `if systemctl is-active --quiet ${run(timer)}; then systemctl stop ${run(timer)}; ${run('systemctl', 'start', `${unit(name)}.service`)}; echo reverted; fi; systemctl reset-failed ${run(`${unit(name)}.service`)} ${run(timer)} 2>/dev/null; true`,
    { label: `settle pending ${name} revert`, timeoutMs: 120_000 },
  );
  return r.stdout.includes('reverted');
}

/**
 * Applies `change` commit-confirmed. In plan mode, or when nothing differs, only reports.
 * @throws ChangeReverted (non-retryable) when the new configuration locked steward out and the host reverted.
 * Safe to retry: a pending revert from an interrupted attempt is completed first.
 */
export async function applyConfirmed(
  session: HostSession,
  target: HostTarget,
  change: ConfirmedChange,
  windowSeconds: number,
  mode: Mode,
): Promise<Change[]> {
  if (mode === 'apply') await settlePendingRevert(session, change.name);
  const planned = await converge(session, change.resources, 'plan');
  if (mode === 'plan' || planned.length === 0) return planned;
  // A foreign file the change neutralises is backed up and put back by the revert like steward's own.
  const overridden = planned.flatMap((c) =>
    c.resource.startsWith('override:')
      ? [c.resource.slice('override:'.length), ...[(c.after as { maskedBy?: string }).maskedBy ?? []].flat()]
      : [],
  );
  const full: ConfirmedChange = { ...change, files: [...new Set([...change.files, ...overridden])] };

  // The confirmation logs in as the ops user: it must work before anything risky changes.
  const before = await loginWorks(target);
  if (before !== true) {
    throw ApplicationFailure.nonRetryable(
      `${target.name}: the ops user ${target.opsUser} cannot log in (${before}); run steward provision first`,
      'OpsLoginUnavailable',
    );
  }

  const dir = `${REVERT_DIR}/${change.name}`;
  await session.check(backupScript(full), { label: `back up ${change.name} files` });
  await session.writeFile(`${dir}.sh`, `${revertScript(full)}\n`, 'root:root', '0700');
  await session.check(
    run(
      'systemd-run',
      `--unit=${unit(change.name)}`,
      `--on-active=${windowSeconds}s`,
      '--timer-property=AccuracySec=1s',
      '--description',
      `steward: revert unconfirmed ${change.name} change`,
      '/bin/sh',
      `${dir}.sh`,
    ),
    { label: `schedule ${change.name} revert` },
  );

  const started = Date.now();
  let changes: Change[];
  try {
    changes = await converge(session, change.resources, 'apply');
    await session.check(change.activate, { label: `activate ${change.name}`, timeoutMs: 60_000 });
  } catch (err) {
    // Applying failed half-way: restore now rather than waiting for the timer.
    await session
      .script(run('systemctl', 'start', `${unit(change.name)}.service`), { timeoutMs: 120_000 })
      .catch(() => undefined);
    throw err;
  }

  const confirmed = await loginWorks(target);
  if (confirmed === true) {
    const ops = await openSession(target, target.opsUser);
    try {
      await ops.check(
        `${run('systemctl', 'stop', `${unit(change.name)}.timer`)}; ${run('rm', '-rf', dir, `${dir}.sh`)}`,
        {
          label: `confirm ${change.name} change`,
        },
      );
    } finally {
      await ops.close();
    }
    return changes;
  }

  // Locked out: let the host revert itself, then come back and say so.
  const waitMs = Math.max(0, started + windowSeconds * 1000 - Date.now()) + 10_000;
  await new Promise((r) => setTimeout(r, waitMs));
  const back = await waitForLogin(target, 60_000);
  if (back !== true) {
    throw ApplicationFailure.nonRetryable(
      `${target.name}: ${change.name} change locked steward out and the host did not come back after its revert window (${back})`,
      'HostUnreachableAfterRevert',
    );
  }
  throw new ChangeReverted(target.name, change.name, confirmed);
}

/** `true` when a fresh login as the ops user can run `sudo -n true`; otherwise why not. */
async function loginWorks(target: HostTarget): Promise<true | string> {
  try {
    const s = await openSession(target, target.opsUser);
    try {
      const r = await s.script('true', { timeoutMs: 15_000, label: 'sudo -n true' });
      return r.code === 0 ? true : `sudo -n true exited ${r.code}`;
    } finally {
      await s.close();
    }
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}

async function waitForLogin(target: HostTarget, timeoutMs: number): Promise<true | string> {
  const deadline = Date.now() + timeoutMs;
  let last: true | string = 'not tried';
  while (Date.now() < deadline) {
    last = await loginWorks(target);
    if (last === true) return true;
    await new Promise((r) => setTimeout(r, 3_000));
  }
  return last;
}
