/**
 * `steward audit` end to end against the shared dev server: runs made by the real CLI (plans on a VPS simulator, and
 * a provision of a host that refuses connections, which retries and fails), listed with every filter, shown as
 * timelines, exported with their payloads still encrypted, verified, and caught when an exported file is edited,
 * deleted or reordered. The `auditExport` workflow continues the same kind of chain on its own.
 */
import { cp, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { findFreePort } from '../../client/dev/temporal';
import type { AuditListEntry } from '../../client/commands/audit';
import type { RunTimeline } from '../../client/audit/timeline';
import type { AuditExportResult } from '../../model/audit';
import { steward, type CliResult } from '../support/cli';
import { hostName, stage, writeSpec, type Stage } from '../support/fixtures';

const TASK_QUEUE = `audit-test-${process.pid}`;
const ENCRYPTED = Buffer.from('binary/encrypted').toString('base64');

let s: Stage;
let dir: string;
let simHost: string;
let simSpec: string;
let deadHost: string;
let deadSpec: string;
let testStart: Date;
let planIds: string[];
let failedId: string;

/** `steward --json …` against the test server (audit needs no spec). */
async function cli(...args: string[]): Promise<CliResult & { json?: unknown }> {
  const r = await steward(['--spec', simSpec, '--address', s.env.address, '--task-queue', TASK_QUEUE, ...args]);
  const json =
    args.includes('--json') && r.stdout.trim().startsWith('{') ? (JSON.parse(r.stdout) as unknown) : undefined;
  return { ...r, json };
}

async function list(...filters: string[]): Promise<AuditListEntry[]> {
  const r = await cli('--json', 'audit', ...filters);
  expect(r.code, r.stderr).toBe(0);
  return (r.json as { runs: AuditListEntry[] }).runs;
}

async function verify(path: string, ...flags: string[]): Promise<CliResult> {
  return cli('audit', 'verify', path, ...flags);
}

/** Every payload object in a JSON history (search attributes excepted: the server indexes those in the clear). */
function payloadsIn(node: unknown, inSearchAttributes = false, out: { encoding: string }[] = []) {
  if (Array.isArray(node)) for (const n of node) payloadsIn(n, inSearchAttributes, out);
  else if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    // A `patched()` marker's details are written by the SDK's core, not the data converter: the patch id, no run data.
    if (o.markerName === 'core_patch') return out;
    if (!inSearchAttributes && 'metadata' in o && 'data' in o) {
      out.push({ encoding: String((o.metadata as Record<string, string>).encoding) });
    }
    for (const [k, v] of Object.entries(o)) {
      // OpenTelemetry's interceptors carry the trace context to activities and children in a header, which the codec
      // does not encode: it may hold a W3C traceparent (ids only) and nothing else.
      if (k === '_tracer-data') {
        const data = (v as { data?: string }).data;
        const context = JSON.parse(Buffer.from(String(data), 'base64').toString('utf8')) as Record<string, unknown>;
        expect(Object.keys(context).filter((key) => key !== 'traceparent')).toEqual([]);
        if (context.traceparent !== undefined) {
          expect(context.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[0-9a-f]$/);
        }
        continue;
      }
      payloadsIn(v, inSearchAttributes || k === 'searchAttributes', out);
    }
  }
  return out;
}

beforeAll(async () => {
  s = await stage({ taskQueue: TASK_QUEUE, simulators: 1 });
  dir = await mkdtemp(join(tmpdir(), 'steward-audit-'));
  const sim = s.sims[0];
  if (!sim) throw new Error('no simulator');
  simHost = hostName(sim);
  simSpec = writeSpec(s.keys, [sim]);
  deadHost = `dead-${process.pid}`;
  deadSpec = join(s.keys.dir, 'dead.yaml');
  await writeFile(
    deadSpec,
    stringify({
      version: 1,
      hosts: [
        {
          name: deadHost,
          address: '127.0.0.1',
          port: await findFreePort(), // nothing listens: every connection is refused, and retried
          user: 'root',
          identityFile: s.keys.privateKeyPath,
          trustOnFirstUse: true,
        },
      ],
    }),
  );
  testStart = new Date(Date.now() - 1000);
  planIds = [];
  for (let i = 0; i < 2; i++) {
    const plan = await s.cli(simSpec, 'provision', '--plan');
    expect(plan.code, plan.stderr).toBe(0);
    planIds.push(plan.doc?.workflowId as string);
    await new Promise((r) => setTimeout(r, 1100)); // workflow ids carry the start second
  }
  const failed = await s.cli(deadSpec, 'provision');
  expect(failed.code, failed.stdout).toBe(1);
  failedId = failed.doc?.workflowId as string;
});

afterAll(async () => {
  await s?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('steward audit (list)', () => {
  it('lists runs newest first with id, run id, host, operation, outcome, changes, start, duration and starter', async () => {
    const runs = await list('--host', simHost);
    expect(runs.map((r) => r.workflowId)).toEqual([...planIds].reverse());
    for (const r of runs) {
      expect(r).toMatchObject({ host: simHost, operation: 'provision', outcome: 'completed', type: 'provisionHost' });
      expect(r.runId).toMatch(/^[0-9a-f-]{36}$/);
      expect(r.changes).toBeGreaterThan(0); // a fresh host: the plan lists what provision would change
      expect(r.durationMs).toBeGreaterThan(0);
      expect(Date.parse(r.startTime)).toBeGreaterThanOrEqual(testStart.getTime());
      expect(['cli', 'client']).toContain(r.startedBy.kind);
      expect(r.startedBy.name).toContain(`@${hostname().replace(/[^A-Za-z0-9._-]/g, '_')}`);
    }
    const human = await cli('audit', '--host', simHost);
    expect(human.stdout.split('\n')[0]).toMatch(/^START\s+TOOK\s+OUTCOME\s+OPERATION\s+HOST\s+CHANGES\s+STARTED BY/);
    expect(human.stdout).toContain(planIds[0]);
  });

  it('filters by host, operation, outcome, time and count', async () => {
    expect((await list('--host', deadHost)).map((r) => [r.workflowId, r.outcome])).toEqual([[failedId, 'failed']]);
    expect((await list('--host', deadHost, '--outcome', 'failed')).map((r) => r.workflowId)).toEqual([failedId]);
    expect(await list('--host', deadHost, '--outcome', 'completed')).toEqual([]);
    expect((await list('--host', simHost, '--outcome', 'completed')).length).toBe(2);
    expect(await list('--host', simHost, '--operation', 'harden')).toEqual([]);
    expect((await list('--host', simHost, '--operation', 'provision')).length).toBe(2);
    expect(await list('--host', simHost, '--since', new Date(Date.now() + 60_000).toISOString())).toEqual([]);
    expect(await list('--host', simHost, '--until', testStart.toISOString())).toEqual([]);
    expect((await list('--host', simHost, '--since', '1h', '--until', new Date().toISOString())).length).toBe(2);
    expect((await list('--host', simHost, '--limit', '1')).length).toBe(1);
    const bad = await cli('audit', '--outcome', 'exploded', '--since', 'soon');
    expect(bad.code).toBe(64);
    expect(bad.stderr).toMatch(/outcome/);
    expect(bad.stderr).toMatch(/since/);
  });
});

describe('steward audit <workflowId> (timeline)', () => {
  it('shows the failing run: the step, its attempts, the failure behind each retry, and the outcome', async () => {
    const r = await cli('--json', 'audit', failedId);
    expect(r.code, r.stderr).toBe(0);
    const t = r.json as RunTimeline;
    expect(t).toMatchObject({ workflowId: failedId, host: deadHost, operation: 'provision', outcome: 'failed' });
    expect(t.mode).toBe('apply'); // decoded from the encrypted input with the run's codec key
    expect(['cli', 'client']).toContain(t.startedBy.kind);
    const inspect = t.steps.find((st) => st.name === 'inspectHost');
    expect(inspect).toMatchObject({ kind: 'activity', state: 'failed' });
    expect(inspect?.attempts).toBeGreaterThan(1);
    expect(inspect?.retriedAfter).toMatch(/refused|ECONNREFUSED|connect/i);
    expect(t.retries).toEqual([
      expect.objectContaining({ step: 'inspectHost', attempts: inspect?.attempts, after: inspect?.retriedAfter }),
    ]);
    expect(t.failures.map((f) => f.source)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^inspectHost/), 'workflow']),
    );
    expect(t.error).toMatch(/provision of .* failed/);

    const human = await cli('audit', failedId);
    expect(human.stdout).toMatch(/inspectHost\s+failed/);
    expect(human.stdout).toMatch(/retried after: /);
    expect(human.stdout).toMatch(/^outcome: failed/m);

    // The history itself holds no failure text: every failure's message and stack trace is an encrypted payload,
    // which the timeline above decoded.
    const history = await s.env.client.workflow.getHandle(failedId).fetchHistory();
    const failures: { message?: string | null; stackTrace?: string | null; encodedAttributes?: unknown }[] = [];
    const walk = (v: unknown, key = ''): void => {
      if (!v || typeof v !== 'object' || ArrayBuffer.isView(v)) return;
      if ((key === 'failure' || key === 'cause') && 'message' in v) failures.push(v as (typeof failures)[number]);
      for (const [k, x] of Object.entries(v)) walk(x, k);
    };
    walk(history.events);
    expect(failures.length).toBeGreaterThan(1);
    for (const f of failures) {
      expect(f.message).toBe('Encoded failure');
      expect(f.stackTrace ?? '').toBe('');
      expect(f.encodedAttributes).toBeTruthy();
    }
    expect(JSON.stringify(history)).not.toContain(inspect!.retriedAfter!.slice(0, 40));
  });

  it('shows a plan run step by step with the changes each step reports, for the latest or a given run', async () => {
    const id = planIds[0] as string;
    const latest = (await cli('--json', 'audit', id)).json as RunTimeline;
    expect(latest).toMatchObject({ outcome: 'completed', mode: 'plan', host: simHost });
    expect(latest.steps.filter((st) => st.kind === 'activity').map((st) => st.state)).not.toContain('failed');
    expect(latest.steps.find((st) => st.name === 'inspectHost')).toMatchObject({ state: 'completed', attempts: 1 });
    const withChanges = latest.steps.filter((st) => st.changes?.length);
    expect(withChanges.length).toBeGreaterThan(0);
    expect(latest.changes.length).toBe(withChanges.reduce((n, st) => n + (st.changes?.length ?? 0), 0));
    expect(latest.retries).toEqual([]);

    const byRun = (await cli('--json', 'audit', id, '--run', latest.runId)).json as RunTimeline;
    expect(byRun.runId).toBe(latest.runId);
    const missing = await cli('audit', 'provision/no-such-host');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no run of provision\/no-such-host/);
    const mixed = await cli('audit', id, '--host', simHost);
    expect(mixed.code).toBe(64);
  });
});

describe('steward audit --export and verify', () => {
  let chainDir: string;
  let head: string;

  it('exports full histories with payloads still encrypted, chained export to export', async () => {
    chainDir = join(dir, 'chain');
    const first = await cli('--json', 'audit', '--export', chainDir, '--host', deadHost, '--since', '1h');
    expect(first.code, first.stderr).toBe(0);
    const one = first.json as AuditExportResult;
    expect(one).toMatchObject({ sequence: 1, runs: 1, previousManifestSha256: null });
    const second = await cli('--json', 'audit', '--export', chainDir, '--host', simHost, '--since', '1h');
    expect(second.code, second.stderr).toBe(0);
    const two = second.json as AuditExportResult;
    expect(two).toMatchObject({ sequence: 2, runs: 2, previousManifestSha256: one.manifestSha256 });
    head = two.manifestSha256 as string;

    expect((await readdir(chainDir)).sort()).toEqual(['000001', '000002']);
    const manifest = JSON.parse(await readFile(join(chainDir, '000002', 'manifest.json'), 'utf8')) as {
      files: { file: string; workflowId: string; events: number }[];
      previous: { export: string; manifestSha256: string };
    };
    expect(manifest.previous).toEqual({ export: '000001', manifestSha256: one.manifestSha256 });
    expect(manifest.files.map((f) => f.workflowId).sort()).toEqual([...planIds].sort());

    for (const f of manifest.files) {
      const text = await readFile(join(chainDir, '000002', f.file), 'utf8');
      const history = JSON.parse(text) as { events: { eventType: string }[] };
      expect(history.events).toHaveLength(f.events);
      expect(history.events[0]?.eventType).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_STARTED');
      expect(history.events.at(-1)?.eventType).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED');
      const payloads = payloadsIn(history);
      expect(payloads.length).toBeGreaterThan(5);
      expect(payloads.filter((p) => p.encoding !== ENCRYPTED)).toEqual([]);
      expect(text).not.toContain(s.keys.privateKeyPath); // the spec is in every input, encrypted
      expect(text).not.toContain('"mode":"plan"');
    }

    const ok = await verify(chainDir, '--expect-head', head);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('2 exports, 3 histories verified');
    expect(ok.stdout).toContain(head);
  });

  it('starts where the last export ended when no --since is given', async () => {
    const again = await cli('--json', 'audit', '--export', chainDir, '--host', simHost);
    expect(again.code, again.stderr).toBe(0);
    expect((again.json as AuditExportResult).runs).toBe(0); // nothing closed since
    expect((await readdir(chainDir)).sort()).toEqual(['000001', '000002']);
  });

  async function tampered(name: string, change: (copy: string, files: string[]) => Promise<void>) {
    const copy = join(dir, name);
    await cp(chainDir, copy, { recursive: true });
    const files = (await readdir(join(copy, '000002'))).filter((f) => f !== 'manifest.json').sort();
    await change(copy, files);
    return { copy, files, r: await verify(copy) };
  }

  it('fails naming the file when one exported history is edited', async () => {
    const { copy, files, r } = await tampered('edited', async (copy, files) => {
      const path = join(copy, '000002', files[0] as string);
      await writeFile(
        path,
        (await readFile(path, 'utf8')).replace('EVENT_TYPE_ACTIVITY_TASK_COMPLETED', 'EVENT_TYPE_ACTIVITY_TASK_FAILED'),
      );
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${copy}/000002/${files[0]}: altered`);
  });

  it('fails naming the file when one exported history is deleted', async () => {
    const { copy, files, r } = await tampered('deleted', async (copy, files) => {
      await rm(join(copy, '000002', files[1] as string));
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${copy}/000002/${files[1]}: missing file`);
  });

  it('fails naming the files when two exported histories are reordered', async () => {
    const { copy, files, r } = await tampered('reordered', async (copy, [a, b]) => {
      const at = (f: string) => join(copy, '000002', f);
      await rename(at(a as string), at('swap'));
      await rename(at(b as string), at(a as string));
      await rename(at('swap'), at(b as string));
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${copy}/000002/${files[0]}: reordered: holds the content of ${files[1]}`);
    expect(r.stderr).toContain(`${copy}/000002/${files[1]}: reordered: holds the content of ${files[0]}`);
  });

  it('fails on a broken chain: an earlier export removed, or the newest one', async () => {
    const { copy, r } = await tampered('no-first', async (copy) => {
      await rm(join(copy, '000001'), { recursive: true });
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`${copy}/000002/manifest.json: broken chain`);

    const { copy: truncated } = await tampered('no-last', async (copy) => {
      await rm(join(copy, '000002'), { recursive: true });
    });
    expect((await verify(truncated)).code).toBe(0); // a shorter chain is still a chain…
    const withHead = await verify(truncated, '--expect-head', head);
    expect(withHead.code).toBe(1); // …but not the one whose head was recorded
    expect(withHead.stderr).toMatch(/000001\/manifest\.json: head is/);
  });

  it('continues a chain kept elsewhere with --previous, and verifies it given that manifest', async () => {
    const elsewhere = join(dir, 'continued');
    const previous = join(chainDir, '000002', 'manifest.json');
    const r = await cli(
      '--json',
      'audit',
      '--export',
      elsewhere,
      '--host',
      deadHost,
      '--since',
      '1h',
      '--previous',
      previous,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.json).toMatchObject({ sequence: 3, runs: 1, previousManifestSha256: head });
    expect((await verify(elsewhere)).code).toBe(1);
    expect((await verify(elsewhere, '--previous', previous)).code).toBe(0);
    expect((await verify(elsewhere, '--previous', head)).code).toBe(0);
  });
});

describe('auditExport workflow', () => {
  it('exports on its own, continuing its chain where the last run ended, verifiable by the CLI', async () => {
    const target = join(dir, 'scheduled');
    const run = (n: number, extra: Record<string, unknown> = {}) =>
      s.env.client.workflow.execute('auditExport', {
        taskQueue: TASK_QUEUE,
        workflowId: `audit-export-test-${process.pid}-${n}`,
        args: [{ directory: target, host: simHost, settleSeconds: 0, ...extra }],
      }) as Promise<AuditExportResult>;

    const first = await run(1, { since: testStart.toISOString() });
    expect(first).toMatchObject({ sequence: 1, runs: 2, exportDir: join(target, '000001') });
    expect(await run(2)).toMatchObject({ runs: 0 });

    const plan = await s.cli(simSpec, 'provision', '--plan');
    expect(plan.code, plan.stderr).toBe(0);
    const third = await run(3);
    expect(third).toMatchObject({ sequence: 2, runs: 1, previousManifestSha256: first.manifestSha256 });
    const manifest = JSON.parse(await readFile(join(target, '000002', 'manifest.json'), 'utf8')) as {
      files: { workflowId: string }[];
      producer: { kind: string; workflowId: string };
      window: { since: string };
    };
    expect(manifest.files.map((f) => f.workflowId)).toEqual([plan.doc?.workflowId]);
    expect(manifest.producer).toMatchObject({ kind: 'workflow', workflowId: `audit-export-test-${process.pid}-3` });
    expect(manifest.window.since).toBe(first.window.until);

    const ok = await verify(target, '--expect-head', third.manifestSha256 as string);
    expect(ok.code, ok.stderr).toBe(0);

    const invalid = s.env.client.workflow.execute('auditExport', {
      taskQueue: TASK_QUEUE,
      workflowId: `audit-export-test-${process.pid}-invalid`,
      args: [{ directory: 'relative/dir' }],
    });
    await expect(invalid).rejects.toThrow();
  });
});
