/**
 * Approval's pure parts: the plan digest (canonical, so the same plan always gives the same digest and any change a
 * different one), which decisions the run refuses, the UI's text of a plan, the notification of a plan waiting, the
 * spec's `approval` section and the CLI's flags.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { approvalOf } from '../../client/operation-command';
import { UsageError } from '../../client/errors';
import {
  approvalDetails,
  decisionProblem,
  namesPlan,
  planDigest,
  type ApprovalState,
  type PublishedPlan,
} from '../../model/approval';
import { sha256Hex } from '../../model/digest';
import { approvalNotification, notificationBody, summaryLine } from '../../model/notifications';
import type { Change } from '../../model/report';
import { specSchema } from '../../model/schema';
import { validate } from '../../model/validate';

const changes: Change[] = [
  {
    resource: 'file:/etc/ssh/sshd_config.d/00-steward.conf',
    action: 'update',
    before: { sha256: 'a' },
    after: { sha256: 'b' },
  },
  {
    resource: 'service:steward-docker-prune.timer',
    action: 'update',
    before: { active: 'inactive', enabled: 'enabled' },
  },
];
const plan: PublishedPlan = {
  digest: planDigest(changes),
  changes,
  revision: 1,
  publishedAt: '2026-12-07T10:00:00.000Z',
  expiresAt: '2026-12-08T10:00:00.000Z',
};
const waiting: ApprovalState = { status: 'waiting', plan, decisions: [] };

describe('plan digest', () => {
  it('is SHA-256 of the canonical plan: order of changes and keys does not matter, any value does', () => {
    expect(sha256Hex('abc')).toBe(createHash('sha256').update('abc').digest('hex'));
    const reordered: Change[] = [
      { action: 'update', resource: changes[1]!.resource, before: { enabled: 'enabled', active: 'inactive' } },
      changes[0]!,
    ];
    expect(planDigest(reordered)).toBe(plan.digest);
    expect(planDigest([{ ...changes[0]!, after: { sha256: 'c' } }, changes[1]!])).not.toBe(plan.digest);
    expect(planDigest([changes[0]!])).not.toBe(plan.digest);
    expect(planDigest([])).toMatch(/^[0-9a-f]{64}$/);
  });

  it('is named by itself or a prefix of 12 hex digits or more', () => {
    expect(namesPlan(plan.digest, plan.digest)).toBe(true);
    expect(namesPlan(plan.digest.slice(0, 12).toUpperCase(), plan.digest)).toBe(true);
    expect(namesPlan(plan.digest.slice(0, 11), plan.digest)).toBe(false);
    expect(namesPlan(`${plan.digest.slice(0, 11)}x`, plan.digest)).toBe(false);
  });
});

describe('decisions the run refuses', () => {
  const approve = { decision: 'approve' as const, plan: plan.digest, by: 'ann@ops' };
  it('takes one on the plan waiting', () => {
    expect(decisionProblem(waiting, approve)).toBeUndefined();
    expect(decisionProblem(waiting, { ...approve, decision: 'reject', reason: 'no' })).toBeUndefined();
  });
  it('refuses another plan, no reason to reject, no name, no wait, a plan decided', () => {
    expect(decisionProblem(waiting, { ...approve, plan: 'f'.repeat(64) })).toMatch(/waits for a decision on plan/);
    expect(decisionProblem(waiting, { ...approve, decision: 'reject' })).toMatch(/needs a reason/);
    expect(decisionProblem(waiting, { ...approve, by: ' ' })).toMatch(/names who decided/);
    expect(decisionProblem({ ...waiting, status: 'planning' }, approve)).toMatch(/not waiting .*is planning/);
    expect(decisionProblem({ status: 'expired', decisions: [] }, approve)).toMatch(/not waiting .*is expired/);
    const decided = { ...waiting, decisions: [{ ...approve, at: plan.publishedAt, revision: 1 }] };
    expect(decisionProblem(decided, approve)).toMatch(/already decided/);
  });
});

describe('what the UI and a webhook are told', () => {
  it('the current details list every change, the digest and the commands', () => {
    const text = approvalDetails('harden/web1/t', waiting);
    expect(text).toContain(`**Waiting for approval** of plan \`${plan.digest.slice(0, 12)}\``);
    expect(text).toContain('- update `service:steward-docker-prune.timer`');
    expect(text).toContain(`steward approve harden/web1/t --plan ${plan.digest.slice(0, 12)}`);
  });

  it('a plan waiting is told by resource, never by value', () => {
    const n = approvalNotification('harden', { host: 'web1', mode: 'apply' }, plan, {
      trigger: 'cli:ann@ops',
      workflowId: 'harden/web1/t',
      runId: 'r1',
    });
    expect(n).toMatchObject({ event: 'approval.waiting', status: 'waiting', plan: plan.digest, changes: 2 });
    expect(summaryLine(n)).toContain(`steward approve harden/web1/t --plan ${plan.digest.slice(0, 12)}`);
    expect(notificationBody(n, 'json')).not.toContain('inactive');
  });
});

describe('asking for approval', () => {
  const spec = (approval?: unknown) =>
    specSchema.parse({
      version: 1,
      hosts: [{ name: 'web1', address: '203.0.113.1' }],
      ...(approval ? { approval } : {}),
    });

  it('the spec names operations that always ask, and the window', () => {
    expect(spec().approval).toEqual({ operations: [], window: '24h' });
    const parsed = (approval: unknown) =>
      validate(specSchema, { version: 1, hosts: [{ name: 'web1', address: '203.0.113.1' }], approval }, 'spec');
    expect(() => parsed({ operations: ['rotate'] })).toThrow(/approval\.operations\[0\]: Invalid option/);
    expect(() => parsed({ window: 'soon' })).toThrow(/approval\.window/);
  });

  it('--require-approval makes the request; the spec alone makes the run wait', () => {
    const cmd = { operation: 'harden' as const, mode: 'apply' as const };
    expect(approvalOf(cmd, spec())).toEqual({ gated: false });
    expect(approvalOf({ ...cmd, requireApproval: true }, spec())).toEqual({
      request: { windowMs: 24 * 3600_000 },
      gated: true,
    });
    expect(approvalOf({ ...cmd, requireApproval: true, approvalWindow: '5s' }, spec())).toMatchObject({
      request: { windowMs: 5000 },
    });
    expect(approvalOf(cmd, spec({ operations: ['harden'] }))).toEqual({ gated: true });
    expect(approvalOf({ ...cmd, operation: 'converge' }, spec({ operations: ['deploy'] }))).toEqual({ gated: true });
    expect(approvalOf({ ...cmd, operation: 'deploy' }, spec({ operations: ['harden'] }))).toEqual({ gated: false });
  });

  it('refuses flags that cannot work, naming them', () => {
    const cmd = { operation: 'harden' as const, mode: 'apply' as const, requireApproval: true };
    expect(() => approvalOf({ ...cmd, operation: 'drift' }, spec())).toThrow(UsageError);
    expect(() => approvalOf({ ...cmd, mode: 'plan' }, spec())).toThrow(/--require-approval with --plan/);
    expect(() => approvalOf({ ...cmd, approvalWindow: 'later' }, spec())).toThrow(/--approval-window "later"/);
    expect(() => approvalOf({ ...cmd, requireApproval: false, approvalWindow: '1h' }, spec())).toThrow(
      /--approval-window needs --require-approval/,
    );
  });
});
