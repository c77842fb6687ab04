/**
 * The Temporal Schedules a spec asks for, and the plan that brings a namespace's schedules in line with it — what
 * `steward schedule apply` does. Per host: drift (repair by default), the memory check, `verify` when enabled, one rotation schedule per
 * secret with a `rotateEvery`, and with a backup repository the backup and the restore drill; once per task queue,
 * the audit export. Each schedule starts its runs with the
 * spec as it was applied, steward's search attributes, `StewardTrigger` = `schedule:<id>`, overlap SKIP, the spec's
 * catch-up window and pause-on-failure. Schedule ids are `steward/<host>/<kind>`; a schedule's memo records the
 * task queue it serves and a digest of what it was made from, so a second apply changes nothing and only schedules
 * steward made for this task queue are ever changed or deleted. Pure.
 */
import { z } from 'zod';
import { secretDeliveries } from './render/stack';
import { hostPlan } from './plan';
import { runSummary, scheduleTrigger } from './runs';
import { scheduledWorkflowId } from './ids';
import { schedulesSchema, type Spec } from './schema';
import { durationMs } from './units';

/** Every schedule steward makes has an id under this prefix. */
export const SCHEDULE_PREFIX = 'steward/';

export const SCHEDULE_KINDS = ['drift', 'memory', 'verify', 'rotate', 'audit', 'backup', 'drill', 'watchdog'] as const;
export type ScheduleKind = (typeof SCHEDULE_KINDS)[number];

/** The workflow each kind runs; a kind whose workflow this version of steward lacks is not scheduled. */
export const SCHEDULE_WORKFLOWS: Readonly<Record<ScheduleKind, string>> = {
  drift: 'driftHost',
  memory: 'memoryCheckHost',
  verify: 'verifyHost',
  rotate: 'rotateSecret',
  audit: 'auditExport',
  backup: 'backupHost',
  drill: 'restoreHost',
  watchdog: 'checkWatchdog',
};

/** What the spec is applied from and to. */
export interface ScheduleContext {
  /** Absolute path of the spec file, named in each schedule's note. */
  readonly specPath: string;
  /** Task queue of the worker the runs go to; also the scope of what apply may change. */
  readonly taskQueue: string;
  /** Workflow types this version of steward has (the exports of workflows/index.ts). */
  readonly workflowTypes: ReadonlySet<string>;
}

/** One schedule the spec asks for. */
export interface DesiredSchedule {
  readonly id: string;
  readonly kind: ScheduleKind;
  readonly host?: string;
  readonly secret?: string;
  /** `StewardOperation` of the runs. */
  readonly operation: string;
  readonly workflowType: string;
  /** The id Temporal appends `-<time>` to for each run. */
  readonly workflowId: string;
  /** The workflow's one argument. */
  readonly input: Readonly<Record<string, unknown>>;
  /** The interval as the spec says it (`15min`), and in milliseconds. */
  readonly every: string;
  readonly everyMs: number;
  /** Where in each interval the run falls, from the id: a fleet's schedules do not all fire at once. */
  readonly offsetMs: number;
  readonly catchupWindowMs: number;
  readonly pauseOnFailure: boolean;
  /** `StewardTrigger` of the runs. */
  readonly trigger: string;
  /** One line for the UI, on the schedule's runs. */
  readonly summary: string;
  /** The schedule's note: what it does and the spec it came from. */
  readonly note: string;
}

/** A kind the spec enables whose workflow this version of steward does not have yet. */
export interface UnavailableSchedule {
  readonly kind: ScheduleKind;
  readonly workflowType: string;
}

/** What steward records in a schedule's memo, under `steward`. */
export const scheduleMemoSchema = z.object({
  digest: z.string().min(1),
  taskQueue: z.string().min(1),
  spec: z.string(),
  kind: z.enum(SCHEDULE_KINDS),
  host: z.string().optional(),
  secret: z.string().optional(),
  every: z.string(),
  /** The note apply gives the schedule, restored when it is resumed. */
  note: z.string(),
});
export type ScheduleMemo = z.infer<typeof scheduleMemoSchema>;

/** The memo of a schedule made from `d` with `digest`. */
export function scheduleMemo(d: DesiredSchedule, digest: string, specPath: string, taskQueue: string): ScheduleMemo {
  return {
    digest,
    taskQueue,
    spec: specPath,
    kind: d.kind,
    every: d.every,
    note: d.note,
    ...(d.host ? { host: d.host } : {}),
    ...(d.secret ? { secret: d.secret } : {}),
  };
}

/** steward's record in a schedule's memo, or undefined for a schedule steward did not make. */
export function readScheduleMemo(memo: Readonly<Record<string, unknown>> | undefined): ScheduleMemo | undefined {
  const parsed = scheduleMemoSchema.safeParse(memo?.steward);
  return parsed.success ? parsed.data : undefined;
}

/** 32-bit FNV-1a: a stable spread of schedule ids over their interval. */
function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/** A whole second within `everyMs`, fixed per id. */
export function scheduleOffsetMs(id: string, everyMs: number): number {
  return (fnv1a(id) % Math.max(1, Math.floor(everyMs / 1000))) * 1000;
}

/**
 * Hosts some schedule runs against without a pinned host key, neither in the spec nor among the `known` pins (the
 * worker's known-hosts file, for its name at its address and port): `schedule apply` refuses them. A schedule without
 * a host (the audit export) reads Temporal only and contacts none.
 */
export function unpinnedHosts(
  spec: Spec,
  schedules: readonly DesiredSchedule[],
  known: readonly { readonly name: string; readonly address: string; readonly port: number }[] = [],
): string[] {
  const used = new Set(schedules.flatMap((d) => (d.host ? [d.host] : [])));
  const pinned = (h: Spec['hosts'][number]) =>
    !!h.hostKey || known.some((k) => k.name === h.name && k.address === h.address && k.port === h.port);
  return spec.hosts.filter((h) => used.has(h.name) && !pinned(h)).map((h) => h.name);
}

/**
 * The schedules `spec` asks for, and the enabled kinds this version cannot run yet. Nothing when
 * `schedules.enabled` is false.
 */
export function desiredSchedules(
  spec: Spec,
  ctx: ScheduleContext,
): { schedules: DesiredSchedule[]; unavailable: UnavailableSchedule[] } {
  const s = spec.schedules;
  if (!s.enabled) return { schedules: [], unavailable: [] };
  const hosts = spec.hosts.map((h) => h.name).filter((h) => !s.hosts || s.hosts.includes(h));
  const catchupWindowMs = durationMs(s.catchupWindow);
  // The spec each run gets. Runs do not read the schedules section: at its defaults, a change to one schedule does
  // not update every other one.
  // Unattended runs never trust a host key on first use: each host's pinned key is the only one it accepts.
  const runSpec: Spec = {
    ...spec,
    hosts: spec.hosts.map((h) => ({ ...h, trustOnFirstUse: false })),
    schedules: schedulesSchema.parse({}),
  };
  const unavailable: UnavailableSchedule[] = [];
  const available = (kind: ScheduleKind): boolean => {
    if (ctx.workflowTypes.has(SCHEDULE_WORKFLOWS[kind])) return true;
    unavailable.push({ kind, workflowType: SCHEDULE_WORKFLOWS[kind] });
    return false;
  };
  const make = (o: {
    id: string;
    kind: ScheduleKind;
    host?: string;
    secret?: string;
    operation: string;
    workflowId: string;
    input: Record<string, unknown>;
    every: string;
    pauseOnFailure: boolean | undefined;
    /** What the runs work on, for the summary: a host, a secret on a host. */
    subject: string;
    /** What the schedule does, for its note. */
    what: string;
  }): DesiredSchedule => {
    const everyMs = durationMs(o.every);
    const trigger = scheduleTrigger(o.id);
    const mode = o.input.mode === 'plan' ? 'plan' : 'apply';
    return {
      id: o.id,
      kind: o.kind,
      ...(o.host ? { host: o.host } : {}),
      ...(o.secret ? { secret: o.secret } : {}),
      operation: o.operation,
      workflowType: SCHEDULE_WORKFLOWS[o.kind],
      workflowId: o.workflowId,
      input: o.input,
      every: o.every,
      everyMs,
      offsetMs: scheduleOffsetMs(o.id, everyMs),
      catchupWindowMs,
      pauseOnFailure: o.pauseOnFailure ?? s.pauseOnFailure,
      trigger,
      summary: runSummary(o.operation, mode, o.subject, trigger),
      note: `steward: ${o.what}, every ${o.every}, from ${ctx.specPath}`,
    };
  };

  const schedules: DesiredSchedule[] = [];
  if (s.drift.enabled && available('drift')) {
    for (const host of hosts) {
      const mode = s.drift.repair ? 'apply' : 'plan';
      schedules.push(
        make({
          id: `${SCHEDULE_PREFIX}${host}/drift`,
          kind: 'drift',
          host,
          operation: 'drift',
          workflowId: scheduledWorkflowId('drift', host),
          input: {
            spec: hostPlan(runSpec, host),
            host,
            mode,
            audit: s.drift.audit,
            auditMaxAgeMs: durationMs(s.drift.auditEvery),
          },
          every: s.drift.every,
          pauseOnFailure: s.drift.pauseOnFailure,
          subject: host,
          what: `${s.drift.repair ? 'drift repair' : 'drift plan'} of ${host}`,
        }),
      );
    }
  }
  if (s.memory.enabled && available('memory')) {
    for (const host of hosts) {
      schedules.push(
        make({
          id: `${SCHEDULE_PREFIX}${host}/memory`,
          kind: 'memory',
          host,
          operation: 'memory',
          workflowId: scheduledWorkflowId('memory', host),
          input: { spec: hostPlan(runSpec, host), host, mode: s.memory.repair ? 'apply' : 'plan' },
          every: s.memory.every,
          pauseOnFailure: s.memory.pauseOnFailure,
          subject: host,
          what: `memory check${s.memory.repair ? ' with repair' : ''} of ${host}`,
        }),
      );
    }
  }
  if (s.verify.enabled && available('verify')) {
    for (const host of hosts) {
      schedules.push(
        make({
          id: `${SCHEDULE_PREFIX}${host}/verify`,
          kind: 'verify',
          host,
          operation: 'verify',
          workflowId: scheduledWorkflowId('verify', host),
          input: { spec: hostPlan(runSpec, host), host, mode: 'plan' },
          every: s.verify.every,
          pauseOnFailure: s.verify.pauseOnFailure,
          subject: host,
          what: `verification of ${host}`,
        }),
      );
    }
  }
  if (spec.backup.repository) {
    for (const kind of ['backup', 'drill'] as const) {
      const b = s[kind];
      if (!b.enabled || !available(kind)) continue;
      for (const host of hosts) {
        schedules.push(
          make({
            id: `${SCHEDULE_PREFIX}${host}/${kind}`,
            kind,
            host,
            operation: kind,
            workflowId: scheduledWorkflowId(kind, host),
            input: { spec: hostPlan(runSpec, host), host, mode: 'apply', ...(kind === 'drill' ? { drill: true } : {}) },
            every: b.every,
            pauseOnFailure: b.pauseOnFailure,
            subject: host,
            what: kind === 'backup' ? `backup of ${host}` : `restore drill of ${host}'s newest snapshot`,
          }),
        );
      }
    }
  }
  const consumed = new Set(secretDeliveries(spec).map((d) => d.secret));
  const rotating = Object.entries(spec.secrets)
    .filter(([name, secret]) => secret.rotateEvery && consumed.has(name))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (s.rotation.enabled && rotating.length > 0 && available('rotate')) {
    for (const host of hosts) {
      for (const [secret, { rotateEvery }] of rotating) {
        const every =
          durationMs(rotateEvery!) < durationMs(s.rotation.checkEvery) ? rotateEvery! : s.rotation.checkEvery;
        schedules.push(
          make({
            id: `${SCHEDULE_PREFIX}${host}/rotate-${secret}`,
            kind: 'rotate',
            host,
            secret,
            operation: 'rotate',
            workflowId: scheduledWorkflowId('rotate', host, secret),
            input: { spec: hostPlan(runSpec, host), host, mode: 'apply', secret, due: true },
            every,
            pauseOnFailure: s.rotation.pauseOnFailure,
            subject: `${secret} on ${host}`,
            what: `rotation of ${secret} on ${host} when due (every ${rotateEvery})`,
          }),
        );
      }
    }
  }
  if (s.audit.enabled && s.audit.directory && available('audit')) {
    schedules.push(
      make({
        id: `${SCHEDULE_PREFIX}audit-export`,
        kind: 'audit',
        operation: 'audit',
        workflowId: scheduledWorkflowId('audit', 'export'),
        input: { directory: s.audit.directory },
        every: s.audit.every,
        pauseOnFailure: s.audit.pauseOnFailure,
        subject: s.audit.directory,
        what: `audit export to ${s.audit.directory}`,
      }),
    );
  }
  // The watchdog tells of checks that stopped running: made only when a webhook would hear of one.
  const told = spec.notifications.webhooks.filter((w) => w.events.includes('check.overdue'));
  if (s.watchdog.enabled && told.length > 0 && available('watchdog')) {
    schedules.push(
      make({
        id: `${SCHEDULE_PREFIX}watchdog`,
        kind: 'watchdog',
        operation: 'watchdog',
        workflowId: scheduledWorkflowId('watchdog', 'checks'),
        input: { webhooks: told, everyMs: durationMs(s.watchdog.every) },
        every: s.watchdog.every,
        pauseOnFailure: s.watchdog.pauseOnFailure,
        subject: 'the schedules of this task queue',
        what: `overdue checks told to ${told.map((w) => w.name).join(', ')}`,
      }),
    );
  }
  return { schedules, unavailable };
}

/** A schedule in the namespace, as apply sees it: steward's memo when it has one. */
export interface ExistingSchedule {
  readonly id: string;
  readonly memo?: ScheduleMemo;
}

export interface SchedulePlan {
  readonly create: readonly DesiredSchedule[];
  readonly update: readonly DesiredSchedule[];
  readonly unchanged: readonly DesiredSchedule[];
  /** Ids of schedules steward made for this task queue that the spec no longer asks for. */
  readonly delete: readonly string[];
  /** Desired ids taken by a schedule steward did not make for this task queue: apply refuses to touch them. */
  readonly conflicts: readonly { readonly id: string; readonly reason: string }[];
}

/**
 * What to do to turn `existing` into `desired` (each with the digest of what it is made from): create what is
 * missing, update what was made from something else, delete what steward made for `taskQueue` and the spec no
 * longer asks for, and leave everything else alone.
 */
export function planSchedules(
  desired: readonly (DesiredSchedule & { readonly digest: string })[],
  existing: readonly ExistingSchedule[],
  taskQueue: string,
): SchedulePlan {
  const byId = new Map(existing.map((e) => [e.id, e]));
  const wanted = new Set(desired.map((d) => d.id));
  const plan = {
    create: [] as DesiredSchedule[],
    update: [] as DesiredSchedule[],
    unchanged: [] as DesiredSchedule[],
    delete: [] as string[],
    conflicts: [] as { id: string; reason: string }[],
  };
  for (const d of desired) {
    const e = byId.get(d.id);
    if (!e) plan.create.push(d);
    else if (!e.memo) plan.conflicts.push({ id: d.id, reason: 'exists and was not made by steward' });
    else if (e.memo.taskQueue !== taskQueue) {
      plan.conflicts.push({ id: d.id, reason: `was made by steward for task queue ${e.memo.taskQueue}` });
    } else if (e.memo.digest === d.digest) plan.unchanged.push(d);
    else plan.update.push(d);
  }
  for (const e of existing) {
    if (!wanted.has(e.id) && ownedBy(e, taskQueue)) plan.delete.push(e.id);
  }
  plan.delete.sort();
  return plan;
}

/** Whether steward made `s` for `taskQueue`: the only schedules its commands change. */
export function ownedBy(s: ExistingSchedule, taskQueue: string): boolean {
  return s.id.startsWith(SCHEDULE_PREFIX) && s.memo?.taskQueue === taskQueue;
}
