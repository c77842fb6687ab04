/**
 * `steward rotate [SECRET...] [--host H]...`: rotates secrets on hosts, one workflow per host and secret
 * (`rotate/<host>/<secret>`), several under one `rotateSecrets` run. Follows each rotation's phases live and prints
 * PRODUCT.md's result document (one entry per host, with its rotations). The CLI never sees a secret value: the
 * workflows carry version ids only.
 */
import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  type Client,
  type WorkflowHandleWithFirstExecutionRunId,
} from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { z } from 'zod';
import type { HostReport } from '../../model/report';
import { rotationFleetWorkflowId, rotationWorkflowId } from '../../model/ids';
import { hostPlan } from '../../model/plan';
import { rotatableSecrets } from '../../model/rotation';
import type { Spec } from '../../model/schema';
import { startAttributes } from '../../model/search-attributes';
import { validate } from '../../model/validate';
import type { HostProgress } from '../../workflows/host-operation';
import type { RotateSecretInput, RotateSecretsInput, RotateSecretsReport } from '../../workflows/rotate';
import { cliUser, connectClient, uiLink, type GlobalOptions } from '../context';
import { cliTrigger } from '../../model/runs';
import { readDevState } from '../../common/dev-state';
import { EXIT, OperationRefusedError, UsageError } from '../errors';
import type { ResultDocument } from '../operation';
import { printControls, printProgress, pollUntilStopped } from '../output';
import { loadSpec } from '../spec-file';

export interface RotateFlags {
  readonly host: string[];
  readonly plan?: boolean;
  readonly due?: boolean;
  readonly concurrency: string;
}

const flagsSchema = z.object({
  concurrency: z.coerce.number({ error: 'must be a number' }).int('must be a whole number').min(1, 'must be ≥ 1'),
});

/** One rotation as the result document shows it. */
export interface RotationSummary {
  readonly secret: string;
  readonly status: 'completed' | 'failed' | 'skipped';
  /** The version now current and the one kept as previous, when this run rotated. */
  readonly current?: string;
  readonly previous?: string;
  readonly error?: string;
}

/** PRODUCT.md's document, each host with its rotations. */
export type RotateDocument = Omit<ResultDocument, 'hosts'> & {
  readonly hosts: (ResultDocument['hosts'][number] & { readonly rotations: RotationSummary[] })[];
};

interface Pair {
  readonly host: string;
  readonly secret: string;
}

/**
 * The host × secret pairs to rotate: the named secrets (default every secret the stack consumes) on the named hosts
 * (default all). @throws UsageError naming an unknown host, an undeclared secret or one the stack does not consume.
 */
export function selectRotations(spec: Spec, secrets: readonly string[], hosts: readonly string[]): Pair[] {
  const known = spec.hosts.map((h) => h.name);
  const unknownHosts = hosts.filter((h) => !known.includes(h));
  if (unknownHosts.length > 0) {
    throw new UsageError(`unknown host ${unknownHosts.join(', ')}; the spec has ${known.join(', ')}`);
  }
  const rotatable = rotatableSecrets(spec);
  const problems = secrets.flatMap((s) =>
    !spec.secrets[s]
      ? [`${s} is not declared under secrets`]
      : !rotatable.includes(s)
        ? [`${s} is not consumed by the stack, so no host holds it`]
        : [],
  );
  if (problems.length > 0) {
    throw new UsageError(`cannot rotate: ${problems.join('; ')} (rotatable: ${rotatable.join(', ')})`);
  }
  const chosenHosts = hosts.length > 0 ? [...new Set(hosts)] : known;
  const chosenSecrets = secrets.length > 0 ? [...new Set(secrets)] : rotatable;
  return chosenHosts.flatMap((host) => chosenSecrets.map((secret) => ({ host, secret })));
}

/** Runs `steward rotate` and returns the exit code. */
export async function rotate(g: GlobalOptions, secrets: string[], flags: RotateFlags): Promise<number> {
  const { concurrency } = validate(flagsSchema, { concurrency: flags.concurrency }, '--concurrency');
  const { spec } = await loadSpec(g.spec);
  const pairs = selectRotations(spec, secrets, flags.host);
  const mode = flags.plan ? 'plan' : 'apply';
  const uiUrl = process.env.STEWARD_UI_URL ?? (await readDevState(g.spec)).temporal?.uiUrl;
  const client = await connectClient(g);
  try {
    const started = Date.now();
    const handle = await start(client, g.taskQueue, spec, pairs, mode, !!flags.due, concurrency);
    const link = uiLink(uiUrl, g.namespace, handle.workflowId, handle.firstExecutionRunId);
    if (!g.wait) {
      const doc = { workflowId: handle.workflowId, runId: handle.firstExecutionRunId };
      console.log(
        g.json ? JSON.stringify(doc) : `started ${handle.workflowId} (run ${doc.runId})${link ? `\n${link}` : ''}`,
      );
      return EXIT.ok;
    }
    if (!g.json) {
      const what = [...new Set(pairs.map((p) => p.secret))].join(', ');
      const where = [...new Set(pairs.map((p) => p.host))].join(', ');
      console.log(`rotate ${what} on ${where} — workflow ${handle.workflowId}${link ? `\n  ${link}` : ''}`);
    }
    const follow = g.json ? undefined : followProgress(client, pairs, new Date(started - 1000), mode);
    let outcomes: { host: string; secret: string; report: HostReport }[];
    try {
      const result = (await handle.result()) as HostReport | RotateSecretsReport;
      outcomes = 'rotations' in result ? [...result.rotations] : [{ ...pairs[0]!, report: result }];
    } catch (err) {
      outcomes = outcomesFromFailure(err, pairs, mode);
    }
    await follow?.stop();
    // A rotation that found another steward run holding its host changed nothing: that is a failure to rotate.
    outcomes = outcomes.map((o) =>
      o.report.alreadyRunning
        ? {
            ...o,
            report: {
              ...o.report,
              status: 'failed',
              error: `a ${o.report.alreadyRunningOperation ?? 'rotate'} of ${o.host} is already running (workflow ${o.report.alreadyRunning}); one steward run per host at a time: wait for it or inspect it in the UI`,
            },
          }
        : o,
    );
    const doc = document(handle, outcomes, Date.now() - started);
    if (g.json) console.log(JSON.stringify(doc, null, 2));
    else printRotations(doc, outcomes);
    return doc.status === 'failed' ? EXIT.failed : EXIT.ok;
  } finally {
    await client.connection.close();
  }
}

async function start(
  client: Client,
  taskQueue: string,
  spec: Spec,
  pairs: readonly Pair[],
  mode: 'apply' | 'plan',
  due: boolean,
  concurrency: number,
): Promise<WorkflowHandleWithFirstExecutionRunId> {
  const trigger = cliTrigger(cliUser());
  const attributes = (host: string) => startAttributes({ host, operation: 'rotate', trigger });
  try {
    if (pairs.length === 1) {
      const [{ host, secret }] = pairs as [Pair];
      const input: RotateSecretInput = { spec: hostPlan(spec, host), host, mode, secret, ...(due ? { due } : {}) };
      return await client.workflow.start('rotateSecret', {
        taskQueue,
        workflowId: rotationWorkflowId(host, secret),
        args: [input],
        typedSearchAttributes: attributes(host),
      });
    }
    const byHost = new Map<string, string[]>();
    for (const p of pairs) byHost.set(p.host, [...(byHost.get(p.host) ?? []), p.secret]);
    const input: RotateSecretsInput = {
      spec,
      mode,
      ...(due ? { due } : {}),
      rotations: [...byHost].map(([host, secrets]) => ({ host, secrets })),
      concurrency,
    };
    return await client.workflow.start('rotateSecrets', {
      taskQueue,
      workflowId: rotationFleetWorkflowId(pairs.length, new Date()),
      args: [input],
      typedSearchAttributes: attributes('fleet'),
    });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      throw new OperationRefusedError(
        `a rotation of ${pairs.map((p) => `${p.secret} on ${p.host}`).join(', ')} is already running (workflow ${err.workflowId}); wait for it or inspect it in the UI`,
      );
    }
    throw err;
  }
}

/** Polls each rotation's `progress` query (runs started by this command only) and prints phases as they change. */
function followProgress(
  client: Client,
  pairs: readonly Pair[],
  since: Date,
  mode: 'apply' | 'plan',
): { stop(): Promise<void> } {
  const seen = new Map<string, string>();
  const ours = new Set<string>();
  const poll = async () => {
    await Promise.all(
      pairs.map(async ({ host, secret }) => {
        const handle = client.workflow.getHandle(rotationWorkflowId(host, secret));
        const id = `${host}/${secret}`;
        if (!ours.has(id)) {
          const d = await handle.describe().catch(() => undefined);
          if (!d || d.startTime < since) return;
          ours.add(id);
        }
        const progress = await handle.query<HostProgress>('progress').catch(() => undefined);
        for (const step of progress?.steps ?? []) {
          const state = `${step.status}:${step.changes.length}`;
          const key = `${id}/${step.step}`;
          if (step.status === 'pending' || seen.get(key) === state) continue;
          seen.set(key, state);
          printProgress(`${host} ${secret}`, step, mode);
        }
      }),
    );
  };
  return pollUntilStopped(poll);
}

/** The versions a finished rotation reports: finishSecret's change `secret:<name>`. */
function versions(report: HostReport, secret: string): { current?: string; previous?: string } {
  const finish = report.steps.find((s) => s.step === 'finishSecret' && s.status === 'completed');
  const change = finish?.changes.find((c) => c.resource === `secret:${secret}`);
  const after = (change?.after ?? {}) as { current?: string; previous?: string };
  return {
    ...(after.current ? { current: after.current } : {}),
    ...(after.previous ? { previous: after.previous } : {}),
  };
}

function summary(o: { secret: string; report: HostReport }): RotationSummary {
  const ran = o.report.steps.some((s) => s.step === 'setSecret' && s.status !== 'skipped' && s.status !== 'pending');
  const status = o.report.status === 'failed' ? 'failed' : ran ? 'completed' : 'skipped';
  return {
    secret: o.secret,
    status,
    ...versions(o.report, o.secret),
    ...(o.report.error ? { error: o.report.error } : {}),
  };
}

function document(
  handle: WorkflowHandleWithFirstExecutionRunId,
  outcomes: readonly { host: string; secret: string; report: HostReport }[],
  durationMs: number,
): RotateDocument {
  const hosts = [...new Set(outcomes.map((o) => o.host))].map((host) => {
    const mine = outcomes.filter((o) => o.host === host);
    const failed = mine.filter((o) => o.report.status === 'failed');
    const controls = mine.flatMap((o) => o.report.controls ?? []);
    return {
      host,
      status: failed.length > 0 ? ('failed' as const) : ('completed' as const),
      changes: mine.flatMap((o) => o.report.changes),
      findings: mine.flatMap((o) => o.report.findings),
      ...(controls.length > 0 ? { controls } : {}),
      ...(failed.length > 0
        ? { error: failed.map((o) => `${o.secret}: ${o.report.error ?? 'failed'}`).join('; ') }
        : {}),
      rotations: mine.map(summary),
    };
  });
  return {
    workflowId: handle.workflowId,
    runId: handle.firstExecutionRunId,
    status: hosts.some((h) => h.status === 'failed') ? 'failed' : 'completed',
    hosts,
    durationMs,
  };
}

function printRotations(doc: RotateDocument, outcomes: readonly { host: string; secret: string }[]): void {
  for (const h of doc.hosts) {
    for (const r of h.rotations) {
      const line =
        r.status === 'failed'
          ? `FAILED: ${r.error ?? 'unknown error'}`
          : r.status === 'skipped'
            ? 'not rotated'
            : `rotated: current ${r.current ?? '?'}, previous ${r.previous ?? '-'} kept for rollback`;
      console.log(`${h.host} ${r.secret}: ${line}`);
    }
    for (const f of h.findings) console.log(`  [${f.severity}] ${f.id}: ${f.message}`);
    if (h.controls?.length) printControls(h.controls, 'rotation test');
  }
  const n = outcomes.length;
  console.log(
    `${doc.status} in ${(doc.durationMs / 1000).toFixed(1)}s — ${n} rotation${n === 1 ? '' : 's'}, workflow ${doc.workflowId}`,
  );
}

/** The rotations' reports carried in a failure's details, or one synthetic report per pair. */
function outcomesFromFailure(
  err: unknown,
  pairs: readonly Pair[],
  mode: 'apply' | 'plan',
): { host: string; secret: string; report: HostReport }[] {
  if (!(err instanceof WorkflowFailedError)) throw err;
  const cause = err.cause;
  const detail =
    cause instanceof ApplicationFailure
      ? (cause.details?.[0] as HostReport | RotateSecretsReport | undefined)
      : undefined;
  if (detail && 'rotations' in detail) return [...detail.rotations];
  if (detail && 'host' in detail && pairs.length === 1) return [{ ...pairs[0]!, report: detail }];
  const message = cause?.message ?? err.message;
  return pairs.map((p) => ({
    ...p,
    report: {
      host: p.host,
      operation: 'rotate',
      mode,
      status: 'failed',
      changes: [],
      findings: [],
      steps: [],
      error: message,
    },
  }));
}
