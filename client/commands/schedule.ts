/**
 * `steward schedule apply|list|pause|resume|trigger|delete`: the spec's `schedules` as Temporal Schedules
 * (model/schedules.ts). `apply` creates, updates and deletes schedules until the namespace holds exactly what the
 * spec asks for, and reports each as created, updated, deleted or unchanged; applying twice changes nothing. The
 * other commands act on the schedules steward made for this task queue (all of them, or the ids given), never on
 * anyone else's. Schedules start their runs through the same encrypting client as the CLI: the spec in each
 * schedule's action is a payload, encrypted before it leaves.
 */
import { createHash } from 'node:crypto';
import { ScheduleOverlapPolicy, type Client, type ScheduleDescription, type ScheduleOptions } from '@temporalio/client';
import {
  desiredSchedules,
  ownedBy,
  planSchedules,
  readScheduleMemo,
  scheduleMemo,
  unpinnedHosts,
  type DesiredSchedule,
  type ExistingSchedule,
  type ScheduleMemo,
  type UnavailableSchedule,
} from '../../model/schedules';
import { startAttributes } from '../../model/search-attributes';
import { cliUser, connectClient, listingClient, type GlobalOptions } from '../context';
import { EXIT, OperationRefusedError, UsageError } from '../errors';
import { KnownHosts } from '../../common/known-hosts';
import { loadSpecCached } from '../spec-cache';
import { describeSchedule, stewardSchedules } from '../../common/schedules';

/** Workflow types this version of steward runs: the functions workflows/index.ts exports. */
async function workflowTypes(): Promise<Set<string>> {
  const workflows = (await import('../../workflows')) as Record<string, unknown>;
  return new Set(Object.keys(workflows).filter((name) => typeof workflows[name] === 'function'));
}

/** JSON with object keys sorted, so equal content always digests the same. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}

/** SHA-256 of everything a schedule is made from (its action's input holds the whole spec). */
export function scheduleDigest(d: DesiredSchedule): string {
  return createHash('sha256').update(canonical(d)).digest('hex');
}

/** The Temporal schedule for `d`; steward's record goes in the action's memo (a schedule's own memo is immutable). */
export function scheduleOptions(d: DesiredSchedule, memo: ScheduleMemo, taskQueue: string): ScheduleOptions {
  return {
    scheduleId: d.id,
    spec: { intervals: [{ every: d.everyMs, offset: d.offsetMs }] },
    action: {
      type: 'startWorkflow',
      workflowType: d.workflowType,
      workflowId: d.workflowId,
      taskQueue,
      args: [d.input],
      memo: { steward: memo },
      staticSummary: d.summary,
      typedSearchAttributes: startAttributes(d),
    },
    policies: {
      overlap: ScheduleOverlapPolicy.SKIP,
      catchupWindow: d.catchupWindowMs,
      pauseOnFailure: d.pauseOnFailure,
    },
    state: { note: d.note },
  };
}

function existing(id: string, d: ScheduleDescription | undefined): ExistingSchedule | undefined {
  if (!d) return undefined;
  const memo = d.action.type === 'startWorkflow' ? readScheduleMemo(d.action.memo) : undefined;
  return { id, ...(memo ? { memo } : {}) };
}

export interface ApplyResult {
  readonly created: string[];
  readonly updated: string[];
  readonly deleted: string[];
  readonly unchanged: string[];
  readonly unavailable: UnavailableSchedule[];
}

/**
 * `schedule apply [--plan]`: brings the namespace's schedules in line with the spec, or with `plan` only reports
 * what it would do. Refuses (exit 1, changing nothing) when a schedule id it needs is taken by a schedule steward
 * did not make for this task queue. A paused schedule stays paused when updated. Safe to repeat.
 */
export async function apply(g: GlobalOptions, o: { plan?: boolean }): Promise<number> {
  const { spec, path } = await loadSpecCached(g.spec);
  const { schedules, unavailable } = desiredSchedules(spec, {
    specPath: path,
    taskQueue: g.taskQueue,
    workflowTypes: await workflowTypes(),
  });
  const knownHosts = KnownHosts.fromEnv();
  const known = await knownHosts.entries().catch((err: Error) => {
    throw new UsageError(err.message);
  });
  const unpinned = unpinnedHosts(spec, schedules, known);
  if (unpinned.length > 0) {
    throw new UsageError(
      `schedules run unattended and never trust a host key on first use: pin hosts[].hostKey for ${unpinned.join(', ')} ` +
        `(or run an operation from the CLI with trustOnFirstUse first: the worker pins the key it sees in ${knownHosts.path})`,
    );
  }
  const desired = schedules.map((d) => ({ ...d, digest: scheduleDigest(d) }));
  const client = await connectClient(g);
  try {
    const found = await stewardSchedules(client, {
      also: desired.map((d) => d.id),
      listing: listingClient(client),
    });
    const current = [...found].flatMap(([id, d]) => existing(id, d) ?? []);
    const plan = planSchedules(desired, current, g.taskQueue);
    if (plan.conflicts.length > 0) {
      throw new OperationRefusedError(
        `cannot apply schedules: ${plan.conflicts.map((c) => `${c.id} ${c.reason}`).join('; ')} — delete or rename it first`,
      );
    }
    const memoOf = (d: DesiredSchedule) =>
      scheduleMemo(d, desired.find((x) => x.id === d.id)!.digest, path, g.taskQueue);
    if (!o.plan) {
      for (const d of plan.create) await client.schedule.create(scheduleOptions(d, memoOf(d), g.taskQueue));
      for (const d of plan.update) {
        const { spec: s, action, policies } = scheduleOptions(d, memoOf(d), g.taskQueue);
        await client.schedule.getHandle(d.id).update((prev) => ({
          spec: s,
          action,
          policies,
          // A schedule someone paused stays paused, with the note saying why.
          state: prev.state.paused ? { paused: true, note: prev.state.note } : { paused: false, note: d.note },
        }));
      }
      for (const id of plan.delete) await client.schedule.getHandle(id).delete();
    }
    const result: ApplyResult = {
      created: plan.create.map((d) => d.id),
      updated: plan.update.map((d) => d.id),
      deleted: [...plan.delete],
      unchanged: plan.unchanged.map((d) => d.id),
      unavailable,
    };
    if (g.json) console.log(JSON.stringify({ plan: !!o.plan, ...result }, null, 2));
    else printApply(result, [...plan.create, ...plan.update, ...plan.unchanged], !!o.plan);
    return EXIT.ok;
  } finally {
    await client.connection.close();
  }
}

function printApply(r: ApplyResult, schedules: readonly DesiredSchedule[], plan: boolean): void {
  const line = (verb: string, id: string) => {
    const d = schedules.find((s) => s.id === id);
    console.log(`${verb.padEnd(13)} ${id.padEnd(36)} ${d ? `${d.note.replace(/^steward: /, '')}` : ''}`);
  };
  for (const id of r.created) line(plan ? 'would create' : 'created', id);
  for (const id of r.updated) line(plan ? 'would update' : 'updated', id);
  for (const id of r.deleted) line(plan ? 'would delete' : 'deleted', id);
  for (const id of r.unchanged) line('unchanged', id);
  for (const u of r.unavailable) {
    console.log(`not scheduled ${u.kind}: workflow ${u.workflowType} is not in this version of steward`);
  }
  const verbs = plan ? ['to create', 'to update', 'to delete'] : ['created', 'updated', 'deleted'];
  console.log(
    `schedules: ${r.created.length} ${verbs[0]}, ${r.updated.length} ${verbs[1]}, ${r.deleted.length} ${verbs[2]}, ` +
      `${r.unchanged.length} unchanged`,
  );
}

/** One schedule as `schedule list` shows it. */
export interface ScheduleView {
  readonly id: string;
  readonly kind: string;
  readonly host?: string;
  readonly secret?: string;
  readonly every: string;
  readonly paused: boolean;
  readonly note?: string;
  readonly spec: string;
  readonly workflowType: string;
  readonly nextRunAt?: string;
  readonly lastRun?: { readonly workflowId: string; readonly runId: string; readonly at: string };
  readonly runs: number;
  readonly skippedOverlap: number;
}

function view(id: string, d: ScheduleDescription, memo: ScheduleMemo): ScheduleView {
  const last = d.info.recentActions.at(-1);
  const next = d.info.nextActionTimes[0];
  return {
    id,
    kind: memo.kind,
    ...(memo.host ? { host: memo.host } : {}),
    ...(memo.secret ? { secret: memo.secret } : {}),
    every: memo.every,
    paused: d.state.paused,
    ...(d.state.note ? { note: d.state.note } : {}),
    spec: memo.spec,
    workflowType: d.action.type === 'startWorkflow' ? d.action.workflowType : '',
    ...(next ? { nextRunAt: next.toISOString() } : {}),
    ...(last
      ? {
          lastRun: {
            workflowId: last.action.workflow.workflowId,
            runId: last.action.workflow.firstExecutionRunId,
            at: last.takenAt.toISOString(),
          },
        }
      : {}),
    runs: d.info.numActionsTaken,
    skippedOverlap: d.info.numActionsSkippedOverlap,
  };
}

/**
 * The schedules steward made for this task queue: those with `ids`, or all of them.
 * @throws UsageError naming ids that are not such schedules.
 */
async function selectOwned(client: Client, g: GlobalOptions, ids: readonly string[]): Promise<ScheduleView[]> {
  const found =
    ids.length > 0
      ? await describeEach(client, ids)
      : await stewardSchedules(client, { listing: listingClient(client) });
  const views: ScheduleView[] = [];
  const unknown: string[] = [];
  for (const [id, d] of found) {
    const e = existing(id, d);
    if (d && e && ownedBy(e, g.taskQueue)) views.push(view(id, d, e.memo!));
    else if (ids.includes(id)) unknown.push(id);
  }
  if (unknown.length > 0) {
    throw new UsageError(`not a schedule steward made for task queue ${g.taskQueue}: ${unknown.join(', ')}`);
  }
  return views.sort((a, b) => (a.id < b.id ? -1 : 1));
}

async function describeEach(client: Client, ids: readonly string[]) {
  const found = new Map<string, ScheduleDescription | undefined>();
  for (const id of new Set(ids)) found.set(id, await describeSchedule(client, id));
  return found;
}

/** `schedule list [ID...]`. */
export async function list(g: GlobalOptions, ids: readonly string[]): Promise<number> {
  const client = await connectClient(g);
  try {
    const schedules = await selectOwned(client, g, ids);
    if (g.json) {
      console.log(JSON.stringify({ schedules }, null, 2));
      return EXIT.ok;
    }
    if (schedules.length === 0)
      console.log(`no schedules for task queue ${g.taskQueue} (run \`steward schedule apply\`)`);
    for (const s of schedules) {
      const last = s.lastRun ? `last ${s.lastRun.workflowId}` : 'no run yet';
      const next = s.paused ? 'paused' : s.nextRunAt ? `next ${s.nextRunAt}` : '';
      console.log(`${s.id.padEnd(36)} every ${s.every.padEnd(6)} ${next.padEnd(30)} ${last}`);
      if (s.paused && s.note) console.log(`${''.padEnd(36)} ${s.note}`);
    }
    return EXIT.ok;
  } finally {
    await client.connection.close();
  }
}

type Act = 'pause' | 'resume' | 'trigger' | 'delete';

const DONE: Record<Act, string> = { pause: 'paused', resume: 'resumed', trigger: 'triggered', delete: 'deleted' };

/**
 * `schedule pause|resume|trigger|delete [ID...]`: on the given schedules, or on every schedule steward made for
 * this task queue (`delete` needs ids or `all`). Pausing records who paused it in the note; resuming restores the
 * note naming the spec. Triggering starts a run now, subject to the schedule's overlap policy (SKIP).
 */
export async function act(
  g: GlobalOptions,
  action: Act,
  ids: readonly string[],
  o: { note?: string; all?: boolean } = {},
): Promise<number> {
  if (action === 'delete' && ids.length === 0 && !o.all) {
    throw new UsageError('schedule delete needs schedule ids, or --all for every schedule steward made');
  }
  const client = await connectClient(g);
  try {
    const schedules = await selectOwned(client, g, ids);
    for (const s of schedules) {
      const handle = client.schedule.getHandle(s.id);
      if (action === 'pause') await handle.pause(o.note ?? `paused by ${cliUser()} with steward schedule pause`);
      if (action === 'resume') await handle.unpause(await managedNote(client, s.id));
      if (action === 'trigger') await handle.trigger();
      if (action === 'delete') await handle.delete();
    }
    const done = schedules.map((s) => s.id);
    if (g.json) console.log(JSON.stringify({ [DONE[action]]: done }, null, 2));
    else if (done.length === 0) console.log(`no schedules for task queue ${g.taskQueue}`);
    else for (const id of done) console.log(`${DONE[action]} ${id}`);
    return EXIT.ok;
  } finally {
    await client.connection.close();
  }
}

/** The note apply gave the schedule (what it does, from which spec). */
async function managedNote(client: Client, id: string): Promise<string | undefined> {
  const d = await describeSchedule(client, id);
  return d?.action.type === 'startWorkflow' ? readScheduleMemo(d.action.memo)?.note : undefined;
}
