/**
 * rotate end to end on one deployed simulator (provisioned, not hardened), through the CLI and a worker process:
 * the gateway token rotates and the new one is accepted while the old one is refused; a new token the gateway fails
 * health with is rolled back (under a spec with a shorter health timeout: the wait is 120 s, not 240) and the next
 * rotation succeeds; a worker killed with SIGKILL in each phase of one rotation — createSecret, setSecret,
 * testSecret, finishSecret in turn, a new worker each time — leaves the host with a working secret throughout, each
 * killed phase resumes on the next worker and the rotation completes; an external secret rotates from its source;
 * and neither token nor key, in any encoding steward uses, is in a history, the worker's log, the CLI's output or the
 * version store.
 *
 * Test doubles: `steward/openclaw:2026.9.6-picky`, the stack image with a health check that also fails while the
 * gateway's token is not in an accept-list file in its state directory (absent: every token passes) — a consumer
 * that "fails health with the new value", `unhealthy` within seconds of its start (a booting gateway's check waits
 * for /healthz instead of leaning on a start period); the OpenRouter base URL points at 127.0.0.1:9 on the host,
 * where nothing listens (no provider is ever called), and its key is random, read from a file.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authProbeScript, type ProbeOutcome } from '../../activities/deploy/verify';
import { encodings } from '../../activities/redact';
import { SecretStore, staged } from '../../activities/secrets-store';
import { simulatorExec, type Simulator } from '../../client/dev/simulator';
import type { RotateDocument } from '../../client/commands/rotate';
import { rotationWorkflowId } from '../../model/ids';
import { specSchema, type SpecInput } from '../../model/schema';
import type { HostReport } from '../../model/report';
import type { HostProgress } from '../../workflows/host-operation';
import { steward, STEWARD_BIN } from '../support/cli';
import { cliFor, hostName, stage, writeSpec, type Stage, type StewardCli } from '../support/fixtures';
import { historyText } from '../support/temporal';

const IMAGE = 'steward/openclaw:2026.9.6';
const PICKY = 'steward/openclaw:2026.9.6-picky';
const QUEUE = 'rotate-test';
const TOKEN = '/opt/openclaw/secrets/gateway-token';
const VERSIONS = '/opt/openclaw/.steward/secrets/gateway-token';
const ACCEPT_LIST = '/opt/openclaw/state/steward-test-accepted-tokens';
/**
 * `stack.healthTimeoutSeconds` of the spec the rollback test rotates with (the default is 240 s). It bounds both the
 * wait for the gateway on the refused token and the wait for the gateway restored onto the old one. Both are reloads
 * (the CLI's start and one health check, about 10 s in CI), no gateway restart.
 */
const ROLLBACK_HEALTH_TIMEOUT = 45;
/**
 * The phases a worker is killed in, in the order one rotation runs them. Every phase is idempotent and resumes from
 * what the host and the store show, so each killed phase completes on the next worker and the rotation completes.
 */
const KILLED_IN = ['createSecret', 'setSecret', 'testSecret', 'finishSecret'] as const;

let world: Stage;
let sim: Simulator;
let host: string;
let cli: StewardCli;
let specFile: string;
/** The same spec with `stack.healthTimeoutSeconds` {@link ROLLBACK_HEALTH_TIMEOUT}. */
let rollbackSpecFile: string;
let keyFile: string;
let storeDir: string;
let specInput: Partial<SpecInput>;
let worker: ChildProcess | undefined;
const workerLog: string[] = [];
const outputs: string[] = [];
const runs: { workflowId: string; runId: string }[] = [];
/** Every secret value seen on the host or written by the test: none may appear anywhere. */
const values = new Set<string>();
/** The values the tests made, by what they are: each must be among {@link values}. */
const made: Record<string, string> = {};

function startWorker(): void {
  const child = spawn(
    process.execPath,
    [STEWARD_BIN, '--address', world.env.address, '--task-queue', QUEUE, 'worker'],
    { env: { ...process.env, STEWARD_SECRETS_STORE: storeDir }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d: Buffer) => workerLog.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => workerLog.push(d.toString()));
  worker = child;
}

async function stopWorker(signal: NodeJS.Signals): Promise<void> {
  const w = worker;
  worker = undefined;
  if (!w || w.exitCode !== null) return;
  const exited = once(w, 'exit');
  w.kill(signal);
  await exited;
}

async function onHost(script: string, stdin?: string): Promise<string> {
  const r = await simulatorExec(sim.container, ['sh', '-c', script], stdin);
  return r.stdout.trim();
}

async function token(): Promise<string> {
  const t = await onHost(`cat ${TOKEN}`);
  values.add(t);
  return t;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

type RotateResult = { code: number; stdout: string; stderr: string; doc?: RotateDocument };

/** `steward --json rotate …` (or `--no-wait`), recorded for the history and output search. */
async function rotate(...args: string[]): Promise<RotateResult> {
  return rotateWith(specFile, ...args);
}

/** {@link rotate} with another spec file. */
async function rotateWith(spec: string, ...args: string[]): Promise<RotateResult> {
  const globals = args.filter((a) => a === '--no-wait');
  const rest = args.filter((a) => a !== '--no-wait');
  const { doc, ...r } = await cli(spec, ...globals, 'rotate', ...rest);
  outputs.push(r.stdout, r.stderr);
  if (doc) runs.push({ workflowId: doc.workflowId, runId: doc.runId });
  return { ...r, ...(doc ? { doc: doc as unknown as RotateDocument } : {}) };
}

/** OpenClaw WebSocket `connect`s with the given tokens, from a throwaway container on the host (out of band). */
async function probe(tokens: Record<string, string>): Promise<Record<string, ProbeOutcome>> {
  const dir = `/run/steward-test-probe-${randomBytes(3).toString('hex')}`;
  for (const [label, value] of Object.entries(tokens)) {
    await onHost(
      `install -d -m 0755 ${dir} && umask 077 && cat > ${dir}/${label} && chown 1000:1000 ${dir}/${label}`,
      value,
    );
  }
  const address = await onHost(
    `dev=$(ip -4 route show default | awk '{for(i=1;i<NF;i++) if ($i=="dev") {print $(i+1); exit}}'); ip -4 -o addr show dev "$dev" | awk '{print $4; exit}' | cut -d/ -f1`,
  );
  const spec = specSchema.parse(
    JSON.parse(JSON.stringify({ version: 1, hosts: [{ name: host, address: '127.0.0.1' }], ...specInput })),
  );
  const paths = Object.fromEntries(Object.keys(tokens).map((l) => [l, `${dir}/${l}`]));
  try {
    // A gateway that just started answers UNAVAILABLE (startup sidecars) for a while: ask again until it decides.
    const deadline = Date.now() + 120_000;
    for (;;) {
      const out = await onHost(authProbeScript(spec, address, { tokens: paths }));
      const tokens = (JSON.parse(out.split('\n').pop() ?? '{}') as { tokens: Record<string, ProbeOutcome> }).tokens;
      const decided = Object.values(tokens).every(
        (o) => o.outcome === 'accepted' || (o.outcome === 'refused' && o.code !== 'UNAVAILABLE'),
      );
      if (decided || Date.now() > deadline) return tokens;
      await new Promise((r) => setTimeout(r, 5_000));
    }
  } finally {
    await onHost(`rm -rf ${dir}`);
  }
}

/** Slows the host's outgoing traffic (SSH replies included) to `rate` (tc's units, e.g. `16kbit`), or lifts that. */
async function throttle(rate: string | false): Promise<void> {
  const dev = '$(ip -4 route show default | awk \'{for(i=1;i<NF;i++) if ($i=="dev") {print $(i+1); exit}}\')';
  await onHost(
    rate
      ? `tc qdisc replace dev ${dev} root tbf rate ${rate} burst 1600 latency 30s`
      : `tc qdisc del dev ${dev} root 2>/dev/null || true`,
  );
}

async function gatewayHealth(): Promise<string> {
  return onHost(
    'id=$(docker ps -q --filter label=com.docker.compose.service=gateway | head -n1); [ -n "$id" ] && docker inspect -f \'{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{end}} {{.State.StartedAt}}\' $id || echo absent',
  );
}

/** Version files on the host: id → value. */
async function versionFiles(): Promise<Record<string, string>> {
  // Version files only: a value being generated sits in a temp file beside them (`<id>.steward.XXXXXX`) until its
  // rename; the loop ends with `true` so a last entry that is not a file fails nothing.
  const out = await onHost(
    `for f in ${VERSIONS}/v*; do case "$f" in *.steward.*) continue;; esac; [ -f "$f" ] && printf '%s %s\\n' "\${f##*/}" "$(cat "$f")"; done; true`,
  );
  const files = Object.fromEntries(
    out
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(' ') as [string, string]),
  );
  for (const v of Object.values(files)) values.add(v);
  return files;
}

/** Whether an activity of `type` is pending on the workflow and a worker has started it. */
async function activityStarted(workflowId: string, type: string): Promise<true | undefined> {
  const d = await world.env.client.workflow
    .getHandle(workflowId)
    .describe()
    .catch(() => undefined);
  const STARTED = proto.temporal.api.enums.v1.PendingActivityState.PENDING_ACTIVITY_STATE_STARTED;
  return d?.raw.pendingActivities?.some((a) => a.activityType?.name === type && a.state === STARTED) || undefined;
}

async function progress(workflowId: string): Promise<HostProgress | undefined> {
  return world.env.client.workflow
    .getHandle(workflowId)
    .query<HostProgress>('progress')
    .catch(() => undefined);
}

async function waitFor<T>(what: string, probeFn: () => Promise<T | undefined>, timeoutMs = 600_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const v = await probeFn();
    if (v !== undefined) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/**
 * Watches the host while a rotation runs: every half second the live token file must exist, be whole (48 bytes,
 * 0600, uid 1000) and equal one of the version files; every 15 s, while the gateway is healthy, one of the versions
 * must authenticate. Returns the violations seen.
 */
function watchHost(): { stop(): Promise<string[]> } {
  const violations: string[] = [];
  let stopped = false;
  let lastProbe = 0;
  const loop = (async () => {
    while (!stopped) {
      const out = await onHost(
        `f=${TOKEN}; if [ -f $f ]; then stat -c '%a %u %s' $f; sha256sum < $f | cut -c1-64; else echo missing; fi; for v in ${VERSIONS}/v*; do [ -f "$v" ] && sha256sum < "$v" | cut -c1-64; done`,
      ).catch((e: Error) => `error ${e.message}`);
      const [meta = '', live = '', ...versions] = out.split('\n');
      const at = new Date().toISOString();
      if (meta !== '600 1000 48') violations.push(`${at}: live token file ${meta}`);
      else if (!versions.includes(live)) violations.push(`${at}: live token is no version on the host`);
      const health = await gatewayHealth();
      if (Date.now() - lastProbe > 15_000 && health.startsWith('running/healthy')) {
        lastProbe = Date.now();
        const files = await versionFiles();
        const outcomes = await probe(Object.fromEntries(Object.values(files).map((v, i) => [`v${i}`, v])));
        // Only a refusal of every version for the token itself is a lost secret (not UNAVAILABLE while starting).
        const mismatched = Object.values(outcomes).every((o) => o.code === 'AUTH_TOKEN_MISMATCH');
        // A probe retries while the gateway starts, and the rotation goes on meanwhile: the verdict holds only for
        // a sample in which neither the versions nor the gateway (its start time) changed.
        const settled =
          JSON.stringify(await versionFiles()) === JSON.stringify(files) && (await gatewayHealth()) === health;
        if (mismatched && settled) violations.push(`${at}: no version authenticates: ${JSON.stringify(outcomes)}`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return violations;
    },
  };
}

/** The latest run of a workflow id, recorded for the history search. */
async function recordRun(workflowId: string): Promise<string> {
  const d = await world.env.client.workflow.getHandle(workflowId).describe();
  runs.push({ workflowId, runId: d.runId });
  return d.runId;
}

beforeAll(async () => {
  execFileSync('docker', ['build', '-q', '-t', PICKY, '-'], {
    input: [
      `FROM ${IMAGE}`,
      'LABEL steward.test=picky',
      // Healthy only while the token is in the accept-list (when there is one), and the gateway answers /healthz. A
      // refused token fails the check at once, and with a 1 s start period (the base image's 120 s is inherited
      // unless set) three such checks make the gateway `unhealthy` within seconds of its start; a booting gateway
      // fails none: the check itself waits until /healthz answers (the timeout bounds a boot however slow the host).
      `HEALTHCHECK --interval=3s --timeout=600s --start-period=1s --retries=3 CMD sh -c 'a=/home/node/.openclaw/steward-test-accepted-tokens; if [ -s "$a" ]; then grep -qx "$(sha256sum < /run/secrets/gateway-token | cut -c1-64)" "$a" || { echo "steward-test: token not accepted"; exit 1; }; fi; until curl -fsS --max-time 3 -o /dev/null "http://127.0.0.1:\${OPENCLAW_GATEWAY_PORT:-18789}/healthz"; do sleep 1; done'`,
      '',
    ].join('\n'),
    stdio: 'pipe',
  });
  world = await stage({ taskQueue: 'rotate-provision', simulators: 1, golden: 'provisioned' });
  sim = world.sims[0]!;
  host = hostName(sim);
  cli = cliFor(world.env, QUEUE);
  const dir = mkdtempSync(join(tmpdir(), 'steward-rotate-'));
  storeDir = join(dir, 'store');
  keyFile = join(dir, 'openrouter.key');
  const key = `sk-or-v1-${randomBytes(24).toString('hex')}`;
  values.add(key);
  writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
  specInput = {
    stack: {
      image: PICKY,
      // Raw over loopback, where gzip only costs CPU (deploy.test.ts keeps the default).
      compressImages: false,
      // Probes refuse tokens on purpose; no lockout of the test's own probes.
      gateway: { rateLimit: { maxAttempts: 1000 } },
      providers: {
        openrouter: { baseUrl: 'http://127.0.0.1:9/api/v1' },
        primary: 'openrouter/anthropic/claude-sonnet-4.5',
        // Nothing answers at that URL: no agent turn (deploy.test.ts proves one through the LLM test double).
        verifyTurn: false,
      },
    },
    proxy: { domain: 'agent.steward.test' },
    secrets: {
      'gateway-token': { generate: { length: 48 } },
      'openrouter-api-key': { external: { file: keyFile } },
    },
  };
  specFile = writeSpec(world.keys, [sim], specInput, 'rotate.yaml');
  rollbackSpecFile = writeSpec(
    world.keys,
    [sim],
    { ...specInput, stack: { ...specInput.stack, healthTimeoutSeconds: ROLLBACK_HEALTH_TIMEOUT } },
    'rotate-rollback.yaml',
  );
  made.key = key;
  startWorker();
  const deployed = await cli(specFile, 'deploy');
  outputs.push(deployed.stdout, deployed.stderr);
  if (deployed.doc) runs.push({ workflowId: deployed.doc.workflowId, runId: deployed.doc.runId });
  if (deployed.code !== 0) throw new Error(`deploy failed: ${deployed.stderr || deployed.stdout}`);
}, 900_000);

afterAll(async () => {
  await stopWorker('SIGTERM');
  await world?.close();
});

describe('steward rotate', () => {
  it('rotates the gateway token: each phase shown; the new token is accepted, the old one refused', async () => {
    const old = await token();
    made.deployed = old;
    const gatewayBefore = await gatewayHealth();
    expect(gatewayBefore).toMatch(/^running\/healthy /);
    const started = Date.now();
    const r = await steward([
      '--spec',
      specFile,
      '--address',
      world.env.address,
      '--task-queue',
      QUEUE,
      'rotate',
      'gateway-token',
    ]);
    outputs.push(r.stdout, r.stderr);
    console.log(`first rotation: ${((Date.now() - started) / 1000).toFixed(1)} s\n${r.stdout}`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    for (const phase of ['inspectSecret', 'createSecret', 'setSecret', 'testSecret', 'finishSecret']) {
      expect(r.stdout).toMatch(new RegExp(`✓ ${host}\\s+gateway-token\\s+${phase}`));
    }
    expect(r.stdout).toMatch(/pass\s+secret\.gateway-token\.new-accepted/);
    expect(r.stdout).toMatch(/pass\s+secret\.gateway-token\.old-refused\s+refused \(AUTH_TOKEN_MISMATCH\)/);
    const runId = await recordRun(rotationWorkflowId(host, 'gateway-token'));

    // Reloaded, not restarted: the same container process serves, started when it was before the rotation.
    expect(await gatewayHealth()).toBe(gatewayBefore);
    const fresh = await token();
    made.rotated = fresh;
    expect(fresh).not.toBe(old);
    expect(fresh).toMatch(/^[A-Za-z0-9]{48}$/);
    const outcome = await probe({ fresh, old });
    expect(outcome.fresh).toEqual({ outcome: 'accepted' });
    expect(outcome.old).toMatchObject({ outcome: 'refused', code: 'AUTH_TOKEN_MISMATCH' });

    // Stages: the new version current, the old one kept as previous, on the host and in the store.
    const files = await versionFiles();
    expect(Object.keys(files)).toHaveLength(2);
    const record = await (
      await SecretStore.fromEnv({ ...process.env, STEWARD_SECRETS_STORE: storeDir })
    ).read(host, 'gateway-token');
    const current = staged(record, 'current')!;
    const previous = staged(record, 'previous')!;
    expect(files[current.id]).toBe(fresh);
    expect(files[previous.id]).toBe(old);
    expect(current.sha256).toBe(sha(fresh));
    expect(current.value).toBeUndefined();
    expect(r.stdout).toContain(`rotated: current ${current.id}, previous ${previous.id}`);

    // The history shows the phases as activities, in order.
    const history = await world.env.client.workflow
      .getHandle(rotationWorkflowId(host, 'gateway-token'), runId)
      .fetchHistory();
    const phases = ['inspectSecret', 'createSecret', 'setSecret', 'testSecret', 'finishSecret', 'rollbackSecret'];
    const activities = (history.events ?? [])
      .flatMap((e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? [])
      .filter((name) => phases.includes(name));
    expect(activities).toEqual(['inspectSecret', 'createSecret', 'setSecret', 'testSecret', 'finishSecret']);
  });

  it('a secret consumed with apply: restart is taken by an in-place restart: same container, new token accepted, old refused', async () => {
    const old = await token();
    const before = await gatewayHealth();
    const restartSpec = writeSpec(
      world.keys,
      [sim],
      {
        ...specInput,
        secrets: {
          ...specInput.secrets,
          'gateway-token': { generate: { length: 48 }, consumers: [{ service: 'gateway', apply: 'restart' }] },
        },
      },
      'rotate-restart.yaml',
    );
    const started = Date.now();
    const r = await rotateWith(restartSpec, 'gateway-token');
    console.log(`rotation with an in-place restart: ${((Date.now() - started) / 1000).toFixed(1)} s`);
    expect(r.code).toBe(0);
    const restarts = r.doc!.hosts[0]!.changes.filter((c) => c.resource === 'container:gateway');
    expect(restarts).toEqual([
      expect.objectContaining({
        action: 'restart',
        after: expect.objectContaining({ how: 'restarted in place (SIGUSR2)' }),
      }),
    ]);
    // The same container, never stopped by the engine: the gateway restarted inside it.
    expect(await gatewayHealth()).toBe(before);
    const fresh = await token();
    expect(fresh).not.toBe(old);
    const outcome = await probe({ fresh, old });
    expect(outcome.fresh).toEqual({ outcome: 'accepted' });
    expect(outcome.old).toMatchObject({ outcome: 'refused', code: 'AUTH_TOKEN_MISMATCH' });
  });

  it('a new token the gateway fails health with is rolled back: healthy on the old one; the run says why; the next rotation succeeds', async () => {
    const old = await token();
    const versionsBefore = await versionFiles();
    await onHost(`umask 077; printf '%s\\n' ${sha(old)} > ${ACCEPT_LIST}; chown 1000:1000 ${ACCEPT_LIST}`);
    // Collect the version files while the rotation runs: the rolled-back token is searched for at the end too.
    const seen = new Map<string, string>();
    let collecting = true;
    const collector = (async () => {
      while (collecting) {
        const files = await versionFiles().catch(() => ({}));
        for (const [id, value] of Object.entries(files)) if (value) seen.set(id, value);
        await new Promise((r) => setTimeout(r, 2_000));
      }
    })();
    try {
      const started = Date.now();
      // The spec's own health timeout, not the default 240 s, bounds the wait for the gateway on the new token.
      const r = await rotateWith(rollbackSpecFile, 'gateway-token');
      collecting = false;
      await collector;
      console.log(`failing rotation with rollback: ${((Date.now() - started) / 1000).toFixed(1)} s`);
      expect(r.code).toBe(1);
      const h = r.doc!.hosts[0]!;
      expect(h.error).toMatch(
        /gateway: running\/unhealthy.*; rolled back: the host serves version v\S+ of gateway-token/,
      );
      expect(h.error).toContain(`not healthy after ${ROLLBACK_HEALTH_TIMEOUT} s: gateway: running/unhealthy`);
      expect(h.rotations[0]?.status).toBe('failed');
      expect(await token()).toBe(old);
      expect(await gatewayHealth()).toMatch(/^running\/healthy /);
      expect((await probe({ old })).old).toEqual({ outcome: 'accepted' });
      expect(await versionFiles()).toEqual(versionsBefore);
      // The refused token was a version on the host while the rotation ran; it is gone now.
      const refused = [...seen].filter(([id]) => !(id in versionsBefore));
      expect(refused.map(([, value]) => value)).toEqual([expect.stringMatching(/^[A-Za-z0-9]{48}$/)]);
      made.rolledBack = refused[0]![1];
    } finally {
      collecting = false;
      await collector;
      await onHost(`rm -f ${ACCEPT_LIST}`);
    }

    const again = await rotate('gateway-token');
    expect(again.code).toBe(0);
    const fresh = await token();
    made.afterRollback = fresh;
    expect(fresh).not.toBe(old);
    const outcome = await probe({ fresh, old });
    expect(outcome.fresh?.outcome).toBe('accepted');
    expect(outcome.old?.code).toBe('AUTH_TOKEN_MISMATCH');
  });

  describe('a worker killed with SIGKILL in each phase of one rotation', () => {
    type Phase = (typeof KILLED_IN)[number];
    /** The step's status when its worker was killed, and when. */
    const kills: Partial<Record<Phase, { state?: string; killedAt: number }>> = {};
    let workflowId = '';
    let before = '';
    let second: RotateResult | undefined;
    let outcome = '';
    let violations: string[] = [];
    /** Per activity type: how many attempts were started, and when it last completed. */
    const attempts: Record<string, number> = {};
    const completedAt: Record<string, number> = {};
    /** Step → status in the rotation's report. */
    let steps: Record<string, string> = {};
    let live = '';
    let probed: Record<string, ProbeOutcome> = {};
    let versionsLeft = 0;

    // One rotation, its worker killed in each phase in turn and replaced each time: every phase is killed while it
    // runs and resumes on the next worker, at the cost of one rotation instead of four.
    beforeAll(async () => {
      before = await token();
      const watch = watchHost();
      try {
        let runId = '';
        try {
          // createSecret takes milliseconds and setSecret (a reload) seconds; a slow link to the host makes each last
          // long enough to be killed in.
          await throttle('4kbit');
          const started = await rotate('--no-wait', 'gateway-token');
          if (started.code !== 0) throw new Error(`rotate --no-wait: ${started.stderr || started.stdout}`);
          ({ workflowId, runId } = JSON.parse(started.stdout) as { workflowId: string; runId: string });
          for (const phase of KILLED_IN) {
            // Killed only once the worker has picked the phase's activity up and while it still runs.
            await waitFor(`${phase} to start on the worker`, async () => {
              if (await activityStarted(workflowId, phase)) return true;
              const p = await progress(workflowId);
              const done = p?.steps.find((s) => s.step === phase && !['pending', 'running'].includes(s.status));
              if (done) {
                const seen = p!.steps.map((s) => `${s.step} ${s.status}${s.error ? ` (${s.error})` : ''}`);
                throw new Error(`${phase} ended (${done.status}) before the worker could be killed in it: ${seen}`);
              }
              return undefined;
            });
            if (phase === 'setSecret') {
              // One rotation per host and secret at a time; meanwhile the switch happens and the reload begins.
              second = await rotate('gateway-token');
              await new Promise((r) => setTimeout(r, 3_000));
            }
            const state = (await progress(workflowId))?.steps.find((s) => s.step === phase)?.status;
            await stopWorker('SIGKILL');
            kills[phase] = { ...(state ? { state } : {}), killedAt: Date.now() };
            if (phase === 'setSecret') await throttle(false);
            if (phase === 'testSecret') {
              // finishSecret prunes what is not a kept version, leftovers of interrupted writes included: thousands
              // of them keep it busy for seconds (a throttled link would slow testSecret's probes as much). Made while
              // testSecret waits for its retry, before finishSecret can start.
              await onHost(`cd ${VERSIONS} && seq -f '.steward.leftover-%06g' 1 4000 | xargs touch`);
            }
            startWorker();
          }
        } finally {
          await throttle(false);
          if (!worker) startWorker();
          // Whether or not every kill happened, the rotation ends before anything else runs on the host.
          if (workflowId) {
            outcome = await world.env.client.workflow
              .getHandle(workflowId, runId)
              .result()
              .then(
                (report) => {
                  steps = Object.fromEntries((report as HostReport).steps.map((s) => [s.step, s.status]));
                  return 'completed';
                },
                (e: Error) => `failed: ${(e.cause as Error | undefined)?.message ?? e.message}`,
              );
          }
        }
        const history = await world.env.client.workflow.getHandle(workflowId, runId).fetchHistory();
        const types = new Map<string, string>();
        for (const e of history.events ?? []) {
          const scheduled = e.activityTaskScheduledEventAttributes;
          if (scheduled) types.set(String(e.eventId), scheduled.activityType?.name ?? '');
          const startedEvent = e.activityTaskStartedEventAttributes;
          if (startedEvent) {
            const type = types.get(String(startedEvent.scheduledEventId)) ?? '?';
            // Attempts of the step in all: the workflow schedules each retry anew (workflows/retry.ts); a started
            // event records the server's attempt number of its scheduling (1 unless the server retried it).
            attempts[type] = (attempts[type] ?? 0) + (startedEvent.attempt ?? 1);
          }
          const completed = e.activityTaskCompletedEventAttributes;
          if (completed && e.eventTime?.seconds != null) {
            const type = types.get(String(completed.scheduledEventId)) ?? '?';
            completedAt[type] = Number(e.eventTime.seconds) * 1000 + Math.floor((e.eventTime.nanos ?? 0) / 1e6);
          }
        }
      } finally {
        violations = await watch.stop();
      }
      live = await token();
      made.killedRotation = live;
      probed = await probe({ live, before });
      versionsLeft = Object.keys(await versionFiles()).length;
      for (const phase of KILLED_IN) {
        const k = kills[phase];
        console.log(
          `kill during ${phase} (step ${k?.state} at the kill): attempt ${attempts[phase]} completed it ` +
            `${k && completedAt[phase] ? ((completedAt[phase] - k.killedAt) / 1000).toFixed(1) : '?'} s after the kill`,
        );
      }
      console.log(`rotation with four kills: ${outcome}; attempts ${JSON.stringify(attempts)}`);
    }, 1_200_000);

    for (const phase of KILLED_IN) {
      it(`a worker killed with SIGKILL during ${phase} is replaced; the rotation ends and the host never lacks a working token`, async () => {
        expect(violations).toEqual([]);
        expect(kills[phase]?.state).toBe('running');
        expect(attempts[phase]).toBeGreaterThan(1);
        // Pinned: the killed phase resumed on the next worker and completed, and the rotation completed (no rollback).
        expect(steps[phase]).toBe('completed');
        expect(outcome).toBe('completed');
        expect(steps.rollbackSecret).toBe('skipped');
        if (phase === 'setSecret') {
          expect(second?.code).toBe(1);
          expect(second?.stderr).toContain(`already running (workflow ${workflowId})`);
        }
        expect(live).not.toBe(before);
        expect(probed.live?.outcome).toBe('accepted');
        expect(probed.before?.code).toBe('AUTH_TOKEN_MISMATCH');
        expect(versionsLeft).toBeLessThanOrEqual(2);
      });
    }
  });

  it('rotates an external secret from its source: refused while the source is unchanged, then the gateway reads the new key', async () => {
    const gatewayBefore = await gatewayHealth();
    const same = await rotate('openrouter-api-key');
    expect(same.code).toBe(1);
    expect(same.doc!.hosts[0]!.error).toMatch(/still gives the current value; put the new value there/);
    expect(await gatewayHealth()).toBe(gatewayBefore);

    const oldKey = readFileSync(keyFile, 'utf8').trim();
    const newKey = `sk-or-v1-${randomBytes(24).toString('hex')}`;
    values.add(newKey);
    made.newKey = newKey;
    writeFileSync(keyFile, `${newKey}\n`);
    const r = await rotate('openrouter-api-key');
    expect(r.code).toBe(0);
    // The gateway reads its provider key through a SecretRef: reloaded, not restarted.
    expect(await gatewayHealth()).toBe(gatewayBefore);
    expect(r.doc!.hosts[0]!.changes).toContainEqual(
      expect.objectContaining({ resource: 'container:gateway', action: 'reload' }),
    );
    expect(await onHost('cat /opt/openclaw/secrets/openrouter-api-key')).toBe(newKey);
    expect(await onHost('docker exec openclaw_gateway_1 cat /run/secrets/openrouter-api-key')).toBe(newKey);
    const controls = r.doc!.hosts[0]!.controls ?? [];
    expect(controls.find((c) => c.control === 'secret.openrouter-api-key.consumer-version')?.status).toBe('pass');
    expect(controls.find((c) => c.control === 'secret.openrouter-api-key.old-refused')?.status).toBe('not-applicable');
    const files = await onHost(
      'for f in /opt/openclaw/.steward/secrets/openrouter-api-key/v*; do cat "$f"; echo; done',
    );
    expect(files.split('\n').sort()).toEqual([newKey, oldKey].sort());

    // A deploy after the rotation changes nothing: the source and the host agree.
    const deployed = await cli(specFile, 'deploy');
    outputs.push(deployed.stdout, deployed.stderr);
    if (deployed.doc) runs.push({ workflowId: deployed.doc.workflowId, runId: deployed.doc.runId });
    expect(deployed.code).toBe(0);
    expect(deployed.doc!.hosts[0]!.changes.filter((c) => c.resource.startsWith('secret:'))).toEqual([]);
  });

  it('--plan and --due change nothing', async () => {
    const before = await token();
    const plan = await rotate('--plan');
    expect(plan.code).toBe(0);
    expect(plan.doc!.hosts[0]!.rotations.map((x) => x.status)).toEqual(['skipped', 'skipped']);
    expect(plan.doc!.hosts[0]!.changes).toEqual([]);
    // The plan says how each secret reaches the gateway: both are SecretRefs, so by a reload.
    const applies = plan.doc!.hosts[0]!.findings.filter((f) => f.id === 'secret.apply').map((f) => f.message);
    expect(applies.sort()).toEqual([
      'gateway-token: a rotation brings the gateway to the new value by a reload (openclaw secrets reload), without a restart',
      'openrouter-api-key: a rotation brings the gateway to the new value by a reload (openclaw secrets reload), without a restart',
    ]);
    const due = await rotate('gateway-token', '--due');
    expect(due.code).toBe(0);
    expect(due.doc!.hosts[0]!.findings.map((f) => f.id)).toContain('secret.not-due');
    expect(await token()).toBe(before);
    for (const id of ['gateway-token', 'openrouter-api-key']) {
      const fleetChild = plan.doc!.workflowId.startsWith('rotate/fleet/');
      if (fleetChild) await recordRun(rotationWorkflowId(host, id));
    }
  });

  it('no token or key, in any encoding steward uses, is in a history, the worker log, the CLI output or the store', async () => {
    await versionFiles();
    await token();
    values.add(await onHost('cat /opt/openclaw/secrets/openrouter-api-key'));
    // Every token and key the tests made is searched for: the deployed token, the first rotation's, the one rolled
    // back, the one after it, the one of the rotation with the kills; the OpenRouter key before and after.
    expect(Object.keys(made).sort()).toEqual(
      ['afterRollback', 'deployed', 'key', 'killedRotation', 'newKey', 'rolledBack', 'rotated'].sort(),
    );
    expect(new Set(Object.values(made)).size).toBe(Object.keys(made).length);
    for (const [what, value] of Object.entries(made)) expect(values.has(value), what).toBe(true);
    expect(values.size).toBeGreaterThanOrEqual(Object.keys(made).length);
    expect(runs.length).toBeGreaterThanOrEqual(10);
    const histories = await Promise.all(runs.map((r) => historyText(world.env, r)));
    expect(histories.join('\n')).toContain('finishSecret');
    const store = readdirSync(join(storeDir, host)).map((f) => readFileSync(join(storeDir, host, f), 'utf8'));
    const texts = {
      history: histories.join('\n'),
      worker: workerLog.join(''),
      cli: outputs.join('\n'),
      store: store.join('\n'),
    };
    expect(texts.worker.length).toBeGreaterThan(0);
    const hits: string[] = [];
    for (const value of values) {
      for (const form of encodings(value)) {
        for (const [where, text] of Object.entries(texts)) {
          if (text.includes(form)) hits.push(`${where}: ${form === value ? 'plain' : 'encoded'} ${value.slice(0, 4)}…`);
        }
      }
    }
    expect(hits).toEqual([]);
  });
});
