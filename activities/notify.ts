/**
 * Telling the spec's webhooks (model/notifications.ts) from the worker: one POST per subscribed webhook, signed with
 * HMAC-SHA256 under the key named by `signingKeyEnv` in the worker's environment (the key never enters the spec or
 * the history), retried on a network error, a timeout, 408, 429 or 5xx. What could not be delivered is returned, never
 * thrown: a notification must not fail the run it is about. Redirects are not followed (a receiver that moved is
 * reported, and nothing goes to a host the spec did not name).
 *
 * Headers: `X-Steward-Event`, `X-Steward-Delivery` (the same for every attempt, so a receiver can drop repeats),
 * `X-Steward-Timestamp` (Unix seconds) and `X-Steward-Signature: sha256=<hex HMAC of "<timestamp>.<body>">`.
 */
import { createHash, createHmac } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { notificationBody, signedPayload, subscribers, type Delivery, type Notification } from '../model/notifications';
import type { Webhook } from '../model/schema';

export const DELIVERY_ATTEMPTS = 3;
const ATTEMPT_TIMEOUT_MS = 5_000;
const BACKOFF_MS = [500, 2_000];

export interface NotifyInput {
  readonly notification: Notification;
  readonly webhooks: readonly Webhook[];
}

export interface NotifyDeps {
  readonly env?: NodeJS.ProcessEnv;
  readonly fetch?: typeof fetch;
}

export function createNotifyActivities({ env = process.env, fetch: send = fetch }: NotifyDeps = {}) {
  return {
    /** Delivers one notification to each webhook subscribed to its event; the deliveries, failed ones included. */
    async deliverNotification({ notification, webhooks }: NotifyInput): Promise<Delivery[]> {
      const log = activityLog();
      const deliveries = await Promise.all(
        subscribers(webhooks, notification.event).map((w) => deliver(w, notification, env, send)),
      );
      for (const d of deliveries) {
        if (d.delivered) log.info(`notified ${d.webhook} of ${notification.event} on ${notification.host}`);
        else log.warn(`could not notify ${d.webhook} of ${notification.event} on ${notification.host}: ${d.error}`);
      }
      return deliveries;
    },
  };
}

async function deliver(
  webhook: Webhook,
  notification: Notification,
  env: NodeJS.ProcessEnv,
  send: typeof fetch,
): Promise<Delivery> {
  const key = env[webhook.signingKeyEnv];
  if (!key) {
    return {
      webhook: webhook.name,
      delivered: false,
      attempts: 0,
      error: `${webhook.signingKeyEnv} is not set in the worker's environment (the webhook's signing key)`,
    };
  }
  const body = notificationBody(notification, webhook.format);
  // One id per notification and receiver, the same on every attempt; each plan waiting for approval is its own.
  const plan = notification.plan ? `\0${notification.plan}\0${notification.revision ?? 0}` : '';
  // An overdue spell is one notification whichever watchdog run tells it (again, after a miss): named by its schedule
  // and where the spell began.
  const subject =
    notification.event === 'check.overdue'
      ? `${notification.schedule}\0${notification.lastEnded ?? notification.overdueSince ?? notification.noRunSince}`
      : `${notification.workflowId}\0${notification.runId}`;
  const delivery = createHash('sha256')
    .update(`${subject}\0${notification.event}${plan}\0${webhook.name}`)
    .digest('hex')
    .slice(0, 32);
  let error = '';
  for (let attempt = 1; attempt <= DELIVERY_ATTEMPTS; attempt++) {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const signature = createHmac('sha256', key).update(signedPayload(timestamp, body)).digest('hex');
    try {
      const response = await send(webhook.url, {
        method: 'POST',
        redirect: 'manual',
        signal: AbortSignal.timeout(ATTEMPT_TIMEOUT_MS),
        headers: {
          'content-type': 'application/json',
          'user-agent': 'steward',
          'x-steward-event': notification.event,
          'x-steward-delivery': delivery,
          'x-steward-timestamp': timestamp,
          'x-steward-signature': `sha256=${signature}`,
        },
        body,
      });
      await response.body?.cancel();
      if (response.ok) return { webhook: webhook.name, delivered: true, attempts: attempt };
      error = `HTTP ${response.status}`;
      const retryable = response.status === 408 || response.status === 429 || response.status >= 500;
      if (!retryable) return { webhook: webhook.name, delivered: false, attempts: attempt, error };
    } catch (err) {
      error = describe(err);
    }
    if (attempt < DELIVERY_ATTEMPTS) await sleep(BACKOFF_MS[attempt - 1] ?? 2_000);
  }
  return { webhook: webhook.name, delivered: false, attempts: DELIVERY_ATTEMPTS, error };
}

/** A fetch error's cause in a few words (fetch says only "fetch failed"). */
function describe(err: unknown): string {
  const e = err as Error & { cause?: { code?: string; message?: string } };
  if (e?.name === 'TimeoutError') return `no answer in ${ATTEMPT_TIMEOUT_MS / 1000} s`;
  return e?.cause?.code ?? e?.cause?.message ?? e?.message ?? String(err);
}

/** The activity's logger inside an activity, the console in a unit test. */
function activityLog(): { info(m: string): void; warn(m: string): void } {
  try {
    return Context.current().log;
  } catch {
    return { info: () => undefined, warn: (m) => console.warn(m) };
  }
}
