/**
 * Workflow ids and the task queue. A host operation's id is `<operation>/<host>`, so a second run of the same
 * operation on the same host cannot start while one is running. Pure: used by workflows and the client.
 */
import type { Operation } from '../spec/report';

export const TASK_QUEUE = 'steward';

export function hostWorkflowId(operation: Operation, host: string): string {
  return `${operation}/${host}`;
}

export function fleetWorkflowId(operation: Operation, hosts: readonly string[], startedAt: Date): string {
  return `${operation}/fleet/${startedAt.toISOString().replace(/\.\d+Z$/, 'Z')}/${hosts.length}-hosts`;
}
