/**
 * The approval gate of the host workflows against the shared dev server, with test doubles for provision's
 * activities over an in-memory host (the real gate is proven on a simulator in test/integration/approval.test.ts):
 * nothing applies before a decision; the Update refuses a decision on another plan, a rejection without a reason and
 * a second decision; approval applies, rejection and expiry apply nothing; a host that moved after the plan makes the
 * run ask again; a plan with nothing to change needs no decision; the webhook hears of a waiting plan.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StepInput } from '../../activities';
import { createNotifyActivities } from '../../activities/notify';
import {
  APPROVAL_QUERY,
  DECIDE_UPDATE,
  planDigest,
  type ApprovalState,
  type Decision,
  type RecordedDecision,
} from '../../model/approval';
import type { Change, HostReport } from '../../model/report';
import { specSchema, type Spec } from '../../model/schema';
import { doublesWorker, testEnv, type TestEnv } from '../support/temporal';

let env: TestEnv;
const taskQueue = `approval-workflow-${randomBytes(3).toString('hex')}`;
const KEY_ENV = 'STEWARD_TEST_APPROVAL_WEBHOOK_KEY';
process.env[KEY_ENV] = randomBytes(16).toString('hex');

/** The in-memory host: resource → value; the spec wants every resource at `want`. */
const host = new Map<string, string>();
const WANT: Record<string, string> = { 'package:curl': 'installed', 'user:steward': 'present', 'dir:/opt/app': '0750' };
/** Every apply-mode call: what changed the host. */
const applied: string[] = [];

function diff(resources: string[]): Change[] {
  return resources
    .filter((r) => host.get(r) !== WANT[r])
    .map((r) => ({ resource: r, action: host.has(r) ? 'update' : 'create', before: host.get(r), after: WANT[r] }));
}

/** A step over some of the resources: observe, diff, and in apply mode set only the difference. */
function step(name: string, resources: string[]) {
  return async (i: StepInput) => {
    const changes = diff(resources);
    if (i.mode === 'apply') {
      for (const c of changes) host.set(c.resource, WANT[c.resource]!);
      if (changes.length > 0) applied.push(name);
    }
    return { changes, findings: [] };
  };
}

const doubles = {
  async findEarlierRun() {
    return undefined;
  },
  async inspectHost() {
    return { changes: [], findings: [], hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDouble' };
  },
  ensureBasePackages: step('ensureBasePackages', ['package:curl']),
  async ensureDockerEngine() {
    return { changes: [], findings: [] };
  },
  ensureOpsUser: step('ensureOpsUser', ['user:steward']),
  ensureStackLayout: step('ensureStackLayout', ['dir:/opt/app']),
  async recordApplied() {
    return { changes: [], findings: [] };
  },
  ...createNotifyActivities(),
};

let worker: { stop(): Promise<void> } | undefined;
let receiver: Server;
const heard: { event: string; body: Record<string, unknown> }[] = [];

function spec(webhook = false): Spec {
  return specSchema.parse({
    version: 1,
    hosts: [{ name: 'a1', address: '203.0.113.1', hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDouble' }],
    ...(webhook
      ? {
          notifications: {
            webhooks: [
              {
                name: 'ops',
                url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`,
                signingKeyEnv: KEY_ENV,
                events: ['approval.waiting'],
              },
            ],
          },
        }
      : {}),
  });
}

beforeAll(async () => {
  receiver = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      heard.push({ event: String(req.headers['x-steward-event']), body: JSON.parse(body) as Record<string, unknown> });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  env = await testEnv();
  worker = await doublesWorker(env, taskQueue, doubles);
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
  receiver?.close();
});

async function start(windowMs = 60_000, webhook = false): Promise<WorkflowHandle> {
  applied.length = 0;
  return env.client.workflow.start('provisionHost', {
    taskQueue,
    workflowId: `provision/a1/approval-${randomBytes(3).toString('hex')}`,
    args: [{ spec: spec(webhook), host: 'a1', mode: 'apply', approval: { windowMs } }],
  });
}

/** The approval state once it is `status` (at `revision`, when given). */
async function when(handle: WorkflowHandle, status: ApprovalState['status'], revision = 1): Promise<ApprovalState> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const s = await handle.query<ApprovalState>(APPROVAL_QUERY).catch(() => undefined);
    if (s?.status === status && (s.plan?.revision ?? revision) >= revision) return s;
    if (Date.now() > deadline) throw new Error(`approval never ${status} (last ${JSON.stringify(s)})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Delivers a decision; a refusal is thrown with the run's own words (the SDK wraps them as the cause). */
async function decide(handle: WorkflowHandle, d: Decision): Promise<RecordedDecision> {
  try {
    return await handle.executeUpdate<RecordedDecision, [Decision]>(DECIDE_UPDATE, { args: [d] });
  } catch (err) {
    const e = err as Error & { cause?: Error };
    throw new Error(e.cause?.message ?? e.message);
  }
}

async function outcome(handle: WorkflowHandle): Promise<{ report?: HostReport; error?: string }> {
  try {
    return { report: (await handle.result()) as HostReport };
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    return { error: err.cause?.message ?? err.message };
  }
}

describe('approval gate', () => {
  it('waits with the plan, refuses decisions on another plan, then applies exactly the approved plan', async () => {
    host.clear();
    host.set('user:steward', 'present');
    const handle = await start(60_000, true);
    const waiting = await when(handle, 'waiting');
    // The plan: what provision would change, and its digest; nothing applied yet.
    expect(waiting.plan!.changes.map((c) => c.resource)).toEqual(['package:curl', 'dir:/opt/app']);
    expect(waiting.plan!.digest).toBe(planDigest(waiting.plan!.changes));
    expect(applied).toEqual([]);
    expect(host.get('package:curl')).toBeUndefined();

    await expect(decide(handle, { decision: 'approve', plan: '0'.repeat(64), by: 'ann@ops' })).rejects.toThrow(
      /waits for a decision on plan/,
    );
    await expect(decide(handle, { decision: 'reject', plan: waiting.plan!.digest, by: 'ann@ops' })).rejects.toThrow(
      /needs a reason/,
    );
    const recorded = await decide(handle, {
      decision: 'approve',
      plan: waiting.plan!.digest.slice(0, 12),
      by: 'ann@ops',
      reason: 'change 42',
    });
    expect(recorded).toMatchObject({ decision: 'approve', plan: waiting.plan!.digest, by: 'ann@ops', revision: 1 });
    // A second decision: refused by the run while it plans again, or by the server once it completed.
    await expect(decide(handle, { decision: 'approve', plan: waiting.plan!.digest, by: 'bob@ops' })).rejects.toThrow(
      /already decided|not waiting|completed/,
    );

    const { report } = await outcome(handle);
    expect(report?.status).toBe('completed');
    expect(applied).toEqual(['ensureBasePackages', 'ensureStackLayout']);
    expect(report!.changes.map((c) => c.resource)).toEqual(['package:curl', 'dir:/opt/app']);
    const granted = report!.findings.find((f) => f.id === 'approval.granted');
    expect(granted?.message).toContain('approved by ann@ops');
    expect(granted?.message).toContain('change 42');
    // The webhook heard of the plan waiting: digest and resources, no values.
    const told = heard.find((h) => h.event === 'approval.waiting' && h.body.workflowId === handle.workflowId);
    expect(told?.body).toMatchObject({ plan: waiting.plan!.digest, revision: 1, changes: 2 });
    expect(JSON.stringify(told?.body)).not.toContain('0750');
    expect(report!.findings.map((f) => f.id)).toContain('notify.sent');
  });

  it('a rejection ends the run with nothing applied, naming who and why', async () => {
    host.clear();
    const handle = await start();
    const waiting = await when(handle, 'waiting');
    await decide(handle, { decision: 'reject', plan: waiting.plan!.digest, by: 'ann@ops', reason: 'not today' });
    const { error } = await outcome(handle);
    expect(error).toMatch(/rejected by ann@ops: not today; nothing was applied/);
    expect(applied).toEqual([]);
    expect(host.size).toBe(0);
  });

  it('a host that moved after the plan makes the run ask again; the new plan, approved, applies', async () => {
    host.clear();
    const handle = await start();
    const first = await when(handle, 'waiting');
    // By hand, between plan and approval: the user appears with another value.
    host.set('user:steward', 'locked');
    await decide(handle, { decision: 'approve', plan: first.plan!.digest, by: 'ann@ops' });
    const second = await when(handle, 'waiting', 2);
    expect(second.plan!.revision).toBe(2);
    expect(second.plan!.digest).not.toBe(first.plan!.digest);
    expect(second.replanned).toMatch(/no longer matches plan/);
    expect(applied).toEqual([]);
    // The first plan's approval does not carry over.
    await expect(decide(handle, { decision: 'approve', plan: first.plan!.digest, by: 'ann@ops' })).rejects.toThrow(
      /waits for a decision on plan/,
    );
    await decide(handle, { decision: 'approve', plan: second.plan!.digest, by: 'ann@ops' });
    const { report } = await outcome(handle);
    expect(report?.status).toBe('completed');
    expect(host.get('user:steward')).toBe('present');
    expect(report!.findings.map((f) => f.id)).toEqual(
      expect.arrayContaining(['approval.plan-changed', 'approval.granted']),
    );
  });

  it('a plan nobody decides within the window expires with nothing applied', async () => {
    host.clear();
    const handle = await start(2_000);
    await when(handle, 'waiting');
    const { error } = await outcome(handle);
    expect(error).toMatch(/not decided within the approval window .*nothing was applied/);
    expect(applied).toEqual([]);
    expect((await handle.query<ApprovalState>(APPROVAL_QUERY)).status).toBe('expired');
  });

  it('a plan with nothing to change needs no decision', async () => {
    host.clear();
    for (const [r, v] of Object.entries(WANT)) host.set(r, v);
    const handle = await start();
    const { report } = await outcome(handle);
    expect(report?.status).toBe('completed');
    expect(report!.findings.map((f) => f.id)).toContain('approval.not-needed');
    expect(applied).toEqual([]);
  });

  it("the spec's approval.operations makes a run wait without --require-approval, with the spec's window", async () => {
    host.clear();
    applied.length = 0;
    const gatedSpec = specSchema.parse({
      ...spec(),
      approval: { operations: ['provision'], window: '2s' },
    });
    const handle = await env.client.workflow.start('provisionHost', {
      taskQueue,
      workflowId: `provision/a1/approval-spec-${randomBytes(3).toString('hex')}`,
      args: [{ spec: gatedSpec, host: 'a1', mode: 'apply' }],
    });
    const waiting = await when(handle, 'waiting');
    expect(Date.parse(waiting.plan!.expiresAt) - Date.parse(waiting.plan!.publishedAt)).toBe(2000);
    const { error } = await outcome(handle);
    expect(error).toMatch(/not decided within the approval window/);
    expect(applied).toEqual([]);
    // A plan is never gated: the same spec in plan mode reports and completes.
    const planned = await env.client.workflow.execute('provisionHost', {
      taskQueue,
      workflowId: `provision/a1/approval-plan-${randomBytes(3).toString('hex')}`,
      args: [{ spec: gatedSpec, host: 'a1', mode: 'plan' }],
    });
    expect((planned as HostReport).changes.length).toBe(3);
  });
});
