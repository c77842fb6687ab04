/**
 * The CLI's global options and their defaults: no Temporal or codec import, so the entry point (client/cli.ts) loads
 * this at every start and a command that needs no server (help, init, schema) never loads the SDK.
 */

export interface GlobalOptions {
  readonly spec: string;
  readonly address: string;
  readonly namespace: string;
  readonly json: boolean;
  readonly wait: boolean;
  /** Task queue of steward's worker: STEWARD_TASK_QUEUE, default `steward`. */
  readonly taskQueue: string;
}

/** Defaults: STEWARD_ADDRESS / TEMPORAL_ADDRESS, else the local dev server. */
export function defaultAddress(): string {
  return process.env.STEWARD_ADDRESS ?? process.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233';
}
