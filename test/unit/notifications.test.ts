/**
 * Webhook notifications: which run ends are told (model/notifications.ts), what the spec accepts, and the delivery
 * activity (activities/notify.ts) against a receiver on loopback: signature, headers, retries, a receiver that is
 * down, one that redirects, a missing key.
 */
import { createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { createNotifyActivities, DELIVERY_ATTEMPTS } from '../../activities/notify';
import {
  LIST_LIMIT,
  notificationBody,
  notificationFor,
  summaryLine,
  type Notification,
} from '../../model/notifications';
import type { HostReport } from '../../model/report';
import { notificationsSchema, type Webhook } from '../../model/schema';

const RUN = { workflowId: 'drift/web1/scheduled-2026-12-07T10:00:00Z', runId: 'r1', at: '2026-12-07T10:00:03.000Z' };
const SCHEDULED = { ...RUN, trigger: 'schedule:steward/web1/drift' };

function report(patch: Partial<HostReport> = {}): HostReport {
  return {
    host: 'web1',
    operation: 'drift',
    mode: 'plan',
    status: 'completed',
    changes: [],
    findings: [],
    steps: [],
    ...patch,
  };
}

describe('notificationFor', () => {
  it('tells nothing of runs a person started, of quiet runs, or of runs that yielded the host', () => {
    const drifted = report({ changes: [{ resource: 'dir:/opt/openclaw/state', action: 'update' }] });
    expect(notificationFor(drifted, { ...RUN, trigger: 'cli:alice@laptop' })).toBeUndefined();
    expect(notificationFor(drifted, { ...RUN, trigger: undefined })).toBeUndefined();
    expect(notificationFor(report(), SCHEDULED)).toBeUndefined();
    expect(notificationFor(report({ operation: 'deploy', changes: drifted.changes }), SCHEDULED)).toBeUndefined();
    expect(notificationFor({ ...drifted, alreadyRunning: 'deploy/web1/x' }, SCHEDULED)).toBeUndefined();
  });

  it('a scheduled drift plan that found drift: ids and counts, never values', () => {
    const changes = Array.from({ length: LIST_LIMIT + 5 }, (_, i) => ({
      resource: `file:/etc/f${i}`,
      action: 'update' as const,
      before: { sha256: 'aaaa' },
      after: { sha256: 'bbbb' },
    }));
    const n = notificationFor(
      report({
        changes,
        findings: [
          { id: 'drift.checked', severity: 'info', message: '105 resources' },
          { id: 'host.ssh.root-login', severity: 'high', message: 'sshd lets root log in', resource: 'sshd' },
        ],
      }),
      SCHEDULED,
    )!;
    expect(n).toMatchObject({ event: 'drift.found', host: 'web1', changes: LIST_LIMIT + 5, drifted: LIST_LIMIT + 5 });
    expect(n.resources).toHaveLength(LIST_LIMIT);
    expect(n.findings).toEqual([{ id: 'host.ssh.root-login', severity: 'high' }]);
    expect(JSON.stringify(n)).not.toMatch(/bbbb|sshd lets root/);
    expect(summaryLine(n)).toBe(
      `steward: drift on web1: ${LIST_LIMIT + 5} resources drifted (file:/etc/f0, file:/etc/f1, file:/etc/f2, ` +
        `file:/etc/f3, file:/etc/f4, …) — schedule:steward/web1/drift, workflow ${RUN.workflowId}`,
    );
  });

  it('a scheduled repair: what was found drifted, even where the repair changed less; nested runs leave it to theirs', () => {
    const repaired = report({
      mode: 'apply',
      changes: [{ resource: 'dir:/opt/openclaw/state', action: 'update' }],
      findings: [
        { id: 'drift.corrective', severity: 'medium', message: 'x', resource: 'dir:/opt/openclaw/state' },
        { id: 'drift.intentional', severity: 'medium', message: 'y', resource: 'file:/opt/openclaw/openclaw.json' },
      ],
    });
    const n = notificationFor(repaired, SCHEDULED)!;
    expect(n).toMatchObject({ event: 'drift.found', changes: 1, drifted: 2 });
    expect(n.resources).toEqual(['dir:/opt/openclaw/state', 'file:/opt/openclaw/openclaw.json']);
    expect(summaryLine(n)).toContain('drift on web1: 2 resources drifted, 1 resource changed by the repair (');
    expect(notificationFor({ ...repaired, findings: [] }, SCHEDULED)).toBeUndefined();
    expect(notificationFor(repaired, { ...SCHEDULED, nested: true })).toBeUndefined();
    expect(
      notificationFor({ ...repaired, status: 'failed', error: 'x' }, { ...SCHEDULED, nested: true }),
    ).toBeUndefined();
  });

  it('a scheduled run that failed, whatever the operation: the first line of its error, cut short', () => {
    const n = notificationFor(
      report({ operation: 'backup', status: 'failed', error: `${'x'.repeat(400)}\nstderr of the host` }),
      SCHEDULED,
    )!;
    expect(n.event).toBe('run.failed');
    expect(n.error).toBe(`${'x'.repeat(300)}…`);
    expect(JSON.parse(notificationBody(n, 'text'))).toEqual({ text: summaryLine(n) });
    expect(JSON.parse(notificationBody(n, 'json'))).toEqual({ version: 1, ...n });
  });
});

describe('notifications in the spec', () => {
  const webhook = { name: 'ops', url: 'https://hooks.example.org/steward', signingKeyEnv: 'STEWARD_WEBHOOK_KEY' };

  it('defaults to JSON and every event', () => {
    expect(notificationsSchema.parse({ webhooks: [webhook] }).webhooks[0]).toEqual({
      ...webhook,
      format: 'json',
      events: ['run.failed', 'drift.found', 'approval.waiting', 'check.overdue'],
    });
  });

  it.each([
    [{ url: 'http://hooks.example.org/x' }, 'must be https (plain http only to 127.0.0.1 or localhost)'],
    [{ url: 'https://user:pw@hooks.example.org/x' }, 'must not carry credentials'],
    [{ signingKeyEnv: 'the key' }, 'must be an environment variable name'],
    [{ events: ['drift.fixed'] }, 'Invalid option'],
  ])('refuses %j, naming the field', (patch, message) => {
    const r = notificationsSchema.safeParse({ webhooks: [{ ...webhook, ...patch }] });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]!.message).toContain(message);
    expect(r.error!.issues[0]!.path[0]).toBe('webhooks');
  });

  it('refuses two webhooks of one name; plain http to loopback is fine', () => {
    const local = { ...webhook, url: 'http://127.0.0.1:9/hook' };
    const r = notificationsSchema.safeParse({ webhooks: [webhook, local] });
    expect(r.error?.issues[0]).toMatchObject({ path: ['webhooks', 1, 'name'], message: 'is used twice' });
    expect(notificationsSchema.safeParse({ webhooks: [{ ...local, name: 'local' }] }).success).toBe(true);
  });
});

describe('deliverNotification', () => {
  const KEY = 'k'.repeat(32);
  const notification = notificationFor(
    report({ changes: [{ resource: 'dir:/opt/openclaw/state', action: 'update' }] }),
    SCHEDULED,
  ) as Notification;
  let server: Server | undefined;

  afterEach(async () => {
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    server = undefined;
  });

  /** A receiver answering each request with the next status (the last one repeats). */
  async function receiver(statuses: number[]): Promise<{ url: string; got: { req: IncomingMessage; body: string }[] }> {
    const got: { req: IncomingMessage; body: string }[] = [];
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        got.push({ req, body });
        const status = statuses[Math.min(got.length - 1, statuses.length - 1)]!;
        res.writeHead(status, status === 302 ? { location: 'http://127.0.0.1:9/elsewhere' } : {}).end();
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(server!.address() as AddressInfo).port}/hook`, got };
  }

  const hook = (url: string, patch: Partial<Webhook> = {}): Webhook => ({
    name: 'ops',
    url,
    format: 'json',
    signingKeyEnv: 'HOOK_KEY',
    events: ['run.failed', 'drift.found'],
    ...patch,
  });
  const { deliverNotification } = createNotifyActivities({ env: { HOOK_KEY: KEY } });

  it('POSTs the JSON signed over timestamp and body; a 5xx is retried with the same delivery id', async () => {
    const { url, got } = await receiver([503, 204]);
    const [d] = await deliverNotification({ notification, webhooks: [hook(url)] });
    expect(d).toEqual({ webhook: 'ops', delivered: true, attempts: 2 });
    expect(got).toHaveLength(2);
    const { req, body } = got[1]!;
    expect(req.method).toBe('POST');
    expect(req.headers).toMatchObject({ 'content-type': 'application/json', 'x-steward-event': 'drift.found' });
    expect(req.headers['x-steward-delivery']).toBe(got[0]!.req.headers['x-steward-delivery']);
    const timestamp = req.headers['x-steward-timestamp'] as string;
    expect(Math.abs(Number(timestamp) - Date.now() / 1000)).toBeLessThan(10);
    const expected = createHmac('sha256', KEY).update(`${timestamp}.${body}`).digest('hex');
    expect(req.headers['x-steward-signature']).toBe(`sha256=${expected}`);
    expect(JSON.parse(body)).toEqual({ version: 1, ...notification });
  });

  it('only webhooks subscribed to the event; the text form for chats', async () => {
    const { url, got } = await receiver([200]);
    const deliveries = await deliverNotification({
      notification,
      webhooks: [hook(url, { name: 'chat', format: 'text' }), hook(url, { name: 'failures', events: ['run.failed'] })],
    });
    expect(deliveries).toEqual([{ webhook: 'chat', delivered: true, attempts: 1 }]);
    expect(JSON.parse(got[0]!.body)).toEqual({ text: summaryLine(notification) });
  });

  it('a receiver that is down is reported after every attempt, never thrown', async () => {
    const { url } = await receiver([200]);
    await new Promise((r) => server!.close(r));
    server = undefined;
    const [d] = await deliverNotification({ notification, webhooks: [hook(url)] });
    expect(d).toEqual({ webhook: 'ops', delivered: false, attempts: DELIVERY_ATTEMPTS, error: 'ECONNREFUSED' });
  });

  it('a 4xx is not retried; a redirect is not followed; a missing key sends nothing', async () => {
    const refused = await receiver([404]);
    expect(await deliverNotification({ notification, webhooks: [hook(refused.url)] })).toEqual([
      { webhook: 'ops', delivered: false, attempts: 1, error: 'HTTP 404' },
    ]);
    await new Promise((r) => server!.close(r));

    const moved = await receiver([302]);
    expect(await deliverNotification({ notification, webhooks: [hook(moved.url)] })).toEqual([
      { webhook: 'ops', delivered: false, attempts: 1, error: 'HTTP 302' },
    ]);
    expect(moved.got).toHaveLength(1);

    const before = moved.got.length;
    const [missing] = await deliverNotification({
      notification,
      webhooks: [hook(moved.url, { signingKeyEnv: 'NO_SUCH_KEY' })],
    });
    expect(missing).toMatchObject({
      delivered: false,
      attempts: 0,
      error: expect.stringContaining('NO_SUCH_KEY is not set'),
    });
    expect(moved.got).toHaveLength(before);
  });
});
