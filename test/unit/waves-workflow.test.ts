/**
 * The check between waves of a rollout, against the shared dev server with test doubles for provision's activities
 * over in-memory hosts (rollouts themselves are proven on simulators in test/integration/durability.test.ts): each
 * wave's hosts are planned again before the next wave starts; a host whose change did not hold halts the rollout
 * with later waves untouched, and `resume` after the fix runs it again, checks it again and goes on.
 */
import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StepInput } from '../../activities';
import type { Change } from '../../model/report';
import { specSchema } from '../../model/schema';
import { FLEET_QUERY, RESUME_UPDATE, type FleetProgress } from '../../model/waves';
import type { FleetReport } from '../../workflows/fleet';
import { doublesWorker, testEnv, type TestEnv } from '../support/temporal';

let env: TestEnv;
const taskQueue = `waves-workflow-${randomBytes(3).toString('hex')}`;
const HOSTS = ['w1', 'w2', 'w3'];

/** Each host's resources; the spec wants `package:curl` installed. */
const hosts = new Map<string, Map<string, string>>();
/** Hosts on which something undoes the change right after it is applied (a fight with another tool, say). */
const undone = new Set<string>();
/** Hosts whose apply fails (a broken mirror, say). */
const failing = new Set<string>();
const calls: { host: string; mode: string }[] = [];

const doubles = {
  async findEarlierRun() {
    return undefined;
  },
  async inspectHost() {
    return { changes: [], findings: [], hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDouble' };
  },
  async ensureBasePackages(i: StepInput) {
    calls.push({ host: i.host, mode: i.mode });
    if (i.mode === 'apply' && failing.has(i.host)) throw ApplicationFailure.nonRetryable('the mirror is broken');
    const state = hosts.get(i.host)!;
    const changes: Change[] =
      state.get('package:curl') === 'installed' ? [] : [{ resource: 'package:curl', action: 'install' }];
    if (i.mode === 'apply' && changes.length > 0 && !undone.has(i.host)) state.set('package:curl', 'installed');
    return { changes, findings: [] };
  },
  async ensureDockerEngine() {
    return { changes: [], findings: [] };
  },
  async ensureOpsUser() {
    return { changes: [], findings: [] };
  },
  async ensureStackLayout() {
    return { changes: [], findings: [] };
  },
  async recordApplied() {
    return { changes: [], findings: [] };
  },
};

let worker: { stop(): Promise<void> } | undefined;

beforeAll(async () => {
  env = await testEnv();
  worker = await doublesWorker(env, taskQueue, doubles);
});

afterAll(async () => {
  await worker?.stop();
  await env?.teardown();
});

/** A provision of the three hosts in waves of `waves`, each wave checked before the next. */
function startRollout(waves: number[]) {
  const spec = specSchema.parse({
    version: 1,
    hosts: HOSTS.map((name, i) => ({
      name,
      address: `203.0.113.${i + 1}`,
      hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDouble',
    })),
  });
  return env.client.workflow.start('fleet', {
    taskQueue,
    workflowId: `provision/fleet/waves-check-${randomBytes(3).toString('hex')}`,
    args: [
      {
        operation: 'provision',
        workflowType: 'provisionHost',
        spec,
        mode: 'apply',
        hosts: HOSTS,
        waves,
        verifyWaves: true,
        startedAt: new Date().toISOString(),
      },
    ],
  });
}

describe('a rollout in waves with a check between waves', () => {
  it('halts at the wave whose change did not hold, later waves untouched; resume after the fix goes on', async () => {
    for (const h of HOSTS) hosts.set(h, new Map());
    undone.add('w2');
    const handle = await startRollout([1, 1, 1]);
    const progress = () => handle.query<FleetProgress>(FLEET_QUERY);
    await expect.poll(async () => (await progress()).halted?.failed, { timeout: 30_000 }).toEqual(['w2']);
    const halted = (await progress()).halted!;
    expect(halted).toMatchObject({ wave: 2, waves: 3, untouched: ['w3'] });
    const w2 = halted.reports.find((r) => r.host === 'w2')!;
    expect(w2.status).toBe('failed');
    expect(w2.error).toMatch(/the check after wave 2 failed: 1 change\(s\) found again after the wave: package:curl/);
    // Wave 1 was applied and then planned again (the check); wave 3 was never touched.
    expect(calls.filter((c) => c.host === 'w1').map((c) => c.mode)).toEqual(['apply', 'plan']);
    expect(calls.filter((c) => c.host === 'w3')).toEqual([]);

    // The fix: nothing undoes the change any more. Resume runs w2 again, checks it again, then wave 3.
    undone.delete('w2');
    await handle.executeUpdate(RESUME_UPDATE);
    const report = (await handle.result()) as FleetReport;
    expect(report.status).toBe('completed');
    expect(report.hosts.map((r) => [r.host, r.status])).toEqual([
      ['w1', 'completed'],
      ['w2', 'completed'],
      ['w3', 'completed'],
    ]);
    expect(calls.filter((c) => c.host === 'w2').map((c) => c.mode)).toEqual(['apply', 'plan', 'apply', 'plan']);
    // The last wave has no wave after it to guard: it is not checked.
    expect(calls.filter((c) => c.host === 'w3').map((c) => c.mode)).toEqual(['apply']);
    expect([...hosts.values()].every((m) => m.get('package:curl') === 'installed')).toBe(true);
  });

  it('a wave halted by a failed host checks all its hosts after the resume, not only the one run again', async () => {
    calls.length = 0;
    for (const h of HOSTS) hosts.set(h, new Map());
    undone.clear();
    failing.add('w2');
    const handle = await startRollout([2, 1]);
    await expect
      .poll(async () => (await handle.query<FleetProgress>(FLEET_QUERY)).halted?.failed, { timeout: 30_000 })
      .toEqual(['w2']);
    // No check while the wave has a failed host.
    expect(calls.filter((c) => c.host === 'w1').map((c) => c.mode)).toEqual(['apply']);
    failing.delete('w2');
    await handle.executeUpdate(RESUME_UPDATE);
    expect(((await handle.result()) as FleetReport).status).toBe('completed');
    // After the resume: w2 applied again, then both hosts of the wave checked before w3.
    expect(calls.filter((c) => c.host === 'w1').map((c) => c.mode)).toEqual(['apply', 'plan']);
    expect(calls.filter((c) => c.host === 'w2').map((c) => c.mode)).toEqual(['apply', 'apply', 'plan']);
    expect(calls.filter((c) => c.host === 'w3').map((c) => c.mode)).toEqual(['apply']);
  });
});
