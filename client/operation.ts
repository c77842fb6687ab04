/**
 * Starting a host operation and following it: one workflow for one host, a fleet workflow with a child per host for
 * several. Progress comes from each host workflow's `progress` query; the result is steward's JSON result document.
 * A run is refused (exit 1) while another run of the operation is running on one of its hosts: asked of visibility
 * before starting, and by each host workflow itself before its first step (model/runs.ts).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import {
  isGrpcServiceError,
  ServiceError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  type Client,
  type WorkflowHandle,
  type WorkflowHandleWithFirstExecutionRunId,
  type WorkflowStartOptions,
} from '@temporalio/client';
import { ApplicationFailure, type Payload } from '@temporalio/common';
import {
  describeProgress,
  type HostReport,
  type Mode,
  type Operation,
  type StepProgress,
  type StepReport,
} from '../model/report';
import type { Spec } from '../model/schema';
import { cliTrigger, runningQuery, runSummary } from '../model/runs';
import { startAttributes, StewardHost, StewardOperation } from '../model/search-attributes';
import type { FleetInput, FleetReport } from '../workflows/fleet';
import type { HostOperationInput, HostProgress } from '../workflows/host-operation';
import { fleetWorkflowId, hostWorkflowId } from '../model/ids';
import { hostPlan } from '../model/plan';
import {
  ABORT_UPDATE,
  FLEET_QUERY,
  RESUME_UPDATE,
  type FleetProgress,
  type Halted,
  type WaveSize,
} from '../model/waves';
import { watchApprovals } from './approval';
import { EXIT, OperationRefusedError, UsageError } from './errors';
import { cliUser, listingClient, uiLink, type GlobalOptions } from './context';
import { pollUntilStopped, printDetail, printProgress, printResult, toStdout, type Print } from './output';

export interface OperationRequest {
  readonly operation: Operation;
  /** Workflow type that handles one host. */
  readonly workflowType: string;
  readonly spec: Spec;
  readonly hosts: readonly string[];
  readonly mode: Mode;
  /** Hosts worked on at once in a fleet. */
  readonly concurrency?: number;
  /** Temporal Web UI base URL, for links to the run. */
  readonly uiUrl?: string;
  /** Operation-specific input fields, given to every host workflow (e.g. drift's `audit`). */
  readonly extra?: Readonly<Record<string, unknown>>;
  /** A fleet's rollout in waves, and the pause between two. */
  readonly waves?: readonly WaveSize[];
  readonly bakeMs?: number;
  /** Prove each wave's hosts again before the next wave. */
  readonly verifyWaves?: boolean;
  /** The host runs wait for approval before they apply: the command shows each plan as it waits. */
  readonly approval?: boolean;
}

/** The `--json` result document. */
export interface ResultDocument {
  readonly workflowId: string;
  readonly runId: string;
  readonly status: 'completed' | 'failed';
  readonly hosts: readonly (Pick<HostReport, 'host' | 'status' | 'changes' | 'findings' | 'controls'> & {
    error?: string;
  })[];
  /** Waves: hosts never worked on; the halt the run waits in; why it ended before its last wave. */
  readonly untouched?: readonly string[];
  readonly halted?: Pick<Halted, 'wave' | 'waves' | 'failed'>;
  readonly stopped?: string;
  readonly durationMs: number;
}

/** Hosts named on the command line, or all hosts of the spec. @throws UsageError naming an unknown host. */
export function selectHosts(spec: Spec, names: readonly string[]): string[] {
  const known = spec.hosts.map((h) => h.name);
  const unknown = names.filter((n) => !known.includes(n));
  if (unknown.length > 0) throw new UsageError(`unknown host ${unknown.join(', ')}; the spec has ${known.join(', ')}`);
  return names.length > 0 ? [...new Set(names)] : known;
}

/** Who asked for a run and where its output goes: this process, or a CLI the local worker runs it for. */
export interface Requester {
  /** {@link cliUser} of the CLI: recorded as the run's trigger. */
  readonly user: string;
  readonly print: Print;
  /** One line per step when it ends, no running lines (stdout is not a terminal). */
  readonly quiet: boolean;
}

/** This CLI process. */
export function thisProcess(): Requester {
  return { user: cliUser(), print: toStdout, quiet: !process.stdout.isTTY };
}

/** Starts the operation, follows it unless --no-wait, prints the outcome, and returns the exit code. */
export async function runOperation(
  client: Client,
  opts: GlobalOptions,
  req: OperationRequest,
  by: Requester = thisProcess(),
): Promise<{ code: number; reports: HostReport[] }> {
  const started = Date.now();
  const startedAt = new Date(started);
  await refuseWhileRunning(client, req);
  const handle = await start(client, opts.taskQueue, req, startedAt, by.user);
  const link = uiLink(req.uiUrl, opts.namespace, handle.workflowId, handle.firstExecutionRunId);
  if (!opts.wait) {
    printStarted(handle, link, opts.json, by.print);
    return { code: EXIT.ok, reports: [] };
  }
  if (!opts.json)
    by.print(`${req.operation} ${req.hosts.join(', ')} — workflow ${handle.workflowId}${link ? `\n  ${link}` : ''}`);

  const waves = !!req.waves?.length && req.hosts.length > 1; // one host runs alone, never as a rollout
  const run = { ...req, runId: handle.firstExecutionRunId, startedAt, started, waves };
  return followToEnd(client, handle, run, opts.json, by);
}

/** What {@link followToEnd} needs to know of a run. */
interface Followed {
  readonly operation: Operation;
  readonly mode: Mode;
  readonly hosts: readonly string[];
  /** The time in the host runs' ids. */
  readonly startedAt: Date;
  /** When the command began, for the duration printed. */
  readonly started: number;
  /** A rollout in waves: the run may halt, and the CLI ends there (exit 1) with what to do next. */
  readonly waves: boolean;
  /** The run's id, when known without asking. */
  readonly runId?: string;
  /** The host runs may wait for approval (model/approval.ts). */
  readonly approval?: boolean;
}

/** Follows a started run (its host runs' steps as they change) to its end or halt; prints the outcome; the exit code. */
async function followToEnd(
  client: Client,
  handle: WorkflowHandle,
  run: Followed,
  json: boolean,
  by: Requester,
): Promise<{ code: number; reports: HostReport[] }> {
  const { operation, mode } = run;
  const runs = run.hosts.map((host) => ({ label: host, workflowId: hostWorkflowId(operation, host, run.startedAt) }));
  const follow = json ? undefined : followRuns(client, runs, mode, undefined, by.quiet, by.print);
  const approvals = run.approval && !json ? watchApprovals(client, runs, by.print) : undefined;
  // A notice while the server is away goes where the operator reads (a local worker's stderr is not theirs).
  const notice = json ? (m: string) => console.error(m) : by.print;
  const settled = await settleOrHalt<HostReport | FleetReport>(handle, run.waves, notice);
  await follow?.stop();
  await approvals?.stop();
  const halted = 'halted' in settled ? settled.halted : undefined;
  let reports: HostReport[] =
    'halted' in settled
      ? [...settled.halted.reports]
      : 'failure' in settled
        ? run.hosts.map((host) => failedReport(host, operation, mode, settled.failure))
        : 'hosts' in settled.report
          ? [...settled.report.hosts]
          : [settled.report];
  const fleetEnd = 'report' in settled && 'hosts' in settled.report ? settled.report : undefined;
  const untouched = halted?.untouched ?? fleetEnd?.untouched ?? [];

  // Another run got the host first (a race the visibility check before starting cannot see).
  const yielded = reports.filter((r) => r.alreadyRunning);
  if (yielded.length > 0 && yielded.length === reports.length && !halted) {
    throw new OperationRefusedError(alreadyRunningMessage(operation, yielded));
  }
  reports = reports.map((r) =>
    r.alreadyRunning ? { ...r, status: 'failed', error: alreadyRunningMessage(operation, [r]) } : r,
  );
  const failed = reports.some((r) => r.status === 'failed') || untouched.length > 0;
  const doc: ResultDocument = {
    workflowId: handle.workflowId,
    runId: run.runId ?? (await handle.describe().catch(() => undefined))?.runId ?? '',
    status: failed ? 'failed' : 'completed',
    hosts: reports.map((r) => ({
      host: r.host,
      status: r.status,
      changes: r.changes,
      findings: r.findings,
      ...(r.controls ? { controls: r.controls } : {}),
      ...(r.error ? { error: r.error } : {}),
    })),
    ...(untouched.length ? { untouched } : {}),
    ...(halted ? { halted: { wave: halted.wave, waves: halted.waves, failed: halted.failed } } : {}),
    ...(fleetEnd?.stopped ? { stopped: fleetEnd.stopped } : {}),
    durationMs: Date.now() - run.started,
  };
  if (json) by.print(JSON.stringify(doc, null, 2));
  else {
    printResult(doc, reports, mode, by.print);
    if (halted) {
      by.print(
        `halted at wave ${halted.wave} of ${halted.waves}: ${halted.failed.join(', ')} failed; untouched: ` +
          `${halted.untouched.join(', ') || 'none'}\n  the run waits: \`steward resume ${handle.workflowId}\` after the fix ` +
          `runs ${halted.failed.join(', ')} again and goes on; \`steward abort ${handle.workflowId}\` ends it`,
      );
    } else if (fleetEnd?.stopped) by.print(`${fleetEnd.stopped}; untouched: ${untouched.join(', ') || 'none'}`);
  }
  // A drift plan that found drift exits 2, as `terraform plan -detailed-exitcode` does.
  const drifted = operation === 'drift' && mode === 'plan' && reports.some((r) => r.changes.length > 0);
  return { code: failed ? EXIT.failed : drifted ? EXIT.drift : EXIT.ok, reports };
}

/**
 * The run's end, or for a rollout in waves its halt, whichever comes first (the halt is read from the `fleet` query
 * once a second; the run then waits for a decision, and the CLI does not).
 */
async function settleOrHalt<T>(
  handle: WorkflowHandle,
  waves: boolean,
  notice?: (line: string) => void,
): Promise<{ report: T } | { failure: string } | { halted: Halted }> {
  const ended = settle<T>(handle, notice);
  if (!waves) return ended;
  let watching = true;
  const halt = (async (): Promise<{ halted: Halted } | undefined> => {
    while (watching) {
      const progress = await handle.query<FleetProgress>(FLEET_QUERY).catch(() => undefined);
      if (progress?.halted) return { halted: progress.halted };
      await sleep(1_000);
    }
    return undefined;
  })();
  try {
    const first = await Promise.race([ended.then((e) => ({ e })), halt.then((h) => ({ h }))]);
    if ('e' in first) return first.e;
    // The run waits for a decision; nobody here waits for its end (the result's long poll ends with this process,
    // or, in a local worker, when the run ends).
    ended.catch(() => undefined);
    return first.h ?? (await ended);
  } finally {
    watching = false;
  }
}

/**
 * `steward resume RUN`: a rollout halted at a failed wave runs that wave's failed hosts again and goes on; followed
 * like the run it was. Refused (exit 1) unless the run is a rollout in waves that is halted.
 */
export async function resumeRollout(
  client: Client,
  opts: GlobalOptions,
  workflowId: string,
  by: Requester = thisProcess(),
): Promise<{ code: number; reports: HostReport[] }> {
  return decide(client, opts, workflowId, by, async (handle) => {
    const { resumed } = await handle.executeUpdate<{ resumed: readonly string[] }, []>(RESUME_UPDATE);
    if (!opts.json) by.print(`resumed ${workflowId}: ${resumed.join(', ')} again, then the waves after`);
    return true; // it may halt again
  });
}

/** `steward abort RUN [--reason]`: a halted rollout ends failed; its untouched hosts stay so. */
export async function abortRollout(
  client: Client,
  opts: GlobalOptions,
  workflowId: string,
  reason: string | undefined,
  by: Requester = thisProcess(),
): Promise<{ code: number; reports: HostReport[] }> {
  return decide(client, opts, workflowId, by, async (handle) => {
    await handle.executeUpdate(ABORT_UPDATE, { args: [reason ?? ''] });
    return false;
  });
}

/**
 * Delivers a decision (`update`, which says whether the run may halt again) to a halted rollout, then follows the
 * rollout to its end or next halt. @throws OperationRefusedError when the run is not a halted rollout.
 */
async function decide(
  client: Client,
  opts: GlobalOptions,
  workflowId: string,
  by: Requester,
  update: (handle: WorkflowHandle) => Promise<boolean>,
): Promise<{ code: number; reports: HostReport[] }> {
  const started = Date.now();
  const handle = client.workflow.getHandle(workflowId);
  const progress = await rollout(handle);
  const waves = await update(handle).catch((err: unknown) => {
    throw new OperationRefusedError(`${workflowId}: ${refusal(err)}`);
  });
  if (!opts.wait) return { code: EXIT.ok, reports: [] };
  const hosts = progress.waves.flatMap((w) => w.hosts);
  const run = { ...progress, hosts, startedAt: new Date(progress.startedAt), started, waves };
  return followToEnd(client, handle, run, opts.json, by);
}

/** The rollout's progress. @throws OperationRefusedError when the run is not a rollout in waves (or not running). */
async function rollout(handle: WorkflowHandle): Promise<FleetProgress> {
  const run = await handle.describe().catch((err: unknown) => {
    throw new OperationRefusedError(`${handle.workflowId}: ${refusal(err)}`);
  });
  if (run.status.name !== 'RUNNING') {
    throw new OperationRefusedError(
      `${handle.workflowId} is not a running rollout in waves (it is ${run.status.name.toLowerCase()})`,
    );
  }
  return handle.query<FleetProgress>(FLEET_QUERY).catch((err: unknown) => {
    throw new OperationRefusedError(`${handle.workflowId} is not a running rollout in waves: ${refusal(err)}`);
  });
}

/** A refused update or query in one line. */
function refusal(err: unknown): string {
  const e = err as Error & { cause?: Error };
  return (e.cause?.message ?? e.message ?? String(err)).split('\n')[0]!;
}

type Holder = Pick<HostReport, 'host' | 'alreadyRunning' | 'alreadyRunningOperation'>;

/** Why a run changed nothing: other steward runs held its hosts (`operation` when visibility did not name theirs). */
export function alreadyRunningMessage(operation: Operation, running: readonly Holder[]) {
  const each = running.map(
    (r) => `a ${r.alreadyRunningOperation ?? operation} of ${r.host} is already running (workflow ${r.alreadyRunning})`,
  );
  return `${each.join('; ')}; one steward run per host at a time: wait for it or inspect it in the UI`;
}

/** @throws OperationRefusedError when visibility shows a steward run (of any operation) on one of the hosts. */
async function refuseWhileRunning(client: Client, req: OperationRequest): Promise<void> {
  const running: Holder[] = [];
  for await (const w of listingClient(client).workflow.list({ query: runningQuery(req.hosts) })) {
    const host = w.typedSearchAttributes.get(StewardHost);
    const operation = w.typedSearchAttributes.get(StewardOperation);
    if (host && !running.some((r) => r.host === host)) {
      running.push({
        host,
        alreadyRunning: w.workflowId,
        ...(operation ? { alreadyRunningOperation: operation } : {}),
      });
    }
  }
  if (running.length > 0) throw new OperationRefusedError(alreadyRunningMessage(req.operation, running));
}

async function start(
  client: Client,
  taskQueue: string,
  req: OperationRequest,
  startedAt: Date,
  user: string,
): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const trigger = cliTrigger(user);
  const attributes = (host: string) => startAttributes({ host, operation: req.operation, trigger });
  // Two starts within one second get the same id.
  const refusal = (workflowId: string) =>
    alreadyRunningMessage(
      req.operation,
      req.hosts.map((host) => ({ host, alreadyRunning: workflowId })),
    );
  if (req.hosts.length === 1) {
    const input: HostOperationInput = {
      ...req.extra,
      spec: hostPlan(req.spec, req.hosts[0]!),
      host: req.hosts[0]!,
      mode: req.mode,
    };
    return startRun(
      client,
      req.workflowType,
      {
        taskQueue,
        workflowId: hostWorkflowId(req.operation, input.host, startedAt),
        args: [input],
        typedSearchAttributes: attributes(input.host),
        staticSummary: runSummary(req.operation, req.mode, input.host, trigger),
      },
      refusal,
    );
  }
  return startRun(
    client,
    'fleet',
    {
      taskQueue,
      workflowId: fleetWorkflowId(req.operation, req.hosts, startedAt),
      args: [fleetInput(req, startedAt)],
      typedSearchAttributes: attributes('fleet'),
      staticSummary: runSummary(req.operation, req.mode, req.hosts.join(', '), trigger),
    },
    refusal,
  );
}

/**
 * Starts a workflow.
 * @throws OperationRefusedError with `refusal(workflowId)` when a run with the same id is already running.
 */
export async function startRun(
  client: Client,
  workflowType: string,
  options: WorkflowStartOptions,
  refusal: (workflowId: string) => string,
): Promise<WorkflowHandleWithFirstExecutionRunId> {
  try {
    return await client.workflow.start(workflowType, options);
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw new OperationRefusedError(refusal(err.workflowId));
    throw err;
  }
}

/** The `--no-wait` answer: the run's ids as JSON, or a line with its link in the UI. */
export function printStarted(
  handle: WorkflowHandleWithFirstExecutionRunId,
  link: string | undefined,
  json: boolean,
  print: Print = toStdout,
): void {
  const doc = { workflowId: handle.workflowId, runId: handle.firstExecutionRunId };
  print(json ? JSON.stringify(doc) : `started ${handle.workflowId} (run ${doc.runId})${link ? `\n${link}` : ''}`);
}

/** How long a waiting CLI keeps asking a Temporal server that stopped answering (a restart, a failover). */
export const OUTAGE_PATIENCE_MS = 300_000;
const RETRY_MAX_DELAY_MS = 5_000;
/** gRPC codes of a server that is away, not of a refusal: CANCELLED, UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE. */
const SERVER_AWAY = new Set([1, 2, 4, 13, 14]);

/** An error of the connection to Temporal, which a later call may not meet (never a run's own failure). */
export function serverAway(err: unknown): boolean {
  const grpc = err instanceof ServiceError ? err.cause : err;
  return isGrpcServiceError(grpc) && SERVER_AWAY.has(grpc.code);
}

/**
 * A run's result, asked again while the server is away (the run goes on without the CLI: a restarted server picks it
 * up where it was), for up to {@link OUTAGE_PATIENCE_MS}; says once (`notice`, default stderr) that it is waiting.
 */
async function resultThroughOutages(
  handle: WorkflowHandle,
  notice: (line: string) => void = (m) => console.error(m),
  patienceMs = OUTAGE_PATIENCE_MS,
): Promise<unknown> {
  const deadline = Date.now() + patienceMs;
  let delay = 250;
  let told = false;
  for (;;) {
    try {
      return await handle.result();
    } catch (err) {
      if (!serverAway(err) || Date.now() + delay > deadline) throw err;
      if (!told) {
        notice(
          `steward: Temporal stopped answering (${(err as Error).message.split('\n')[0]}); ${handle.workflowId} goes on, waiting for it up to ${patienceMs / 60_000} min`,
        );
        told = true;
      }
      await sleep(delay);
      delay = Math.min(delay * 2, RETRY_MAX_DELAY_MS);
    }
  }
}

/**
 * A run's report, or for a failed run the report its failure carries, or else the failure's message. Waits through a
 * server outage of up to {@link OUTAGE_PATIENCE_MS}.
 */
export async function settle<T>(
  handle: WorkflowHandle,
  notice?: (line: string) => void,
): Promise<{ report: T } | { failure: string }> {
  try {
    return { report: (await resultThroughOutages(handle, notice)) as T };
  } catch (err) {
    if (!(err instanceof WorkflowFailedError)) throw err;
    const cause = err.cause;
    const detail = cause instanceof ApplicationFailure ? (cause.details?.[0] as T | undefined) : undefined;
    return detail && typeof detail === 'object' ? { report: detail } : { failure: cause?.message ?? err.message };
  }
}

/** The report of a host whose run failed before it could report. */
export function failedReport(host: string, operation: Operation, mode: Mode, error: string): HostReport {
  return { host, operation, mode, status: 'failed', changes: [], findings: [], steps: [], error };
}

/**
 * A fleet run's input: the spec once (its selected hosts only) and the host names; each host's plan is cut from it
 * in the workflow.
 */
export function fleetInput(req: OperationRequest, startedAt: Date): FleetInput {
  return {
    operation: req.operation,
    workflowType: req.workflowType,
    spec: { ...req.spec, hosts: req.spec.hosts.filter((h) => req.hosts.includes(h.name)) },
    mode: req.mode,
    ...(req.extra ? { extra: req.extra } : {}),
    hosts: req.hosts,
    startedAt: startedAt.toISOString(),
    ...(req.concurrency ? { concurrency: req.concurrency } : {}),
    ...(req.waves?.length ? { waves: req.waves } : {}),
    ...(req.bakeMs ? { bakeMs: req.bakeMs } : {}),
    ...(req.verifyWaves ? { verifyWaves: true } : {}),
  };
}

/**
 * Polls each run's `progress` query and prints its steps as they change, until stopped. With `since`, a run is
 * followed only once it started after that (its id may still name an earlier run when the command begins). `quiet`
 * (the default when stdout is not a terminal: a log, a CI job) prints one line per step, when it ends, and no
 * running lines or progress figures.
 */
export function followRuns(
  client: Client,
  runs: readonly { readonly label: string; readonly workflowId: string }[],
  mode: Mode,
  since?: Date,
  quiet = !process.stdout.isTTY,
  print: Print = toStdout,
): { stop(): Promise<void> } {
  const seen = new Map<string, string>();
  const ours = new Set<string>();
  const poll = async (): Promise<void> => {
    await Promise.all(
      runs.map(async ({ label, workflowId }) => {
        const handle = client.workflow.getHandle(workflowId);
        if (since && !ours.has(workflowId)) {
          const d = await handle.describe().catch(() => undefined);
          if (!d || d.startTime < since) return;
          ours.add(workflowId);
        }
        const progress = await handle.query<HostProgress>('progress').catch(() => undefined);
        for (const step of progress?.steps ?? []) {
          const key = `${label}/${step.step}`;
          const state = `${step.status}:${step.changes.length}`;
          if (step.status === 'pending' || (quiet && step.status === 'running') || seen.get(key) === state) continue;
          seen.set(key, state);
          printProgress(label, step as StepReport, mode, print);
        }
        const running = progress?.steps.find((st) => st.status === 'running');
        const due = (lastDetail.get(workflowId) ?? 0) + DETAIL_EVERY_MS;
        if (running && !quiet && Date.now() >= due) {
          lastDetail.set(workflowId, Date.now());
          const line = await stepProgress(client, handle, running.step);
          const key = `${label}/${running.step}/detail`;
          if (line && seen.get(key) !== line) {
            seen.set(key, line);
            printDetail(label, running.step, line, print);
          }
        }
      }),
    );
  };
  const lastDetail = new Map<string, number>();
  return pollUntilStopped(poll);
}

/** How often a running step's heartbeat details are asked for. */
const DETAIL_EVERY_MS = 3_000;

/**
 * What the running step's activity last reported of its progress (its heartbeat details, decoded with the client's
 * codec), as one line; undefined when it reports none.
 */
export async function stepProgress(client: Client, handle: WorkflowHandle, step: string): Promise<string | undefined> {
  const d = await handle.describe().catch(() => undefined);
  const pending = d?.raw.pendingActivities?.find((a) => a.activityType?.name === step);
  const payloads = pending?.heartbeatDetails?.payloads;
  if (!payloads?.length) return undefined;
  const details = await decodeFirst(client, payloads).catch(() => undefined);
  return isStepProgress(details) ? describeProgress(details) : undefined;
}

/** The first payload through the client's codecs (last applied, first undone) and payload converter. */
async function decodeFirst(client: Client, payloads: Payload[]): Promise<unknown> {
  const { payloadCodecs, payloadConverter } = client.options.loadedDataConverter;
  let decoded = payloads.slice(0, 1);
  for (const codec of [...payloadCodecs].reverse()) decoded = await codec.decode(decoded);
  return decoded[0] ? payloadConverter.fromPayload(decoded[0]) : undefined;
}

function isStepProgress(v: unknown): v is StepProgress {
  if (typeof v !== 'object' || v === null) return false;
  const p = v as Record<string, unknown>;
  const num = (k: string) => p[k] === undefined || (typeof p[k] === 'number' && Number.isFinite(p[k]));
  return typeof p.doing === 'string' && ['done', 'total', 'rate', 'secondsLeft'].every(num);
}
