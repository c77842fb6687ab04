/**
 * Rollouts in waves: a fleet operation works on its hosts one wave after the other, and stops at the first wave with a
 * failed host. Pure: the CLI parses `--waves`, the spec validates `rollout.waves`, the fleet workflow cuts its hosts.
 */
import type { HostReport, Mode, Operation } from './report';

/** The fleet workflow's query and updates of a rollout in waves (workflows/fleet.ts), by name for the CLI. */
export const FLEET_QUERY = 'fleet';
export const RESUME_UPDATE = 'resume';
export const ABORT_UPDATE = 'abort';

export type WaveStatus =
  'pending' | 'running' | 'baking' | 'verifying' | 'completed' | 'failed' | 'halted' | 'untouched';

/**
 * Resources an operation applies that drift does not watch (activities/catalogue.ts, `watched: false`): a wave's
 * check planned again may find them changed by the world, not by the wave (a security update published meanwhile).
 */
export const UNWATCHED_RESOURCES: readonly string[] = ['updates:security'];

/**
 * How a wave's hosts are proven again before the next wave: a stack is verified as `steward verify` does (it serves,
 * its controls pass); anything else is planned again with the same operation, which must find nothing to change
 * (what the wave applied held through the bake).
 */
export function waveCheck(operation: Operation): { workflowType: string; expectsNoChanges: boolean } {
  if (operation === 'deploy' || operation === 'converge')
    return { workflowType: 'verifyHost', expectsNoChanges: false };
  const planned: Partial<Record<Operation, string>> = {
    provision: 'provisionHost',
    harden: 'hardenHost',
    drift: 'driftHost',
  };
  return { workflowType: planned[operation] ?? 'driftHost', expectsNoChanges: true };
}

/** Where a rollout in waves stands. */
export interface FleetProgress {
  readonly operation: Operation;
  readonly mode: Mode;
  /** The time in the children's ids: `<operation>/<host>/<startedAt>` (a host run again keeps its id). */
  readonly startedAt: string;
  readonly waves: readonly { readonly hosts: readonly string[]; readonly status: WaveStatus }[];
  /** Set while the rollout waits for a decision. */
  readonly halted?: Halted;
}

/** A rollout stopped at a wave with failed hosts: the reports so far, and the hosts later waves would have touched. */
export interface Halted {
  /** 1-based. */
  readonly wave: number;
  readonly waves: number;
  readonly failed: readonly string[];
  readonly untouched: readonly string[];
  readonly reports: readonly HostReport[];
}

/** A wave's size: a number of hosts, or a percentage of the whole fleet (`"25%"`). */
export type WaveSize = number | `${number}%`;

const PERCENT = /^([1-9][0-9]?|100)%$/;

/** Why `size` is not a wave size, or undefined when it is one. */
export function waveSizeProblem(size: unknown): string | undefined {
  if (typeof size === 'number') return Number.isInteger(size) && size >= 1 ? undefined : 'a count must be 1 or more';
  if (typeof size === 'string' && PERCENT.test(size)) return undefined;
  return 'must be a host count (1, 2, …) or a percentage of the fleet (1% to 100%)';
}

/** `"1,25%,100%"` → `[1, "25%", "100%"]`. @throws Error saying which entry is wrong. */
export function parseWaves(text: string): WaveSize[] {
  const parts = text.split(',').map((p) => p.trim());
  return parts.map((p, i) => {
    const size: unknown = /^[0-9]+$/.test(p) ? Number(p) : p;
    const problem = waveSizeProblem(size);
    if (problem) throw new Error(`entry ${i + 1} (${JSON.stringify(p)}) ${problem}`);
    return size as WaveSize;
  });
}

/**
 * The items cut into waves of the given sizes, in order: a count takes that many, a percentage that share of all
 * items (rounded up, at least one); a wave never takes more than is left, and the last wave takes whatever is left.
 * No empty waves.
 */
export function waveGroups<T>(items: readonly T[], sizes: readonly WaveSize[]): T[][] {
  const groups: T[][] = [];
  let next = 0;
  sizes.forEach((size, i) => {
    if (next >= items.length) return;
    const wanted =
      i === sizes.length - 1
        ? items.length - next
        : typeof size === 'number'
          ? size
          : Math.max(1, Math.ceil((Number(size.slice(0, -1)) / 100) * items.length));
    groups.push(items.slice(next, next + wanted));
    next += wanted;
  });
  if (next < items.length) groups.push(items.slice(next));
  return groups;
}
