/**
 * The one path every managed thing goes through: observe (batched, read-only) → diff (pure) → apply (only the
 * difference) → verify (observe again). Plan, apply and drift repair differ only in the mode.
 */
import type { Change, Mode } from '../../model/report';
import { VerificationFailed } from '../host/errors';
import type { HostSession, ProbeResult } from '../host/session';
import { pathBatch } from './files';
import { serviceBatch } from './system';

/** The desired state of the declarative resources, for tools that describe it elsewhere (the Ansible bench). */
export type Desired =
  | {
      readonly kind: 'file';
      readonly path: string;
      readonly content: string;
      readonly owner: string | number;
      readonly group: string | number;
      readonly mode: string;
    }
  | {
      readonly kind: 'directory';
      readonly path: string;
      readonly owner: string | number;
      readonly group: string | number;
      readonly mode: string;
    }
  | { readonly kind: 'packages'; readonly names: readonly string[] }
  | { readonly kind: 'service'; readonly unit: string }
  | { readonly kind: 'user'; readonly name: string; readonly groups: readonly string[]; readonly shell: string };

export interface Resource<O = unknown> {
  /** `kind:name`, unique within a step. */
  readonly id: string;
  /** What it should be, for the declarative kinds; absent for resources defined only by their probe. */
  readonly desired?: Desired;
  /** A script fragment that prints the resource's current state; run batched with the others of its step. */
  readonly probe: string;
  /** Parses the probe's output. @throws UnexpectedHostOutput when the host printed something unexpected. */
  parse(result: ProbeResult): O;
  /** Pure: the changes that would bring `observed` to the desired state; empty when it already matches. */
  diff(observed: O): Change[];
  /** Applies only what `diff` reported. Must be safe to repeat. */
  apply(session: HostSession, observed: O, changes: readonly Change[]): Promise<void>;
}

/** Shell lanes a host observation runs in: on a two-core host a full drift observe takes ~0.2 s instead of ~0.4 s. */
export const PROBE_LANES = 4;

/**
 * Runs the probes of `resources`, and `extra` ones, in one round trip. Files and directories are observed
 * together (one `stat`, one `sha256sum`: {@link pathBatch}), systemd units too (one `systemctl show`:
 * {@link serviceBatch}); each resource still gets what its own probe prints.
 * Observations do not depend on one another, so they run in {@link PROBE_LANES} lanes side by side.
 */
export async function probeAll<K extends string = never>(
  session: HostSession,
  resources: readonly Resource[],
  extra: Record<K, string> = {} as Record<K, string>,
): Promise<{ results: ProbeResult[]; extra: Record<K, ProbeResult> }> {
  const pathIndex = resources.flatMap((r, i) =>
    r.desired?.kind === 'file' || r.desired?.kind === 'directory' ? [i] : [],
  );
  const paths = pathBatch(
    pathIndex.map((i) => {
      const desired = resources[i]!.desired as { kind: 'file' | 'directory'; path: string };
      return { path: desired.path, hash: desired.kind === 'file' };
    }),
  );
  const serviceIndex = resources.flatMap((r, i) => (r.desired?.kind === 'service' ? [i] : []));
  const units = serviceBatch(serviceIndex.map((i) => (resources[i]!.desired as { unit: string }).unit));
  /** Resource index → [batch, its position there], for what a batch observes. */
  const inBatch = new Map<number, readonly ['batch:paths' | 'batch:services', number]>([
    ...pathIndex.flatMap((r, j) => (paths.batched[j] ? [[r, ['batch:paths', j]] as const] : [])),
    ...(serviceIndex.length > 1 ? serviceIndex.map((r, j) => [r, ['batch:services', j]] as const) : []),
  ]);
  const used = new Set([...inBatch.values()].map(([b]) => b));
  // The path batch, usually the longest probe, starts first.
  const probes: Record<string, string> = {};
  if (used.has('batch:paths')) probes['batch:paths'] = paths.probe;
  if (used.has('batch:services')) probes['batch:services'] = units.probe;
  Object.assign(probes, extra);
  resources.forEach((r, i) => {
    if (!inBatch.has(i)) probes[`r${i}`] = r.probe;
  });
  const out = await session.probe(probes, { lanes: PROBE_LANES });
  const batched = {
    'batch:paths': used.has('batch:paths') ? paths.results(out['batch:paths']!) : [],
    'batch:services': used.has('batch:services') ? units.results(out['batch:services']!) : [],
  };
  return {
    results: resources.map((_, i) => {
      const at = inBatch.get(i);
      return at ? batched[at[0]][at[1]]! : out[`r${i}`]!;
    }),
    extra: Object.fromEntries(Object.keys(extra).map((k) => [k, out[k]!])) as Record<K, ProbeResult>,
  };
}

/** Observes every resource in one round trip. */
export async function observe<R extends Resource>(session: HostSession, resources: readonly R[]): Promise<unknown[]> {
  if (resources.length === 0) return [];
  const { results } = await probeAll(session, resources);
  return resources.map((r, i) => r.parse(results[i]!));
}

/** Pure: the changes for each resource given what was observed. */
export function diffAll(resources: readonly Resource[], observed: readonly unknown[]): Change[][] {
  return resources.map((r, i) => r.diff(observed[i]));
}

/**
 * Brings `resources` to their desired state, in order, and returns what changed (or would change, in plan mode).
 * Safe to retry: a second run observes the applied state and changes nothing.
 * @throws VerificationFailed when a resource still differs after its apply.
 */
export async function converge(session: HostSession, resources: readonly Resource[], mode: Mode): Promise<Change[]> {
  const observed = await observe(session, resources);
  const changes = diffAll(resources, observed);
  const drifted = resources.flatMap((r, i) => ((changes[i]?.length ?? 0) > 0 ? [i] : []));
  if (mode === 'plan' || drifted.length === 0) return changes.flat();

  for (const i of drifted) {
    await resources[i]!.apply(session, observed[i], changes[i]!);
  }
  const after = await observe(
    session,
    drifted.map((i) => resources[i]!),
  );
  const still = drifted.filter((i, k) => resources[i]!.diff(after[k]).length > 0).map((i) => resources[i]!.id);
  if (still.length > 0) throw new VerificationFailed(session.target.name, still);
  return changes.flat();
}
