/**
 * A host plan: what one host's run is given instead of the whole spec — that host's entry (with its pinned key) and
 * the sections operations read; no other host. A fleet run carries the spec once and cuts each host's plan from it,
 * so its input grows by a host name per host, not by a spec per host. Pure: used by the client, schedules and
 * workflows.
 */
import type { Spec } from './schema';

/**
 * The spec narrowed to `host`: its entry and every section. A spec without that host is returned as it is, so the
 * run fails where it always did, naming the host.
 */
export function hostPlan(spec: Spec, host: string): Spec {
  const entry = spec.hosts.find((h) => h.name === host);
  return !entry || spec.hosts.length === 1 ? spec : { ...spec, hosts: [entry] };
}
