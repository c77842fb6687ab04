/**
 * The embedded default end to end, as the README's quick start runs it: `dev up` (a Temporal dev server with UI and
 * SQLite, a worker, a throwaway VPS), `provision`, the run visible in the Web UI with its search attributes,
 * `dev down`, and history that survives the next `dev up`.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../../client/dev/simulator';
import type { RunSummary } from '../../client/commands/status';
import type { ResultDocument } from '../../client/operation';
import { steward } from '../support/cli';

const dir = mkdtempSync(join(tmpdir(), 'steward-dev-'));
const spec = join(dir, 'steward.yaml');
let ports: { temporal: number; ui: number; vps: number };
let env: NodeJS.ProcessEnv;
let provisioned: string;
const cli = (...args: string[]) => steward(['--spec', spec, '--address', `127.0.0.1:${ports.temporal}`, ...args], env);

afterAll(async () => {
  if (ports) await cli('dev', 'down');
});

describe('steward dev', () => {
  it('up starts everything, provision runs on the throwaway VPS, the UI lists the run', async () => {
    ports = { temporal: await freePort(), ui: await freePort(), vps: await freePort() };
    // The codec server's port too: the UI's port + 1 (its default) may be any other process's.
    env = {
      STEWARD_UI_PORT: String(ports.ui),
      STEWARD_CODEC_PORT: String(await freePort()),
      STEWARD_TASK_QUEUE: 'dev-test',
    };
    expect((await cli('init', '--host', `dev-vps=admin@127.0.0.1:${ports.vps}`)).code).toBe(0);

    const up = await cli('dev', 'up');
    expect(up.stderr).toContain('started throwaway VPS');
    expect(up.code).toBe(0);
    expect(up.stdout).toContain(`http://127.0.0.1:${ports.ui}`);
    expect((await cli('dev', 'up')).stderr).toContain('is running'); // idempotent: reuses what runs

    const run = await cli('--json', 'provision');
    expect(run.code).toBe(0);
    const doc = JSON.parse(run.stdout) as ResultDocument;
    expect(doc.status).toBe('completed');
    expect(doc.hosts[0]?.changes.length).toBeGreaterThan(10);
    expect(doc.workflowId).toMatch(/^provision\/dev-vps\/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    provisioned = doc.workflowId;

    const page = await fetch(`http://127.0.0.1:${ports.ui}/`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<html');
    const query = encodeURIComponent(
      `StewardHost="dev-vps" AND StewardOperation="provision" AND StewardOutcome="completed"`,
    );
    const listed = (await (
      await fetch(`http://127.0.0.1:${ports.ui}/api/v1/namespaces/default/workflows?query=${query}`)
    ).json()) as {
      executions?: { execution: { workflowId: string } }[];
    };
    expect(listed.executions?.map((e) => e.execution.workflowId)).toContain(provisioned);

    expect((await cli('dev', 'status')).code).toBe(0);

    // The summary: not deployed yet, so the agent does not answer; the provision run with its UI link; the token
    // only as a command that writes it to a file.
    const summary = await cli('--json', 'dev', 'summary');
    expect(summary.code).toBe(0);
    const s = JSON.parse(summary.stdout) as {
      agent: { url: string; answering: boolean };
      token: string;
      runs: { operation: string; outcome?: string; link: string }[];
    };
    expect(s.agent).toEqual({ url: 'https://openclaw.home.arpa/', answering: false });
    expect(s.runs).toContainEqual({
      operation: 'provision',
      status: 'COMPLETED',
      outcome: 'completed',
      link: `http://127.0.0.1:${ports.ui}/namespaces/default/workflows/${encodeURIComponent(provisioned)}/${doc.runId}`,
    });
    expect(s.token).toMatch(
      /^\(umask 077; docker exec \w+ cat \/opt\/openclaw\/secrets\/gateway-token > \S+gateway-token\)$/,
    );
    const human = await cli('dev', 'summary');
    expect(human.stdout).toContain('does not answer yet: `npx steward deploy` puts it on dev-vps');
    expect(human.stdout).toMatch(/runs {4}provision {2}completed {2}http:/);
  });

  it('down stops what up started; history survives the next up', async () => {
    expect((await cli('dev', 'down')).code).toBe(0);
    const down = await cli('--json', 'dev', 'status');
    expect(down.code).toBe(1);
    expect(JSON.parse(down.stdout)).toMatchObject({
      temporal: { up: false },
      worker: { up: false },
      vps: { up: false },
    });

    expect((await cli('dev', 'up')).code).toBe(0);
    const status = await cli('--json', 'status', '--host', 'dev-vps');
    const runs = (JSON.parse(status.stdout) as { runs: RunSummary[] }).runs;
    expect(runs.map((r) => [r.workflowId, r.outcome])).toContainEqual([provisioned, 'completed']);
  });
});
