/**
 * Approval before a change, end to end through the CLI on a hardened simulator (the run's golden host): `harden
 * --require-approval` plans, prints the plan and its digest and waits; nothing on the host changes while it waits
 * (file hashes, the firewall ruleset, the timer's state, no file written since); `steward approve` applies the
 * approved plan and `steward audit` shows who approved what and when; a rejection applies nothing; a change made by
 * hand between plan and approval makes the run ask again with a new plan; a plan nobody decides expires with nothing
 * applied. Each test makes its own hand-made drift on the hardened host, so there is a plan to approve.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatorExec, type Simulator } from '../../client/dev/simulator';
import { hostName, stage, writeSpec, type Stage } from '../support/fixtures';
import { stewardLive, type LiveCli } from '../support/cli';
import { phase } from '../support/phases';

const TASK_QUEUE = 'approval-test';
const SSHD = '/etc/ssh/sshd_config.d/00-steward.conf';
const TIMER = 'steward-docker-prune.timer';
/** What harden manages that the tests change by hand, and what must stay as it is while a plan waits. */
const FINGERPRINT = [
  `sha256sum ${SSHD} /etc/sysctl.d/* /etc/nftables.conf /etc/login.defs /etc/fail2ban/jail.d/* 2>/dev/null`,
  // Stateless: the rules without their counters.
  'nft -s list ruleset | sha256sum',
  `systemctl is-active ${TIMER} || true`,
].join('; ');

let world: Stage;
let sim: Simulator;
let spec: string;

async function onHost(script: string): Promise<string> {
  const r = await simulatorExec(sim.container, ['sh', '-c', script]);
  if (r.exitCode !== 0) throw new Error(`${script}: exit ${r.exitCode}: ${r.stderr}`);
  return r.stdout.trim();
}

/** `steward harden --require-approval …` as an operator runs it, in a terminal's words (not --json), followed live. */
function hardenWaiting(...args: string[]): LiveCli {
  return stewardLive([
    ...['--spec', spec, '--address', world.env.address, '--task-queue', TASK_QUEUE],
    ...['harden', '--require-approval', ...args],
  ]);
}

/** The run id and plan digest the waiting command printed (revision `n`'s, the newest printed when absent). */
async function waitingPlan(live: LiveCli, n?: number): Promise<{ id: string; plan: string }> {
  const line = /approve: steward approve (\S+) --plan ([0-9a-f]{12})/g;
  if (n !== undefined) await live.waitFor(new RegExp(`plan [0-9a-f]{12} \\(revision ${n}\\) waits for approval`));
  else await live.waitFor(line);
  const all = [...live.stdout().matchAll(line)];
  const last = all.at(-1)!;
  return { id: last[1]!, plan: last[2]! };
}

/** Changes harden would put back: password logins allowed, the prune timer stopped. */
async function driftByHand(): Promise<void> {
  await onHost(`sed -i 's/^PasswordAuthentication no/PasswordAuthentication yes/' ${SSHD} && systemctl reload ssh`);
  await onHost(`systemctl stop ${TIMER}`);
}

beforeAll(async () => {
  world = await stage({ taskQueue: TASK_QUEUE, simulators: 1, golden: 'hardened' });
  sim = world.sims[0]!;
  spec = writeSpec(world.keys, [sim], { harden: { confirmSeconds: 30 } });
  // The golden host was hardened with its own spec; this file's harden leaves it as this spec wants it.
  const r = await phase("harden with this file's spec", () => world.cli(spec, 'harden'));
  if (r.code !== 0) throw new Error(`harden failed: ${r.stderr || r.stdout}`);
}, 600_000);

afterAll(async () => {
  await world?.close();
});

describe('steward harden --require-approval', () => {
  it('changes nothing before approval; approved, applies the plan; the audit names who approved what and when', async () => {
    await driftByHand();
    await onHost('touch /root/approval-mark && sleep 1');
    const before = await onHost(FINGERPRINT);
    const live = hardenWaiting();
    const { id, plan } = await waitingPlan(live);
    const out = live.stdout();
    expect(out).toContain(`update file:${SSHD}`);
    expect(out).toContain(`update service:${TIMER}`);
    // Waiting: the host is as the hand left it, and nothing was written since the plan began.
    await new Promise((r) => setTimeout(r, 3000));
    expect(await onHost(FINGERPRINT)).toBe(before);
    // What steward writes: configuration, the stack, its own state (the applied record, revert points). Services'
    // own state (fail2ban's database, say) moves by itself and is not looked at.
    const written =
      'find /etc /opt /usr/local /var/lib/steward -xdev -type f -newer /root/approval-mark 2>/dev/null; true';
    expect(await onHost(written)).toBe('');
    expect(await onHost(`grep '^PasswordAuthentication' ${SSHD}`)).toBe('PasswordAuthentication yes');

    // `steward status` names the run that waits, and its plan.
    const status = await world.cli(spec, 'status', '--host', hostName(sim));
    const runs = (JSON.parse(status.stdout) as { runs: { workflowId: string; waitingForApproval?: object }[] }).runs;
    expect(runs.find((r) => r.workflowId === id)?.waitingForApproval).toMatchObject({ plan, revision: 1, changes: 2 });

    // A decision naming another plan is refused and changes nothing.
    const wrong = await world.cli(spec, 'approve', id, '--plan', 'abcdefabcdef');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(new RegExp(`waits with plan ${plan}`));
    const approved = await world.cli(spec, 'approve', id, '--plan', plan, '--reason', 'change 42');
    expect(approved.code, approved.stdout + approved.stderr).toBe(0);
    const doc = JSON.parse(approved.stdout) as {
      decision: { by: string; plan: string };
      report: { status: string; findings: { id: string }[] };
    };
    expect(doc.decision.plan.startsWith(plan)).toBe(true);
    expect(doc.report.status).toBe('completed');
    // What the apply changed is what the plan named: nothing outside it.
    const ids = doc.report.findings.map((f) => f.id);
    expect(ids).toContain('approval.granted');
    expect(ids).not.toContain('approval.outside-plan');
    const ended = await live.done;
    expect(ended.code, ended.stdout + ended.stderr).toBe(0);
    expect(ended.stdout).toMatch(new RegExp(`plan ${plan} approved by ${doc.decision.by}`));
    expect(await onHost(`grep '^PasswordAuthentication' ${SSHD}`)).toBe('PasswordAuthentication no');
    expect(await onHost(`systemctl is-active ${TIMER}`)).toBe('active');

    // The audit: the decision, who made it, on which plan and when; the plan runs and the apply after it.
    const audit = await world.cli(spec, 'audit', id);
    expect(audit.code, audit.stderr).toBe(0);
    const timeline = JSON.parse(audit.stdout) as {
      steps: { kind: string; name: string; summary?: string; at: string }[];
    };
    const decision = timeline.steps.find((s) => s.kind === 'update' && s.name === 'decide');
    expect(decision?.summary).toMatch(new RegExp(`^approve plan ${plan} by ${doc.decision.by}: change 42`));
    expect(Date.parse(decision!.at)).toBeGreaterThan(0);
    expect(timeline.steps.filter((s) => s.kind === 'child').map((s) => s.name)).toContain('hardenHost');
  }, 300_000);

  it('a change made by hand after the plan makes the run ask again; a rejection applies nothing', async () => {
    await onHost(`systemctl stop ${TIMER}`);
    const live = hardenWaiting();
    const first = await waitingPlan(live, 1);
    // By hand, after the plan was shown: password logins too.
    await onHost(`sed -i 's/^PasswordAuthentication no/PasswordAuthentication yes/' ${SSHD} && systemctl reload ssh`);
    const before = await onHost(FINGERPRINT);
    const approved = await world.cli(spec, 'approve', first.id, '--plan', first.plan);
    expect(approved.code, approved.stdout).toBe(1);
    expect(approved.stdout).toContain('"revision": 2');
    const second = await waitingPlan(live, 2);
    expect(second.plan).not.toBe(first.plan);
    expect(live.stdout()).toMatch(/planned again: the host no longer matches plan/);
    expect(await onHost(FINGERPRINT)).toBe(before);

    const rejected = await world.cli(spec, 'reject', second.id, '--reason', 'not in this window');
    expect(rejected.code, rejected.stdout + rejected.stderr).toBe(0);
    const ended = await live.done;
    expect(ended.code).toBe(1);
    expect(ended.stdout).toMatch(/rejected by \S+: not in this window; nothing was applied/);
    expect(await onHost(FINGERPRINT)).toBe(before);
    expect(await onHost(`systemctl is-active ${TIMER} || true`)).toBe('inactive');
  }, 300_000);

  it('a plan nobody decides within the window ends the run with nothing applied', async () => {
    await onHost(`systemctl stop ${TIMER}`);
    const before = await onHost(FINGERPRINT);
    const live = hardenWaiting('--approval-window', '5s');
    await waitingPlan(live);
    const ended = await live.done;
    expect(ended.code).toBe(1);
    expect(ended.stdout).toMatch(/not decided within the approval window .*nothing was applied/);
    expect(await onHost(FINGERPRINT)).toBe(before);
  }, 300_000);
});
