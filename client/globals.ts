/**
 * The CLI's global options and their defaults, with the Temporal target they describe (common/temporal-connection.ts:
 * flags, then `STEWARD_ADDRESS`/`STEWARD_NAMESPACE`, then Temporal's environment configuration). The target is
 * resolved on first use, so a command that never talks to Temporal (init, schema, bundle, codec keygen) neither reads
 * its settings nor fails on them. No SDK client or codec import: the entry point (client/cli.ts) loads this at every
 * start; only Temporal's small configuration reader comes with it.
 */
import { resolveEndpoint, resolveTemporal, type TemporalTarget } from '../common/temporal-connection';

export interface GlobalOptions {
  readonly spec: string;
  /** The Temporal frontend, resolved (resolving reads the profile, not the TLS files). */
  readonly address: string;
  /** The namespace, resolved. */
  readonly namespace: string;
  /** The environment configuration profile named by `--profile` (else `TEMPORAL_PROFILE`, else `default`). */
  readonly profile?: string;
  /** Where and how to connect: address, namespace, TLS (its files read and checked), API key. */
  readonly temporal: TemporalTarget;
  readonly json: boolean;
  readonly wait: boolean;
  /** Task queue of steward's worker: STEWARD_TASK_QUEUE, default `steward`. */
  readonly taskQueue: string;
}

/** The options as commander parsed them: `address` and `namespace` only when given as flags. */
export type ParsedGlobals = Omit<GlobalOptions, 'address' | 'namespace' | 'temporal'> & {
  readonly address?: string;
  readonly namespace?: string;
};

/**
 * The global options, their Temporal settings resolved when first read.
 * @throws TemporalConfigError (on that read) naming the setting at fault.
 */
export function resolveGlobals(parsed: ParsedGlobals, env: NodeJS.ProcessEnv = process.env): GlobalOptions {
  let endpoint: { address: string; namespace: string } | undefined;
  let target: TemporalTarget | undefined;
  const at = () => (endpoint ??= resolveEndpoint(parsed, env));
  const g = { ...parsed } as Record<string, unknown>;
  Object.defineProperties(g, {
    address: { get: () => at().address, enumerable: true },
    namespace: { get: () => at().namespace, enumerable: true },
    temporal: { get: () => (target ??= resolveTemporal(parsed, env)), enumerable: true },
  });
  return g as unknown as GlobalOptions;
}
