/**
 * `steward rotate [SECRET...] [--host H]...`: rotates secrets on hosts, one workflow per host and secret
 * (`rotate/<host>/<secret>`), several under one `rotateSecrets` run. Follows each rotation's phases live and prints
 * steward's result document (one entry per host, with its rotations). The CLI never sees a secret value: the
 * workflows carry version ids only.
 */
import type { Client, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { z } from 'zod';
import type { HostReport } from '../../model/report';
import { rotationFleetWorkflowId, rotationWorkflowId } from '../../model/ids';
import { hostPlan } from '../../model/plan';
import { rotatableSecrets } from '../../model/rotation';
import type { Spec } from '../../model/schema';
import { startAttributes } from '../../model/search-attributes';
import { validate } from '../../model/validate';
import type { RotateSecretInput, RotateSecretsInput, RotateSecretsReport } from '../../workflows/rotate';
import { cliUser, connectClient, uiLink, type GlobalOptions } from '../context';
import { cliTrigger } from '../../model/runs';
import { readDevState } from '../../common/dev-state';
import { EXIT, UsageError } from '../errors';
import {
  alreadyRunningMessage,
  failedReport,
  followRuns,
  printStarted,
  settle,
  startRun,
  type ResultDocument,
} from '../operation';
import { printControls } from '../output';
import { loadSpecCached } from '../spec-cache';

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

/** The result document, each host with its rotations. */
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
  const { spec } = await loadSpecCached(g.spec);
  const pairs = selectRotations(spec, secrets, flags.host);
  const mode = flags.plan ? 'plan' : 'apply';
  const uiUrl = process.env.STEWARD_UI_URL ?? (await readDevState(g.spec)).temporal?.uiUrl;
  const client = await connectClient(g);
  try {
    const started = Date.now();
    const handle = await start(client, g.taskQueue, spec, pairs, mode, !!flags.due, concurrency);
    const link = uiLink(uiUrl, g.namespace, handle.workflowId, handle.firstExecutionRunId);
    if (!g.wait) {
      printStarted(handle, link, g.json);
      return EXIT.ok;
    }
    if (!g.json) {
      const what = [...new Set(pairs.map((p) => p.secret))].join(', ');
      const where = [...new Set(pairs.map((p) => p.host))].join(', ');
      console.log(`rotate ${what} on ${where} — workflow ${handle.workflowId}${link ? `\n  ${link}` : ''}`);
    }
    const runs = pairs.map((p) => ({
      label: `${p.host} ${p.secret}`,
      workflowId: rotationWorkflowId(p.host, p.secret),
    }));
    // A rotation's id is the same for every run of it: only runs this command started are followed.
    const follow = g.json ? undefined : followRuns(client, runs, mode, new Date(started - 1000));
    const settled = await settle<HostReport | RotateSecretsReport>(handle);
    await follow?.stop();
    let outcomes: { host: string; secret: string; report: HostReport }[] =
      'failure' in settled
        ? pairs.map((p) => ({ ...p, report: failedReport(p.host, 'rotate', mode, settled.failure) }))
        : 'rotations' in settled.report
          ? [...settled.report.rotations]
          : [{ ...pairs[0]!, report: settled.report }];
    // A rotation that found another steward run holding its host changed nothing: that is a failure to rotate.
    outcomes = outcomes.map((o) =>
      o.report.alreadyRunning
        ? {
            ...o,
            report: { ...o.report, status: 'failed', error: alreadyRunningMessage('rotate', [o.report]) },
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
  const refusal = (workflowId: string) =>
    `a rotation of ${pairs.map((p) => `${p.secret} on ${p.host}`).join(', ')} is already running (workflow ${workflowId}); wait for it or inspect it in the UI`;
  if (pairs.length === 1) {
    const [{ host, secret }] = pairs as [Pair];
    const input: RotateSecretInput = { spec: hostPlan(spec, host), host, mode, secret, ...(due ? { due } : {}) };
    return startRun(
      client,
      'rotateSecret',
      {
        taskQueue,
        workflowId: rotationWorkflowId(host, secret),
        args: [input],
        typedSearchAttributes: attributes(host),
      },
      refusal,
    );
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
  return startRun(
    client,
    'rotateSecrets',
    {
      taskQueue,
      workflowId: rotationFleetWorkflowId(pairs.length, new Date()),
      args: [input],
      typedSearchAttributes: attributes('fleet'),
    },
    refusal,
  );
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
