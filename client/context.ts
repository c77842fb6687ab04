/** Global CLI options and the Temporal client they describe. */
import { Client, Connection } from '@temporalio/client';

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

export async function connectClient(opts: Pick<GlobalOptions, 'address' | 'namespace'>): Promise<Client> {
  const connection = await Connection.connect({ address: opts.address, connectTimeout: '5 seconds' });
  return new Client({ connection, namespace: opts.namespace });
}

/** Where a run can be seen in the Temporal UI, when the UI's address is known. */
export function uiLink(
  base: string | undefined,
  namespace: string,
  workflowId: string,
  runId?: string,
): string | undefined {
  if (!base) return undefined;
  const id = encodeURIComponent(workflowId);
  return `${base.replace(/\/$/, '')}/namespaces/${namespace}/workflows/${id}${runId ? `/${runId}` : ''}`;
}
