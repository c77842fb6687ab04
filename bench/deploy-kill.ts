/**
 * A first deploy of the real stack (OpenClaw + Caddy, images streamed from this machine's engine) onto a fresh,
 * provisioned simulator while its only worker — a `steward worker` process started from a prebuilt workflow bundle
 * (`steward bundle`) — is killed with SIGKILL every 20–40 s (random) and restarted at once. Deploy does not need a
 * hardened host, so harden is skipped. Prints the kills (when, during which step), the deploy's duration, every
 * step's attempts from the run's history (completed, failed for real, lost with their worker), what the image
 * transfer sent on each attempt, and whether the deploy completed; exits 0 only when it did.
 *   npx tsx bench/deploy-kill.ts [MIN_S MAX_S]        (kill interval, default 20 40)
 *
 * Test double: the OpenRouter base URL points at 127.0.0.1:9 on the host, where nothing listens (deploy makes no
 * model call); its key is random, from this process's environment.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { join } from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { tsToMs } from '@temporalio/common/lib/time';
import proto from '@temporalio/proto';
import type { Simulator } from '../client/dev/simulator';
import { encryptingDataConverter } from '../codec/aes-gcm';
import { keyRingFromEnv } from '../codec/keys';
import type { HostReport } from '../model/report';
import type { SpecInput } from '../model/schema';
import { steward, STEWARD_BIN } from '../test/support/cli';
import { hostName, writeSpec } from '../test/support/fixtures';
import type { HostProgress } from '../workflows/host-operation';
import { report, timeCli, withSimulators, withTemporal } from './support';

const [MIN_S, MAX_S] = [Number(process.argv[2] ?? 20), Number(process.argv[3] ?? 40)];
const KEY_ENV = 'STEWARD_BENCH_OPENROUTER_KEY';

function stack(): Partial<SpecInput> {
  return {
    stack: {
      image: 'steward/openclaw:2026.9.6',
      providers: {
        openrouter: { baseUrl: 'http://127.0.0.1:9/api/v1' },
        primary: 'openrouter/anthropic/claude-sonnet-4.5',
        fallbacks: ['openrouter/openai/gpt-5-mini'],
        // Nothing answers at that URL: no agent turn in the verification.
        verifyTurn: false,
      },
    },
    proxy: { domain: 'agent.steward.test' },
    secrets: {
      'gateway-token': { generate: { length: 48 } },
      'openrouter-api-key': { external: { env: KEY_ENV } },
    },
  };
}

interface Kill {
  readonly atS: number;
  readonly step: string;
}

/** The one worker of `taskQueue`: a `steward worker` process, killed at random intervals and restarted at once. */
class KilledWorker {
  readonly kills: Kill[] = [];
  private child: ChildProcess | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly log: string[] = [];

  constructor(
    private readonly args: readonly string[],
    private readonly runningStep: () => Promise<string>,
    private readonly t0: number,
  ) {}

  start(): void {
    const child = spawn(process.execPath, [STEWARD_BIN, ...this.args], { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr!.on('data', (d: Buffer) => this.log.push(d.toString()));
    this.child = child;
    this.schedule();
  }

  private schedule(): void {
    const ms = (MIN_S + Math.random() * (MAX_S - MIN_S)) * 1000;
    this.timer = setTimeout(() => void this.kill(), ms);
  }

  private async kill(): Promise<void> {
    const child = this.child;
    if (this.stopped || !child) return;
    const step = await this.runningStep();
    if (this.stopped) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
    this.kills.push({ atS: (performance.now() - this.t0) / 1000, step });
    if (!this.stopped) this.start();
  }

  async stop(): Promise<string> {
    this.stopped = true;
    clearTimeout(this.timer);
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      await exited;
    }
    return this.log.join('');
  }
}

interface StepAttempts {
  attempts: number;
  completed: number;
  failed: number;
  lost: number;
  otherTimeouts: number;
  /** Seconds from scheduled to closed, per attempt. */
  seconds: number[];
}

/** Per activity type, from the run's history: each activity is one attempt (workflows/retry.ts). */
function attemptsOf(history: proto.temporal.api.history.v1.IHistory): Map<string, StepAttempts> {
  const { TimeoutType } = proto.temporal.api.enums.v1;
  const byEvent = new Map<string, { type: string; at: number }>();
  const steps = new Map<string, StepAttempts>();
  const at = (e: proto.temporal.api.history.v1.IHistoryEvent) => tsToMs(e.eventTime);
  for (const e of history.events ?? []) {
    const scheduled = e.activityTaskScheduledEventAttributes;
    if (scheduled) {
      const type = scheduled.activityType?.name ?? '?';
      byEvent.set(String(e.eventId), { type, at: at(e) });
      const s = steps.get(type) ?? { attempts: 0, completed: 0, failed: 0, lost: 0, otherTimeouts: 0, seconds: [] };
      s.attempts++;
      steps.set(type, s);
      continue;
    }
    const closed =
      e.activityTaskCompletedEventAttributes ??
      e.activityTaskFailedEventAttributes ??
      e.activityTaskTimedOutEventAttributes ??
      e.activityTaskCanceledEventAttributes;
    if (!closed) continue;
    const origin = byEvent.get(String(closed.scheduledEventId));
    const s = origin && steps.get(origin.type);
    if (!origin || !s) continue;
    s.seconds.push((at(e) - origin.at) / 1000);
    if (e.activityTaskCompletedEventAttributes) s.completed++;
    else if (e.activityTaskFailedEventAttributes) s.failed++;
    else if (e.activityTaskTimedOutEventAttributes) {
      const t = e.activityTaskTimedOutEventAttributes.failure?.timeoutFailureInfo?.timeoutType;
      if (t === TimeoutType.TIMEOUT_TYPE_HEARTBEAT) s.lost++;
      else s.otherTimeouts++;
    }
  }
  return steps;
}

process.env[KEY_ENV] ??= `sk-or-v1-${randomBytes(24).toString('hex')}`;

const completed = await withTemporal((address) =>
  withSimulators(1, async ([sim], keys) => {
    const host = hostName(sim as Simulator);
    const spec = writeSpec(keys, [sim!], stack(), 'deploy-kill.yaml');
    const bundle = join(keys.dir, 'workflows.js');
    const bundling = await timeCli(['bundle', '--out', bundle]);
    // Provisioned by the bench process's own worker; only the deploy runs on the killed worker's queue.
    const provision = await timeCli(['--spec', spec, '--address', address, 'provision']);

    const client = new Client({
      connection: await Connection.connect({ address }),
      dataConverter: encryptingDataConverter((await keyRingFromEnv())!),
    });
    const queue = `bench-deploy-kill-${process.pid}`;
    const runningStep = async (): Promise<string> => {
      try {
        for await (const w of client.workflow.list({
          query: `StewardHost = "${host}" AND StewardOperation = "deploy" AND ExecutionStatus = "Running"`,
        })) {
          const p = await Promise.race([
            client.workflow.getHandle(w.workflowId).query<HostProgress>('progress'),
            new Promise<never>((_, reject) => setTimeout(() => reject(new Error('query timed out')), 5_000)),
          ]);
          return p.steps.find((s) => s.status === 'running')?.step ?? 'between steps';
        }
        return 'not started';
      } catch {
        return 'unknown (no worker answered the query)';
      }
    };
    const t0 = performance.now();
    const worker = new KilledWorker(
      ['--address', address, '--task-queue', queue, 'worker', '--workflow-bundle', bundle],
      runningStep,
      t0,
    );
    worker.start();
    let doc: { workflowId?: string; runId?: string; status?: string; hosts?: { error?: string }[] } = {};
    let code = -1;
    let seconds = 0;
    let workerLog = '';
    try {
      const r = await steward(['--spec', spec, '--address', address, '--task-queue', queue, '--json', 'deploy']);
      seconds = (performance.now() - t0) / 1000;
      code = r.code;
      if (r.stdout.trim().startsWith('{')) doc = JSON.parse(r.stdout) as typeof doc;
      else console.error(`steward deploy exited ${r.code}: ${r.stderr || r.stdout}`);
    } finally {
      workerLog = await worker.stop();
    }

    console.log(
      `first deploy of the OpenClaw stack onto a provisioned simulator, its only worker (steward worker ` +
        `--workflow-bundle) killed with SIGKILL every ${MIN_S}-${MAX_S} s and restarted at once`,
    );
    report('steward bundle (once, before the run)', bundling, 's');
    report('provision (undisturbed worker)', provision, 's');
    report('deploy, end to end through the CLI', seconds, 's');
    console.log(`${'worker kills during the deploy'.padEnd(44)} ${String(worker.kills.length).padStart(9)}`);
    for (const [i, k] of worker.kills.entries())
      console.log(`  kill ${i + 1} at ${k.atS.toFixed(1)} s during ${k.step}`);

    if (doc.workflowId) {
      const handle = client.workflow.getHandle(doc.workflowId, doc.runId);
      const history = await handle.fetchHistory();
      console.log('\nattempts per step (history: each activity one attempt)');
      console.log(`  ${'step'.padEnd(22)} attempts  completed  failed  lost-worker  seconds per attempt`);
      const steps = attemptsOf(history);
      const lost = [...steps.values()].reduce((n, s) => n + s.lost, 0);
      // A kill between activities (a workflow task, a backoff) loses none; more losses than kills means live
      // attempts were declared lost (a heartbeat late past the timeout).
      console.log(`  lost with their worker: ${lost} attempt(s) for ${worker.kills.length} kill(s)`);
      for (const [type, s] of steps) {
        const other = s.otherTimeouts ? ` (+${s.otherTimeouts} other timeouts)` : '';
        console.log(
          `  ${type.padEnd(22)} ${String(s.attempts).padStart(8)}  ${String(s.completed).padStart(9)}  ` +
            `${String(s.failed).padStart(6)}  ${String(s.lost).padStart(11)}  ${s.seconds.map((x) => x.toFixed(1)).join(', ')}${other}`,
        );
      }
      const result = await handle.result().then(
        (r) => r as HostReport,
        (err: unknown) =>
          (err instanceof WorkflowFailedError && err.cause instanceof ApplicationFailure
            ? err.cause.details?.[0]
            : undefined) as HostReport | undefined,
      );
      const images = (result?.changes ?? []).filter((c) => c.resource.startsWith('image:'));
      const imageFindings = (result?.findings ?? []).filter((f) => f.id.startsWith('image'));
      console.log('\nimage transfer as reported by the attempt that completed it');
      for (const c of images) console.log(`  ${c.resource} ${c.action} ${JSON.stringify(c.after ?? {})}`);
      for (const f of imageFindings) console.log(`  ${f.id}: ${f.message}`);
      if (images.length + imageFindings.length === 0) console.log('  (none: the transfer step did not complete)');
    }
    const ok = code === 0 && doc.status === 'completed';
    console.log(
      `\ncompleted: ${ok ? 'yes' : 'no'} (steward deploy exit ${code}${doc.hosts?.[0]?.error ? `: ${doc.hosts[0].error}` : ''})`,
    );
    if (!ok && workerLog.trim()) console.log(`worker stderr (last 2000 chars):\n${workerLog.slice(-2000)}`);
    await client.connection.close();
    return ok;
  }),
);
process.exitCode = completed ? 0 : 1;
