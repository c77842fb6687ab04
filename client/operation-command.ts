/**
 * A host operation as the CLI asks for it (`steward drift web1 --repair`, …): the spec read and checked, the run
 * started and followed, the outcome printed. The CLI runs it itself, or the local worker runs it on the CLI's
 * behalf (client/local-worker.ts) with the same code and the CLI's options, user and terminal.
 */
import type { Client } from '@temporalio/client';
import type { Spec } from '../model/schema';
import type { Mode, Operation } from '../model/report';
import { readDevState } from '../common/dev-state';
import { durationMs } from '../model/units';
import { parseWaves, type WaveSize } from '../model/waves';
import { APPROVABLE_OPERATIONS, type ApprovalRequest } from '../model/approval';
import { loadSpecCached } from './spec-cache';
import { runOperation, selectHosts, type Requester } from './operation';
import { EXIT, UsageError } from './errors';
import type { GlobalOptions } from './globals';

export interface OperationCommand {
  readonly operation: Operation;
  /** Workflow type that handles one host. */
  readonly workflowType: string;
  /** Hosts named on the command line; none means every host of the spec. */
  readonly hosts: readonly string[];
  readonly mode: Mode;
  /** --concurrency as given. */
  readonly concurrency: string;
  /** Operation-specific input fields (e.g. drift's `audit`). */
  readonly extra?: Readonly<Record<string, unknown>>;
  /** The CLI's STEWARD_UI_URL, when set. */
  readonly uiUrl?: string;
  /** --waves, --bake and --verify-waves as given. */
  readonly waves?: string;
  readonly bake?: string;
  readonly verifyWaves?: boolean;
  /** --require-approval and --approval-window as given. */
  readonly requireApproval?: boolean;
  readonly approvalWindow?: string;
}

/** Changes the spec for this run only (an upgrade's new image); `after` runs once the run succeeded. */
export interface SpecChange {
  spec(spec: Spec): Spec;
  after?(): Promise<void>;
}

/**
 * Runs `cmd` and returns its exit code. Everything that can be refused (the spec, the hosts, the flags) is checked
 * before `withClient` connects.
 * @throws UsageError, ValidationError or PolicyViolation for bad input; OperationRefusedError when a host is busy.
 */
export async function runOperationCommand(
  g: GlobalOptions,
  cmd: OperationCommand,
  withClient: <T>(use: (client: Client) => Promise<T>) => Promise<T>,
  by: Requester,
  change?: SpecChange,
): Promise<number> {
  const loaded = (await loadSpecCached(g.spec)).spec;
  const spec = change ? change.spec(loaded) : loaded;
  const uiUrl = cmd.uiUrl ?? (await readDevState(g.spec)).temporal?.uiUrl;
  const selected = selectHosts(spec, cmd.hosts);
  const op = cmd.operation;
  if ((op === 'backup' || op === 'restore' || op === 'drill' || op === 'upgrade') && !spec.backup.repository) {
    throw new UsageError(
      `${g.spec}: backup.repository is not set: name a restic repository (a path on the worker, sftp: or s3:) and backup.passwordSecret`,
    );
  }
  const parallel = Number(cmd.concurrency);
  if (!Number.isInteger(parallel) || parallel < 1) throw new UsageError(`--concurrency must be a whole number ≥ 1`);
  const { waves, bakeMs, verifyWaves } = ROLLOUT_OPERATIONS.includes(op) ? rolloutOf(cmd, spec, cmd.mode) : {};
  const approval = approvalOf(cmd, spec);
  const extra = approval.request ? { ...cmd.extra, approval: approval.request } : cmd.extra;
  return withClient(async (client) => {
    const { code, reports } = await runOperation(
      client,
      g,
      {
        operation: op,
        workflowType: cmd.workflowType,
        spec,
        hosts: selected,
        mode: cmd.mode,
        concurrency: parallel,
        ...(uiUrl ? { uiUrl } : {}),
        ...(extra ? { extra } : {}),
        ...(approval.gated ? { approval: true } : {}),
        ...(waves ? { waves } : {}),
        ...(bakeMs ? { bakeMs } : {}),
        ...(verifyWaves ? { verifyWaves } : {}),
      },
      by,
    );
    if (code === EXIT.ok && cmd.mode === 'apply') await change?.after?.();
    const trusted = reports.filter((r) => r.hostKey).map((r) => r.host);
    if (trusted.length > 0 && !g.json) {
      by.print(
        `trusted the host key of ${trusted.join(', ')} on first use; the worker pinned it in its known-hosts file`,
      );
    }
    return code;
  });
}

/**
 * The approval a run asks for: --require-approval (with --approval-window, else the spec's window), and whether its
 * host runs wait for one at all (the flag, or the spec's approval.operations naming the operation; a converge's
 * stages included).
 * @throws UsageError naming the flag: approval on a command that cannot plan first, a plan, or a bad window.
 */
export function approvalOf(
  cmd: Pick<OperationCommand, 'operation' | 'mode' | 'requireApproval' | 'approvalWindow'>,
  spec: Pick<Spec, 'approval'>,
): { request?: ApprovalRequest; gated: boolean } {
  const approvable = cmd.operation === 'converge' || APPROVABLE_OPERATIONS.some((o) => o === cmd.operation);
  if (cmd.approvalWindow !== undefined && !cmd.requireApproval) {
    throw new UsageError('--approval-window needs --require-approval');
  }
  if (!cmd.requireApproval) {
    const fromSpec = spec.approval?.operations ?? [];
    const gated =
      cmd.mode === 'apply' &&
      (cmd.operation === 'converge' ? fromSpec.length > 0 : fromSpec.some((o) => o === cmd.operation));
    return { gated };
  }
  if (!approvable) throw new UsageError(`--require-approval: ${cmd.operation} does not plan first`);
  if (cmd.mode !== 'apply') throw new UsageError('--require-approval with --plan: a plan changes nothing to approve');
  const window = cmd.approvalWindow ?? spec.approval?.window ?? '24h';
  if (!/^[0-9]+(s|min|h|d|w)$/.test(window) || durationMs(window) <= 0) {
    throw new UsageError(`--approval-window ${JSON.stringify(window)}: must be a duration such as 30min, 12h or 7d`);
  }
  return { request: { windowMs: durationMs(window) }, gated: true };
}

/** The operations that roll out in waves (the commands with --waves); the others go to every host at once. */
export const ROLLOUT_OPERATIONS: readonly Operation[] = ['provision', 'harden', 'deploy', 'converge', 'drift'];

/**
 * The rollout in waves: --waves and --bake, else the spec's `rollout` for a run that applies (a plan changes nothing,
 * so it goes to every host at once).
 * @throws UsageError naming the flag for a malformed value, or --bake without waves.
 */
export function rolloutOf(
  cmd: Pick<OperationCommand, 'waves' | 'bake' | 'verifyWaves'>,
  spec: Pick<Spec, 'rollout'>,
  mode: Mode,
): { waves?: WaveSize[]; bakeMs?: number; verifyWaves?: boolean } {
  const fromSpec = mode === 'apply' ? spec.rollout : undefined;
  let waves: WaveSize[] | undefined = fromSpec?.waves ? ([...fromSpec.waves] as WaveSize[]) : undefined;
  if (cmd.waves !== undefined) {
    try {
      waves = parseWaves(cmd.waves);
    } catch (err) {
      throw new UsageError(`--waves ${JSON.stringify(cmd.waves)}: ${(err as Error).message}`);
    }
  }
  const bake = cmd.bake ?? (cmd.waves === undefined ? fromSpec?.bake : undefined);
  if (cmd.bake !== undefined && !/^[0-9]+(s|min|h|d|w)$/.test(cmd.bake)) {
    throw new UsageError(`--bake ${JSON.stringify(cmd.bake)}: must be a duration such as 30s, 5min or 1h`);
  }
  if (bake !== undefined && !waves) throw new UsageError("--bake needs waves (--waves or the spec's rollout.waves)");
  const verify = cmd.verifyWaves || (cmd.waves === undefined && fromSpec?.verify === true);
  if (cmd.verifyWaves && !waves) {
    throw new UsageError("--verify-waves needs waves (--waves or the spec's rollout.waves)");
  }
  if (cmd.verifyWaves && mode !== 'apply') {
    throw new UsageError('--verify-waves checks what a wave applied: not with --plan (or drift without --repair)');
  }
  return {
    ...(waves ? { waves } : {}),
    ...(bake ? { bakeMs: durationMs(bake) } : {}),
    ...(verify && waves ? { verifyWaves: true } : {}),
  };
}
