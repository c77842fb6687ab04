/**
 * The skeleton every per-host operation shares: steps run in order as activities, live progress through a query,
 * search attributes for the UI, and one report — returned on success, attached to the failure otherwise. Before its
 * first step a run started with steward's search attributes checks that no earlier steward run on the host is still
 * running (the host lock, model/runs.ts); if one is, a scheduled run waits for it, and any other does nothing and
 * completes with outcome `skipped`.
 */
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  condition,
  defineQuery,
  defineUpdate,
  executeChild,
  metricMeter,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities, StepInput, StepResult } from '../activities';
import type { Change, ControlResult, Finding, HostReport, Mode, Operation, StepReport } from '../model/report';
import type { Spec } from '../model/schema';
import {
  APPROVABLE_OPERATIONS,
  APPROVAL_QUERY,
  approvalDetails,
  DEFAULT_APPROVAL_WINDOW_MS,
  DECIDE_UPDATE,
  decisionProblem,
  planDigest,
  shortDigest,
  type ApprovalRequest,
  type ApprovalState,
  type Decision,
  type PublishedPlan,
  type RecordedDecision,
} from '../model/approval';
import { assertPolicy } from '../model/governance';
import { LAST_SUCCESS, OPERATIONS, operationLabels } from '../model/metrics';
import { approvalNotification, notificationFor, subscribers, type Delivery } from '../model/notifications';
import { isFleetId } from '../model/ids';
import { durationMs } from '../model/units';
import { scheduled, type RunRef } from '../model/runs';
import {
  StewardChanges,
  StewardHost,
  StewardOperation,
  StewardOutcome,
  StewardTrigger,
} from '../model/search-attributes';
import { HOST_STEP, NOTIFY, RUN_GUARD } from './options';
import { proxySteps } from './retry';

const { recordApplied } = proxySteps<Activities>(HOST_STEP);
const { findEarlierRun } = proxyActivities<Activities>(RUN_GUARD);
const { deliverNotification } = proxyActivities<Activities>(NOTIFY);
const APPLIED = ['provision', 'harden', 'deploy'] as const;

/** Marks runs that tell the spec's webhooks of their end (runs started before end without a word). */
export const NOTIFY_PATCH = 'steward-notify-webhooks';

/** Marks runs whose apply fails when it leaves a control failing (runs started before complete as they began). */
export const CONTROLS_FAIL_PATCH = 'steward-failing-controls-fail-the-run';

/** Input of a host workflow. */
export interface HostOperationInput {
  readonly spec: Spec;
  readonly host: string;
  readonly mode: Mode;
  /** Apply only after a person approved the plan (model/approval.ts); apply mode only. */
  readonly approval?: ApprovalRequest;
}

export interface HostProgress {
  readonly host: string;
  readonly operation: Operation;
  readonly steps: readonly StepReport[];
  /** The run this one waits for before its first step (a scheduled run queued behind another on the host). */
  readonly waitingFor?: string;
}

/** How long a scheduled run waits for the run holding its host before it gives its turn up (outcome `skipped`). */
export const HOST_LOCK_WAIT_MS = 30 * 60_000;

/** Live step list, queried by the CLI while the workflow runs. */
export const progressQuery = defineQuery<HostProgress>('progress');

/** Where a run that needs approval stands (model/approval.ts). */
export const approvalQuery = defineQuery<ApprovalState>(APPROVAL_QUERY);
/** A decision on the published plan; refused unless it names that plan and the run waits for one. */
export const decideUpdate = defineUpdate<RecordedDecision, [Decision]>(DECIDE_UPDATE);

export class HostOperation {
  private readonly steps: StepReport[];
  private hostKey: string | undefined;
  private waitingFor: string | undefined;
  private approval: ApprovalState = { status: 'planning', decisions: [] };
  /** A decision the update handler took, until the run acts on it. */
  private decided: RecordedDecision | undefined;
  /** The changes of the plan the apply may make (set when the gate lets the run apply). */
  private approvedChanges: Change[] | undefined;
  /** The steps the last plan ran (completed), whose changes the apply is held to. */
  private plannedSteps: string[] = [];

  constructor(
    private readonly operation: Operation,
    private readonly input: HostOperationInput,
    stepNames: readonly string[],
  ) {
    const gated = this.gated;
    this.steps = [...(gated ? ['approval'] : []), ...stepNames].map((step) => ({
      step,
      status: 'pending',
      changes: [],
      findings: [],
    }));
    setHandler(progressQuery, () => ({
      host: input.host,
      operation,
      steps: this.steps,
      ...(this.waitingFor ? { waitingFor: this.waitingFor } : {}),
    }));
    if (!gated) return;
    setHandler(approvalQuery, () => this.approval);
    setHandler(
      decideUpdate,
      (d) => {
        const recorded: RecordedDecision = {
          decision: d.decision,
          plan: this.approval.plan!.digest,
          by: d.by,
          ...(d.reason?.trim() ? { reason: d.reason.trim() } : {}),
          at: new Date().toISOString(),
          revision: this.approval.plan!.revision,
        };
        this.decided = recorded;
        this.approval = { ...this.approval, decisions: [...this.approval.decisions, recorded] };
        return recorded;
      },
      { validator: (d) => this.refuseDecision(d) },
    );
  }

  /** Whether this run applies only after an approved plan (operations with apply-only steps leave those out). */
  get gatedByApproval(): boolean {
    return this.gated;
  }

  /**
   * The run waits for an approved plan before it applies: asked for (--require-approval), or the spec's
   * `approval.operations` names the operation (a converge's stages included).
   */
  private get gated(): boolean {
    if (this.input.mode !== 'apply' || !APPROVABLE_OPERATIONS.some((o) => o === this.operation)) return false;
    return (
      this.input.approval !== undefined || !!this.input.spec.approval?.operations.some((o) => o === this.operation)
    );
  }

  /** How long a published plan waits: as asked, else the spec's window. */
  private get approvalWindowMs(): number {
    const window = this.input.spec.approval?.window;
    return this.input.approval?.windowMs ?? (window ? durationMs(window) : DEFAULT_APPROVAL_WINDOW_MS);
  }

  private refuseDecision(d: Decision): void {
    const problem = this.decided ? 'this plan was already decided' : decisionProblem(this.approval, d);
    if (problem) throw new Error(problem);
  }

  /** Pins the key seen on first trust for the rest of the run and reports it so the CLI can write it to the spec. */
  pinHostKey(key: string): void {
    this.hostKey = key;
  }

  get stepInput(): StepInput {
    return {
      spec: this.input.spec,
      host: this.input.host,
      mode: this.input.mode,
      ...(this.hostKey ? { hostKey: this.hostKey } : {}),
    };
  }

  /** Runs one named step, recording status, changes and duration. */
  async step<T extends object>(name: string, run: (input: StepInput) => Promise<T>): Promise<T> {
    const i = this.steps.findIndex((s) => s.step === name);
    const started = Date.now();
    this.update(i, { status: 'running', startedAt: new Date(started).toISOString() });
    try {
      const result = await run(this.stepInput);
      const { changes = [], findings = [], controls } = result as Partial<StepResult> & { controls?: ControlResult[] };
      this.update(i, {
        status: 'completed',
        changes,
        // With what the step noted while it ran (the approval gate's waits and deliveries).
        findings: [...(this.steps[i]?.findings ?? []), ...findings],
        ...(controls ? { controls } : {}),
        durationMs: Date.now() - started,
      });
      return result;
    } catch (err) {
      this.update(i, { status: 'failed', error: describeFailure(err), durationMs: Date.now() - started });
      throw err;
    }
  }

  /** Whether a step so far reported the finding `id`. */
  found(id: string): boolean {
    return this.steps.some((s) => s.findings.some((f) => f.id === id));
  }

  /** Adds a finding to step `name` (one that did not run, to say why). */
  note(name: string, finding: Finding): void {
    const i = this.steps.findIndex((s) => s.step === name);
    const s = this.steps[i];
    if (s) this.update(i, { findings: [...s.findings, finding] });
  }

  /** Marks steps that did not run in this path (e.g. rollback after a good deploy) as skipped. */
  skip(...names: string[]): void {
    for (const name of names) {
      const i = this.steps.findIndex((s) => s.step === name);
      if (this.steps[i]?.status === 'pending') this.update(i, { status: 'skipped' });
    }
  }

  /** Runs `body`, then records the outcome in search attributes and returns (or throws with) the report. */
  async run(body: () => Promise<void>): Promise<HostReport> {
    try {
      // The CLI refuses a violating spec; a run started any other way is refused here, before any step.
      assertPolicy(this.input.spec);
      let holder = await this.earlierRun();
      // A scheduled run queues behind the holder instead of skipping its turn; one started by a person yields.
      if (holder && scheduled(workflowInfo().typedSearchAttributes.get(StewardTrigger))) {
        holder = await this.waitAfter(holder);
      }
      if (holder) return this.yieldTo(holder);
      if (this.gated) await this.step('approval', () => this.approved());
      await body();
      if (this.gated) {
        const outside = this.outsidePlan();
        if (outside.length > 0) {
          this.note('approval', {
            id: 'approval.outside-plan',
            severity: 'high',
            message:
              `the apply made ${outside.length} change(s) the approved plan did not name (the host moved after the ` +
              `last plan): ${outside.map((c) => `${c.action} ${c.resource}`).join(', ')}`,
          });
        }
      }
      // An apply that leaves a control failing has failed, whatever else it did: it names each (not-applicable is a
      // pass with its reason). Runs started before this rule complete as they began.
      if (this.input.mode === 'apply' && patched(CONTROLS_FAIL_PATCH)) {
        const failing = failingControls(this.steps.flatMap((s) => s.controls ?? []));
        if (failing) {
          throw ApplicationFailure.nonRetryable(
            `${this.operation} left controls failing: ${failing}`,
            'ControlsFailing',
          );
        }
      }
      // What drift compares against to tell the spec's changes (intentional) from the host's (corrective).
      const applied = APPLIED.find((o) => o === this.operation);
      if (applied && this.input.mode === 'apply') await recordApplied({ ...this.stepInput, operation: applied });
    } catch (err) {
      const report = await this.notified(this.report('failed', describeFailure(err)));
      this.record(report);
      throw ApplicationFailure.create({
        message: `${this.operation} of ${this.input.host} failed: ${report.error}`,
        type: 'OperationFailed',
        nonRetryable: true,
        details: [report],
      });
    }
    const report = await this.notified(this.report('completed'));
    this.record(report);
    return report;
  }

  /**
   * The approval gate: plans (this operation in plan mode, as a child run), publishes the plan and waits for a
   * decision on it; once approved, plans again and returns only when the host still matches the approved plan — else
   * the new plan waits for a decision of its own. A plan with no change needs none. Nothing is applied here.
   * @throws ApplicationFailure (non-retryable) when the plan is rejected or no decision comes within the window.
   */
  private async approved(): Promise<object> {
    const windowMs = this.approvalWindowMs;
    const found = (f: Finding) => this.note('approval', f);
    let approved: RecordedDecision | undefined;
    for (let revision = 1; ; revision++) {
      this.approval = { ...this.approval, status: 'planning' };
      // After a decision the UI says the run plans again, no longer that it waits.
      if (approved) this.publish();
      const changes = await this.planned(revision);
      const digest = planDigest(changes);
      if (approved?.plan === digest) {
        this.approval = { ...this.approval, status: 'approved' };
        this.approvedChanges = changes;
        this.publish();
        found({
          id: 'approval.granted',
          severity: 'info',
          message:
            `plan ${shortDigest(approved.plan)} (${changes.length} change(s)) approved by ${approved.by} at ` +
            `${approved.at}${approved.reason ? `: ${approved.reason}` : ''}; the host still matched it`,
        });
        return {};
      }
      if (changes.length === 0) {
        this.approval = { ...this.approval, status: 'not-needed' };
        this.approvedChanges = [];
        this.publish();
        found({
          id: 'approval.not-needed',
          severity: 'info',
          message: approved
            ? `the host needs nothing any more (plan ${shortDigest(approved.plan)} was approved): nothing to apply`
            : 'the plan changes nothing: no approval needed',
        });
        return {};
      }
      let replanned: string | undefined;
      if (approved) {
        replanned =
          `the host no longer matches plan ${shortDigest(approved.plan)} approved by ${approved.by}: ` +
          `plan ${shortDigest(digest)} has ${changes.length} change(s)`;
        found({ id: 'approval.plan-changed', severity: 'medium', message: `${replanned}; asked again` });
        approved = undefined;
      }
      const now = Date.now();
      const plan: PublishedPlan = {
        digest,
        changes,
        revision,
        publishedAt: new Date(now).toISOString(),
        expiresAt: new Date(now + windowMs).toISOString(),
      };
      this.approval = {
        status: 'waiting',
        plan,
        decisions: this.approval.decisions,
        ...(replanned ? { replanned } : {}),
      };
      this.decided = undefined;
      this.publish();
      found({
        id: 'approval.requested',
        severity: 'info',
        message: `plan ${shortDigest(digest)} (revision ${revision}, ${changes.length} change(s)) waits for a decision until ${plan.expiresAt}`,
      });
      await this.tellWaiting(plan);
      // The window is the one published: the delivery above took part of it.
      const left = Math.max(1, Date.parse(plan.expiresAt) - Date.now());
      if (!(await condition(() => this.decided !== undefined, left))) {
        this.approval = { ...this.approval, status: 'expired' };
        this.publish();
        throw ApplicationFailure.nonRetryable(
          `plan ${shortDigest(digest)} was not decided within the approval window (until ${plan.expiresAt}); ` +
            'nothing was applied',
          'ApprovalExpired',
        );
      }
      const d = this.decided!;
      if (d.decision === 'reject') {
        this.approval = { ...this.approval, status: 'rejected' };
        this.publish();
        throw ApplicationFailure.nonRetryable(
          `plan ${shortDigest(digest)} was rejected by ${d.by}: ${d.reason ?? ''}; nothing was applied`,
          'ApprovalRejected',
        );
      }
      approved = d;
    }
  }

  /** The changes this operation would make now: the same workflow in plan mode, as a child run. */
  private async planned(revision: number): Promise<Change[]> {
    const info = workflowInfo();
    // In plan mode the child never waits for approval itself.
    const report = await executeChild<(i: HostOperationInput) => Promise<HostReport>>(info.workflowType, {
      workflowId: `${info.workflowId}/plan-${revision}`,
      // A key trusted on first use is pinned in the worker's known-hosts file by the first plan: later plans and
      // the apply find it there, with the spec as given.
      args: [{ ...this.input, mode: 'plan' }],
    });
    this.plannedSteps = report.steps.filter((st) => st.status === 'completed').map((st) => st.step);
    return [...report.changes];
  }

  /**
   * What the apply changed that the approved plan did not name (by resource and action): the host moved in the
   * seconds between the last plan and the apply. Reported, never hidden; empty when the apply kept to the plan.
   */
  private outsidePlan(): Change[] {
    // By resource: the apply may say how it changed one differently (a recreate where the plan said reload). Steps
    // a plan does not run (a deploy's commit of its release record) are the apply's own.
    const planned = new Set((this.approvedChanges ?? []).map((c) => c.resource));
    const ranInPlan = new Set(this.plannedSteps);
    return this.steps
      .filter((s) => s.step !== 'approval' && ranInPlan.has(s.step))
      .flatMap((s) => s.changes)
      .filter((c) => !planned.has(c.resource));
  }

  /** The approval state as the Web UI shows the run (its current details). */
  private publish(): void {
    setCurrentDetails(approvalDetails(workflowInfo().workflowId, this.approval));
  }

  /** Tells the webhooks subscribed to `approval.waiting` that a plan waits; a miss is a finding, never a failure. */
  private async tellWaiting(plan: PublishedPlan): Promise<void> {
    const webhooks = subscribers(this.input.spec.notifications?.webhooks ?? [], 'approval.waiting');
    if (webhooks.length === 0) return;
    const info = workflowInfo();
    const notification = approvalNotification(this.operation, this.input, plan, {
      trigger: info.typedSearchAttributes.get(StewardTrigger) ?? 'unknown',
      workflowId: info.workflowId,
      runId: info.runId,
    });
    let deliveries: Delivery[];
    try {
      deliveries = await CancellationScope.nonCancellable(() => deliverNotification({ notification, webhooks }));
    } catch (err) {
      deliveries = webhooks.map((w) => ({
        webhook: w.name,
        delivered: false,
        attempts: 0,
        error: describeFailure(err),
      }));
    }
    for (const d of deliveries) {
      this.note('approval', notifyFinding(d, 'approval.waiting'));
    }
  }

  /**
   * Tells the spec's webhooks of this run's end when it deserves it (model/notifications.ts: a scheduled run that
   * failed or found drift). Each delivery is a finding of the report: `notify.sent`, or `notify.missed` with why;
   * nothing here fails the run.
   */
  private async notified(report: HostReport): Promise<HostReport> {
    const webhooks = this.input.spec.notifications?.webhooks ?? [];
    if (webhooks.length === 0) return report;
    const info = workflowInfo();
    const notification = notificationFor(report, {
      trigger: info.typedSearchAttributes.get(StewardTrigger),
      nested: info.parent !== undefined && !isFleetId(info.parent.workflowId),
      workflowId: info.workflowId,
      runId: info.runId,
      at: new Date().toISOString(),
    });
    const told = notification ? subscribers(webhooks, notification.event) : [];
    if (!notification || told.length === 0 || !patched(NOTIFY_PATCH)) return report;
    let deliveries: Delivery[];
    try {
      // A cancelled run is told of too: the delivery runs outside the run's cancellation.
      deliveries = await CancellationScope.nonCancellable(() => deliverNotification({ notification, webhooks: told }));
    } catch (err) {
      // The activity reports failed deliveries itself; this is a lost worker or a timeout around it.
      const error = describeFailure(err);
      deliveries = told.map((w) => ({ webhook: w.name, delivered: false, attempts: 0, error }));
    }
    const findings: Finding[] = deliveries.map((d) => notifyFinding(d, notification.event));
    return { ...report, findings: [...report.findings, ...findings] };
  }

  /**
   * A running steward run on this host that started before this one (the host lock), its own parent and root left
   * out. Only runs started with steward's host and operation attributes are guarded: visibility finds runs by them.
   */
  private async earlierRun(): Promise<RunRef | undefined> {
    const info = workflowInfo();
    const host = info.typedSearchAttributes.get(StewardHost);
    const operation = info.typedSearchAttributes.get(StewardOperation);
    if (host === undefined || operation === undefined) return undefined;
    const ancestors = [info.parent?.workflowId, info.root?.workflowId].filter((id): id is string => !!id);
    return findEarlierRun({ host, operation, workflowId: info.workflowId, runId: info.runId, ancestors });
  }

  /**
   * Waits until no earlier run holds the host, asking again at growing intervals (5 s up to 1 min), for at most
   * {@link HOST_LOCK_WAIT_MS}. The progress query names the run waited for. Returns the holder when the wait ends
   * without the host coming free.
   */
  private async waitAfter(first: RunRef): Promise<RunRef | undefined> {
    const deadline = Date.now() + HOST_LOCK_WAIT_MS;
    let holder: RunRef | undefined = first;
    for (let pause = 5_000; holder && Date.now() < deadline; pause = Math.min(pause * 2, 60_000)) {
      this.waitingFor = holder.workflowId;
      await sleep(Math.min(pause, Math.max(1_000, deadline - Date.now())));
      holder = await this.earlierRun();
    }
    this.waitingFor = undefined;
    return holder;
  }

  /** Completes without a step: another run holds the host. */
  private yieldTo(holder: RunRef): HostReport {
    this.skip(...this.steps.map((s) => s.step));
    const what = holder.operation ? `a ${holder.operation}` : 'another steward run';
    const report: HostReport = {
      ...this.report('completed'),
      findings: [
        {
          id: 'run.already-running',
          severity: 'info',
          message: `${what} of ${this.input.host} is already running (workflow ${holder.workflowId}); this run changed nothing`,
        },
      ],
      alreadyRunning: holder.workflowId,
      ...(holder.operation ? { alreadyRunningOperation: holder.operation } : {}),
    };
    this.record(report);
    return report;
  }

  private report(status: HostReport['status'], error?: string): HostReport {
    const changes: Change[] = this.steps.flatMap((s) => s.changes);
    const findings: Finding[] = this.steps.flatMap((s) => s.findings);
    const controls: ControlResult[] = this.steps.flatMap((s) => s.controls ?? []);
    return {
      host: this.input.host,
      operation: this.operation,
      mode: this.input.mode,
      status,
      changes,
      findings,
      steps: this.steps,
      ...(controls.length > 0 ? { controls } : {}),
      ...(this.hostKey ? { hostKey: this.hostKey } : {}),
      ...(error ? { error } : {}),
    };
  }

  private record(report: HostReport): void {
    this.measure(report);
    if (!hasStewardAttributes()) return;
    upsertSearchAttributes([
      { key: StewardOutcome, value: report.alreadyRunning ? 'skipped' : report.status },
      { key: StewardChanges, value: report.changes.length },
    ]);
  }

  /** steward's metrics of the run's end (model/metrics.ts); the SDK emits none while a task is replayed. */
  private measure(report: HostReport): void {
    const outcome = report.alreadyRunning ? 'skipped' : report.status === 'completed' ? 'completed' : 'failed';
    const { host, mode } = this.input;
    const trigger = workflowInfo().typedSearchAttributes.get(StewardTrigger);
    metricMeter
      .createCounter(OPERATIONS, undefined, 'host operations that ended')
      .add(1, operationLabels({ operation: this.operation, host, mode, outcome, trigger }));
    if (outcome === 'completed') {
      metricMeter
        .createGauge(LAST_SUCCESS, 'int', 's', 'when the operation last completed on the host')
        .set(Math.floor(Date.now() / 1000), { operation: this.operation, host, mode });
    }
  }

  private update(i: number, patch: Partial<StepReport>): void {
    const s = this.steps[i];
    if (s) this.steps[i] = { ...s, ...patch };
  }
}

/** A delivery as the report tells it. */
function notifyFinding(d: Delivery, event: string): Finding {
  return d.delivered
    ? { id: 'notify.sent', severity: 'info', message: `told webhook ${d.webhook} of ${event}` }
    : {
        id: 'notify.missed',
        severity: 'medium',
        message: `webhook ${d.webhook} was not told of ${event} after ${d.attempts} attempt(s): ${d.error}`,
      };
}

/** Only upsert when the run was started with steward's attributes (a server without them would reject the upsert). */
function hasStewardAttributes(): boolean {
  return workflowInfo()
    .typedSearchAttributes.getAll()
    .some((p) => p.key.name.startsWith('Steward'));
}

/** The root cause of a failure, in one line. */
export function describeFailure(err: unknown): string {
  let e: unknown = err;
  while ((e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) && e.cause) e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

/** The failing controls, one clause each: id, observed and expected values, and the note. Empty when none fail. */
export function failingControls(controls: readonly ControlResult[]): string {
  return controls
    .filter((c) => c.status === 'fail')
    .map((c) => `${c.control} (observed ${c.observed}, expected ${c.expected}${c.note ? `; ${c.note}` : ''})`)
    .join('; ');
}
