/**
 * Workflow ids and the task queue. A run's id reads as what it is and when it started: `<operation>/<host>/<time>`
 * (a fleet: `<operation>/fleet/<time>/<n>-hosts`; a schedule's run: `<operation>/<host>/scheduled-<time>`). The
 * time makes every run's id new, so "one run of an operation on a host at a time" is kept by the run guard
 * (model/runs.ts), not by id uniqueness. Pure: used by workflows and the client.
 */
import type { Operation } from './report';

export const TASK_QUEUE = 'steward';

/** A time as workflow ids carry it: ISO 8601 to the second, UTC, e.g. `2026-11-26T10:45:18Z`. */
export function idTime(at: Date): string {
  return at.toISOString().replace(/\.\d+Z$/, 'Z');
}

/** A time as file names and version ids carry it: `20261126T104518Z`. */
export function compactTime(at: Date): string {
  return idTime(at).replace(/[-:]/g, '');
}

/** One host's run of an operation: `<operation>/<host>/<time>`. */
export function hostWorkflowId(operation: Operation, host: string, startedAt: Date): string {
  return `${operation}/${host}/${idTime(startedAt)}`;
}

export function fleetWorkflowId(operation: Operation, hosts: readonly string[], startedAt: Date): string {
  return `${operation}/fleet/${idTime(startedAt)}/${hosts.length}-hosts`;
}

/** Whether a workflow id is a fleet's ({@link fleetWorkflowId}). */
export function isFleetId(workflowId: string): boolean {
  return /^[a-z]+\/fleet\//.test(workflowId);
}

/** One rotation per host and secret at a time: the workflow id names both. */
export function rotationWorkflowId(host: string, secret: string): string {
  return `rotate/${host}/${secret}`;
}

/** Id of a run that rotates several secrets or hosts. */
export function rotationFleetWorkflowId(pairs: number, startedAt: Date): string {
  return `rotate/fleet/${idTime(startedAt)}/${pairs}-rotations`;
}

/**
 * The workflow id a schedule starts runs with: `<operation>/<host>[/<what>]/scheduled`. Temporal appends
 * `-<time>` to it for each run, so a run reads `drift/web1/scheduled-2026-11-26T10:45:00Z`.
 */
export function scheduledWorkflowId(operation: string, host: string, what?: string): string {
  return `${operation}/${host}${what ? `/${what}` : ''}/scheduled`;
}
