/**
 * `checkWatchdog`: run by the `steward/watchdog` schedule (model/schedules.ts), it finds this task queue's schedules
 * that had no run end for twice their interval (activities/watchdog.ts, judged by model/watchdog.ts) and tells the
 * subscribed webhooks of each newly overdue one (`check.overdue`). Telling is this run's job: when a webhook could
 * not be told, the run fails (`NotificationMissed`, its details the result) after trying every delivery, so the next
 * run does not count as told what nobody heard. Input: {@link WatchdogRunInput}; result: {@link WatchdogResult}.
 */
import { ApplicationFailure, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Delivery } from '../model/notifications';
import type { Webhook } from '../model/schema';
import { overdueNotification } from '../model/watchdog';
import { recordOutcome } from './outcome';
import { NOTIFY } from './options';

export interface WatchdogRunInput {
  /** The webhooks subscribed to `check.overdue`. */
  readonly webhooks: readonly Webhook[];
  /** The watchdog schedule's interval. */
  readonly everyMs: number;
}

export interface WatchdogResult {
  readonly checkedAt: string;
  readonly schedules: number;
  /** Every overdue schedule, told now or before. */
  readonly overdue: string[];
  /** The schedules told of by this run. */
  readonly told: string[];
  /** Deliveries that failed: schedule, webhook and why. */
  readonly missed: { readonly schedule: string; readonly webhook: string; readonly error: string }[];
}

const { findOverdueChecks } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumAttempts: 5 },
});
const { deliverNotification } = proxyActivities<Activities>(NOTIFY);

export async function checkWatchdog(input: WatchdogRunInput): Promise<WatchdogResult> {
  const { workflowId, runId, runStartTime } = workflowInfo();
  const found = await findOverdueChecks({ everyMs: input.everyMs, at: runStartTime.toISOString() });
  const told: string[] = [];
  const missed: WatchdogResult['missed'] = [];
  for (const check of found.overdue.filter((c) => c.newly)) {
    const notification = overdueNotification(check, { workflowId, runId, at: found.checkedAt });
    const deliveries: Delivery[] = await deliverNotification({ notification, webhooks: input.webhooks });
    told.push(check.schedule);
    for (const d of deliveries)
      if (!d.delivered)
        missed.push({ schedule: check.schedule, webhook: d.webhook, error: d.error ?? 'not delivered' });
  }
  const result: WatchdogResult = {
    checkedAt: found.checkedAt,
    schedules: found.schedules,
    overdue: found.overdue.map((c) => c.schedule),
    told,
    missed,
  };
  if (missed.length > 0) {
    recordOutcome('failed');
    const first = missed[0]!;
    throw ApplicationFailure.nonRetryable(
      `could not tell ${first.webhook} of ${first.schedule}: ${first.error}` +
        (missed.length > 1 ? ` (and ${missed.length - 1} more)` : ''),
      'NotificationMissed',
      result,
    );
  }
  recordOutcome('completed');
  return result;
}
