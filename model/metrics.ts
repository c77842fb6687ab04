/**
 * steward's own metrics, emitted by the workflows through the SDK's metric meter (so never twice: a replayed workflow
 * task emits nothing) and exported with the SDK's on the worker's Prometheus endpoint (`steward worker --metrics`).
 * Labels are the spec's host names, operation names and a few fixed words: nothing a host printed. The shipped alert
 * rules (ops/prometheus/steward-alerts.yml) read these names. Pure.
 */
import { scheduled } from './runs';

/** Counter: host operations that ended, by operation, host, mode (`plan`/`apply`), outcome and trigger. */
export const OPERATIONS = 'steward_operations';
/** Gauge: when an operation last completed on a host (Unix seconds), by operation, host and mode. */
export const LAST_SUCCESS = 'steward_last_success_timestamp_seconds';
/**
 * Gauge: resources drifted on a host as its last drift run left them (what a plan found; what a failed repair left;
 * 0 after a repair that ended), set as the run ends.
 */
export const DRIFT_RESOURCES = 'steward_drift_resources';
/** Gauge: when a drift run last set {@link DRIFT_RESOURCES} (Unix seconds): with several workers, the newest counts. */
export const DRIFT_CHECKED = 'steward_drift_checked_timestamp_seconds';
/** Counter: drifted resources found, by host, per run (a drift left unrepaired counts again at every run). */
export const DRIFT_FOUND = 'steward_drift_found';

export type Outcome = 'completed' | 'failed' | 'skipped';

/** `schedule` for a run a schedule started, `cli` for one a person did, else `other`: few values, never a name. */
export function triggerLabel(trigger: string | undefined): 'schedule' | 'cli' | 'other' {
  if (scheduled(trigger)) return 'schedule';
  return trigger?.startsWith('cli:') ? 'cli' : 'other';
}

export function operationLabels(o: {
  readonly operation: string;
  readonly host: string;
  readonly mode: string;
  readonly outcome: Outcome;
  readonly trigger: string | undefined;
}): Record<string, string> {
  return { operation: o.operation, host: o.host, mode: o.mode, outcome: o.outcome, trigger: triggerLabel(o.trigger) };
}
