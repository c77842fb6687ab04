/**
 * The CLI's global options and their defaults, with the Temporal target they describe (common/temporal-connection.ts:
 * flags, then `STEWARD_ADDRESS`/`STEWARD_NAMESPACE`, then Temporal's environment configuration). No SDK client or
 * codec import: the entry point (client/cli.ts) loads this at every start, and a command that needs no server (help,
 * init, schema) never loads the SDK.
 */
import { resolveTemporal, type TemporalTarget } from '../common/temporal-connection';

export interface GlobalOptions {
  readonly spec: string;
  /** The Temporal frontend, resolved: `temporal.address`. */
  readonly address: string;
  /** The namespace, resolved: `temporal.namespace`. */
  readonly namespace: string;
  /** The environment configuration profile named by `--profile` (else `TEMPORAL_PROFILE`, else `default`). */
  readonly profile?: string;
  /** Where and how to connect: address, namespace, TLS, API key. */
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

/** The global options with their Temporal target. @throws TemporalConfigError naming the setting at fault. */
export function resolveGlobals(parsed: ParsedGlobals): GlobalOptions {
  const temporal = resolveTemporal(parsed);
  return { ...parsed, address: temporal.address, namespace: temporal.namespace, temporal };
}
