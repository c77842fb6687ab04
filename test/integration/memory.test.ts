/**
 * memory check end to end on one deployed simulator, through the CLI, with the real OpenClaw image and its real
 * mem0 plugin: every check passes (with timings) on a healthy host; a root-owned data dir fails naming the path and
 * owner and `--repair` fixes it and proves again; a damaged history DB is a clear finding and repair backs it up
 * without replacing it; an embedder that returns another vector length fails the dimension check; history pointed
 * at an unwritable path is reported as disabled, and data on a tmpfs fails the persistence proof (a fresh container
 * with the gateway's volumes, which never restarts it); the rest adapter proves a standalone mem0 REST server with
 * its API key (across its restart with --restart-proof) and fails with a wrong one; and no API key or token,
 * in any encoding steward uses, is in the CLI's output, a workflow history (decrypted or raw) or the worker's log.
 *
 * Test doubles: the embedding provider is the stand-in embedder (images/embedder-standin/embedder.ts), an
 * OpenAI-compatible endpoint with deterministic vectors, run on the simulator in a container of the OpenClaw image
 * attached to the stack's network (alias embeddings-double). Its chat endpoint counts calls: the check never needs an LLM. The mem0 REST server is
 * test/doubles/mem0-rest.ts (mem0's REST routes over the real mem0 library). Nothing leaves the machine; the API keys
 * are random values from this process's environment.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import type { LogLevel, LogMetadata } from '@temporalio/common';
import { Runtime } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodings } from '../../activities/redact';
import { simulatorExec, type Simulator } from '../../client/dev/simulator';
import type { ControlResult } from '../../model/report';
import { progressQuery, type HostProgress } from '../../workflows/host-operation';
import type { SpecInput } from '../../model/schema';
import { steward } from '../support/cli';
import { hostName, stage, writeSpec, type Stage } from '../support/fixtures';
import { historyText, rawHistoryText } from '../support/temporal';
import { doubleProviders, EMBEDDER_DOUBLE, embedderDoubleStats, startEmbedderDouble } from '../support/embedder-double';

const IMAGE = 'steward/openclaw:2026.9.6';
const KEY_ENV = 'STEWARD_TEST_EMBEDDER_KEY';
const DOUBLE = EMBEDDER_DOUBLE;
const REST_SOURCE = readFileSync(fileURLToPath(new URL('../doubles/mem0-rest.ts', import.meta.url)), 'utf8');
const REST_KEY_ENV = 'STEWARD_TEST_MEM0_REST_KEY';
const REST_DIR = '/srv/mem0-rest';
const MEMORY_DIR = '/opt/openclaw/memory';

let world: Stage;
let sim: Simulator;
const outputs: string[] = [];
/** Every run the file starts, for the history search. */
const runs: { workflowId: string; runId: string }[] = [];
/** Every line the file's in-process worker logs, at every level (see {@link tapWorkerLog}). */
const workerLog: string[] = [];
/** The wrong REST API key the last test sends: a secret value like the others, searched for too. */
const WRONG_REST_KEY = `m0sk_wrong_${randomBytes(24).toString('hex')}`;

/**
 * Records everything the worker in this process logs — activity and workflow logs, the SDK's own, core's forwarded
 * ones, at every level — before the runtime's logger filters it (the tests' runtime prints only WARN and up), each
 * entry with its metadata in full (errors with their stacks and causes), so the log can be searched for secrets.
 */
function tapWorkerLog(): void {
  const logger = Runtime.instance().logger;
  const log = logger.log.bind(logger);
  const tapped = (level: LogLevel, message: string, meta?: LogMetadata): void => {
    const detail = meta
      ? inspect(meta, { depth: 12, maxArrayLength: Infinity, maxStringLength: Infinity, breakLength: Infinity })
      : '';
    workerLog.push(`${level} ${message} ${detail}`);
    log(level, message, meta);
  };
  Object.assign(logger, {
    log: tapped,
    trace: (message: string, meta?: LogMetadata) => tapped('TRACE', message, meta),
    debug: (message: string, meta?: LogMetadata) => tapped('DEBUG', message, meta),
    info: (message: string, meta?: LogMetadata) => tapped('INFO', message, meta),
    warn: (message: string, meta?: LogMetadata) => tapped('WARN', message, meta),
    error: (message: string, meta?: LogMetadata) => tapped('ERROR', message, meta),
  });
}

function spec(over: { persistence?: boolean; rest?: boolean } = {}): Partial<SpecInput> {
  const rest = {
    adapter: 'rest' as const,
    rest: {
      url: 'http://127.0.0.1:18888',
      apiKeySecret: 'mem0-rest-key',
      container: 'mem0-rest',
      databases: [`${REST_DIR}/history.db`, `${REST_DIR}/vector_store.db`],
    },
  };
  return {
    stack: {
      image: IMAGE,
      // Raw over loopback, where gzip only costs CPU (deploy.test.ts keeps the default).
      compressImages: false,
      memory: {
        ...doubleProviders('embedder-api-key'),
        check: { persistence: over.persistence ?? true, minFreeMegabytes: 100, ...(over.rest ? rest : {}) },
      },
    },
    proxy: { domain: 'agent.steward.test' },
    secrets: {
      'gateway-token': { generate: { length: 48 } },
      'embedder-api-key': { external: { env: KEY_ENV } },
      'mem0-rest-key': { external: { env: REST_KEY_ENV } },
    },
  };
}

/** The gateway's container as compose names it. */
const GATEWAY_CONTAINER = 'openclaw_gateway_1';

function specFile(extra: Partial<SpecInput>): string {
  return writeSpec(world.keys, [sim], extra, `memory-${randomBytes(3).toString('hex')}.yaml`);
}

/** `steward --json memory check …`, output kept for the secret check. */
async function check(extra: Partial<SpecInput>, ...args: string[]) {
  const r = await world.cli(specFile(extra), 'memory', 'check', ...args);
  outputs.push(r.stdout, r.stderr);
  if (r.doc) runs.push({ workflowId: r.doc.workflowId, runId: r.doc.runId });
  return r;
}

async function onHost(script: string): Promise<string> {
  const r = await simulatorExec(sim.container, ['sh', '-c', script]);
  return r.stdout.trim();
}

function byId(controls: readonly ControlResult[] | undefined): Record<string, ControlResult> {
  return Object.fromEntries((controls ?? []).map((c) => [c.control, c]));
}

/** (Re)starts the embeddings test double on the stack's network; `fixedDims` makes it ignore `dimensions`. */
function startDouble(fixedDims?: number): Promise<void> {
  return startEmbedderDouble(sim, IMAGE, fixedDims);
}

function doubleStats(): Promise<{ embeddings: number; chat: number } | undefined> {
  return embedderDoubleStats(sim);
}

beforeAll(async () => {
  process.env[KEY_ENV] = `sk-test-${randomBytes(24).toString('hex')}`;
  process.env[REST_KEY_ENV] = `m0sk_test_${randomBytes(24).toString('hex')}`;
  world = await stage({ taskQueue: 'memory-test', simulators: 1, golden: 'provisioned' });
  sim = world.sims[0]!;
  tapWorkerLog();
  const deployed = await world.cli(specFile(spec()), 'deploy');
  outputs.push(deployed.stdout, deployed.stderr);
  if (deployed.doc) runs.push({ workflowId: deployed.doc.workflowId, runId: deployed.doc.runId });
  if (deployed.code !== 0) throw new Error(`deploy failed: ${deployed.stderr || deployed.stdout}`);
  await startDouble();
}, 1_200_000);

afterAll(async () => {
  await world?.close();
  delete process.env[KEY_ENV];
  delete process.env[REST_KEY_ENV];
});

describe('steward memory check', () => {
  it('passes every check on a deployed host, with timings, never restarting the gateway or calling an LLM', async () => {
    const gatewayStart = () =>
      onHost(`docker inspect -f '{{.State.StartedAt}} {{.RestartCount}}' ${GATEWAY_CONTAINER}`);
    const startedBefore = await gatewayStart();
    const r = await check(spec());
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const host = r.doc!.hosts[0]!;
    expect(host.controls?.filter((c) => c.status === 'fail')).toEqual([]);
    const c = byId(host.controls);
    for (const id of [
      'memory.path.state-dir',
      'memory.path.data-dir',
      'memory.volume.state-dir',
      'memory.volume.data-dir',
      'memory.volume.history-db',
      'memory.volume.vector-db',
      'memory.free-space.data-dir',
      'memory.canary.write',
      'memory.canary.read',
      'memory.canary.search',
      'memory.canary.history',
      'memory.canary.delete',
      'memory.canary.gone',
      'memory.history-enabled',
      'memory.dimension',
      'memory.on-disk.history-db',
      'memory.on-disk.vector-db',
      'memory.persistence',
    ]) {
      expect(c[id]?.status, id).toBe('pass');
    }
    expect(c['memory.dimension']?.observed).toMatch(/embedder returns 1536; store configured for 1536/);
    for (const id of ['memory.canary.write', 'memory.canary.search', 'memory.persistence']) {
      expect(c[id]?.durationMs, id).toBeGreaterThanOrEqual(0);
    }
    // Persistence is proven in a fresh container beside the gateway, which kept serving: same start, no restart.
    expect(c['memory.persistence']?.observed).toMatch(
      new RegExp(`^read back in a fresh container \\([\\d.]+ s\\), then deleted; ${GATEWAY_CONTAINER} kept serving$`),
    );
    expect(await gatewayStart()).toBe(startedBefore);
    expect(await onHost('docker ps -aq --filter label=steward.memory-probe=fresh')).toBe('');
    // Nothing left behind, and no chat completion was ever requested.
    expect(
      await onHost(
        `sqlite3 -readonly ${MEMORY_DIR}/vector_store.db "SELECT count(*) FROM vectors WHERE payload LIKE '%steward memory canary%'"`,
      ),
    ).toBe('0');
    const stats = await doubleStats();
    expect(stats?.embeddings).toBeGreaterThan(0);
    expect(stats?.chat).toBe(0);
    expect(host.changes).toEqual([]);
  }, 900_000);

  it('a memory check started while a deploy of the host verifies is refused, naming it; the deploy completes', async () => {
    const deploying = world.cli(specFile(spec()), 'deploy');
    // The deploy's run, once it is in its verification.
    const verifying = async (): Promise<string | undefined> => {
      // This host's deploy only: other files' runs share the server.
      for await (const w of world.env.client.workflow.list({
        query: `WorkflowType = 'deployHost' AND ExecutionStatus = 'Running' AND StewardHost = '${hostName(sim)}'`,
      })) {
        const progress = await world.env.client.workflow
          .getHandle(w.workflowId)
          .query<HostProgress>(progressQuery)
          .catch(() => undefined);
        if (progress?.steps.find((st) => st.step === 'verifyStack')?.status === 'running') return w.workflowId;
      }
      return undefined;
    };
    let deployId: string | undefined;
    for (let i = 0; i < 600 && !deployId; i++) {
      deployId = await verifying();
      if (!deployId) await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(deployId, 'the deploy reached its verification').toBeDefined();
    const refused = await check(spec());
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`a deploy of ${hostName(sim)} is already running (workflow ${deployId})`);
    const deployed = await deploying;
    outputs.push(deployed.stdout, deployed.stderr);
    expect(deployed.code).toBe(0);
    expect(deployed.doc!.hosts[0]!.controls?.filter((c) => c.status === 'fail')).toEqual([]);
  }, 300_000);

  it('a root-owned data dir fails naming the path and owner; --repair fixes it and proves again', async () => {
    await onHost(`chown -R root:root ${MEMORY_DIR}`);
    const failed = await steward([
      '--spec',
      specFile(spec()),
      '--address',
      world.env.address,
      '--task-queue',
      'memory-test',
      'memory',
      'check',
    ]);
    outputs.push(failed.stdout, failed.stderr);
    // Without --json the CLI names the run's workflow; its history is searched at the end like the others.
    const workflowId = /— workflow (\S+)/.exec(failed.stdout)?.[1];
    expect(workflowId).toBeDefined();
    const described = await world.env.client.workflow.getHandle(workflowId!).describe();
    runs.push({ workflowId: workflowId!, runId: described.runId });
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(
      /FAIL memory\.path\.data-dir\s+expected directory 1000:1000 0700, observed directory 0:0 0700 \(\/opt\/openclaw\/memory\)/,
    );
    expect(failed.stdout).toMatch(/FAIL memory\.canary\.write/);
    expect(failed.stdout).toMatch(/\[\d+ ms\]/);

    const repaired = await check(spec(), '--repair');
    expect(repaired.stderr).toBe('');
    expect(repaired.code).toBe(0);
    const host = repaired.doc!.hosts[0]!;
    expect(host.controls?.filter((c) => c.status === 'fail')).toEqual([]);
    const changes = Object.fromEntries(host.changes.map((c) => [c.resource, c]));
    expect(changes[`dir:${MEMORY_DIR}`]).toMatchObject({ before: { owner: '0:0' }, after: { owner: '1000:1000' } });
    expect(changes[`tree:${MEMORY_DIR}`]).toMatchObject({ after: { owner: '1000:1000' } });
    expect(changes['container:openclaw_gateway_1']).toMatchObject({ action: 'restart' });
    expect(byId(host.controls)['memory.path.history.db']?.observed).toBe('owner 1000:1000, mode 0644');
    expect(await onHost(`stat -c '%u:%g %a' ${MEMORY_DIR} ${MEMORY_DIR}/history.db`)).toBe(
      '1000:1000 700\n1000:1000 644',
    );
  }, 900_000);

  it('a damaged history DB is a clear finding; repair keeps a backup, never replaces the live file, never follows a planted link', async () => {
    await onHost(`cp -a ${MEMORY_DIR}/history.db /root/history.good`);
    await onHost(
      `printf 'this is no longer a database: steward test corruption' | dd of=${MEMORY_DIR}/history.db bs=1 seek=0 conv=notrunc 2>/dev/null`,
    );
    const damaged = await onHost(`sha256sum ${MEMORY_DIR}/history.db | cut -c1-64`);

    const seen = await check(spec({ persistence: false }));
    expect(seen.code).toBe(1);
    const c = byId(seen.doc!.hosts[0]!.controls);
    expect(c['memory.integrity.history.db']).toMatchObject({
      status: 'fail',
      observed: expect.stringMatching(/file is not a database/),
    });
    expect(c['memory.history-enabled']).toMatchObject({
      status: 'fail',
      observed: expect.stringMatching(/^history disabled/),
    });
    expect(c['memory.integrity.vector_store.db']?.status).toBe('pass');
    expect(seen.doc!.hosts[0]!.findings.map((f) => f.id)).toContain('memory.database-damaged');

    const repair = await check(spec({ persistence: false }), '--repair');
    expect(repair.code).toBe(1);
    const host = repair.doc!.hosts[0]!;
    const backup = host.changes.find((ch) =>
      /^backup:\/var\/backups\/steward\/memory\/[0-9TZ]+\/history\.db$/.test(ch.resource),
    );
    expect(backup).toMatchObject({
      action: 'create',
      after: { of: `${MEMORY_DIR}/history.db`, sha256: damaged.slice(0, 12) },
    });
    const finding = host.findings.find((f) => f.id === 'memory.database-damaged');
    expect(finding?.message).toMatch(/backed up to \/var\/backups\/steward\/memory\/.* Not repaired/);
    const backupPath = backup!.resource.slice('backup:'.length);
    expect(await onHost(`sha256sum ${backupPath} | cut -c1-64`)).toBe(damaged);
    expect(await onHost(`sha256sum ${MEMORY_DIR}/history.db | cut -c1-64`)).toBe(damaged);
    expect(await onHost(`stat -c '%u:%g %a' $(dirname ${backupPath})`)).toBe('0:0 700');

    // A second repair finds the identical backup and makes no other. Meanwhile uid 1000, which owns the volume, has
    // put a symlink where SQLite's write-ahead log goes, pointing at a root file: it is reported, and the repair
    // changes nothing through it.
    const target = '/etc/steward-memory-link-target';
    const link = `${MEMORY_DIR}/history.db-wal`;
    await onHost(`head -c 64 /dev/urandom > ${target} && chmod 0600 ${target}`);
    await onHost(`rm -f ${link} && ln -s ${target} ${link} && chown -h 1000:1000 ${link}`);
    const stat = `stat -c '%u:%g %a %s' ${target}; sha256sum ${target} | cut -c1-64`;
    const linkedBefore = await onHost(stat);
    const again = await check(spec({ persistence: false }), '--repair');
    try {
      expect(again.doc!.hosts[0]!.changes.filter((ch) => ch.resource.startsWith('backup:'))).toEqual([]);
      expect(await onHost('ls /var/backups/steward/memory | wc -l')).toBe('1');
      expect(byId(again.doc!.hosts[0]!.controls)['memory.path.history.db-wal']).toMatchObject({
        status: 'fail',
        observed: 'symbolic link where a file belongs (never repaired)',
      });
      expect(again.doc!.hosts[0]!.changes.filter((c) => c.resource.includes('history.db-wal'))).toEqual([]);
      expect(await onHost(stat)).toBe(linkedBefore);
      expect(await onHost(`stat -c '%F %u:%g' ${link}`)).toBe('symbolic link 1000:1000');
    } finally {
      await onHost(`rm -f ${link} ${target}`);
    }

    await onHost(`cp -a /root/history.good ${MEMORY_DIR}/history.db`);
    const healthy = await check(spec({ persistence: false }));
    expect(healthy.code).toBe(0);
  }, 900_000);

  it('an embedder that returns another vector length fails the dimension check', async () => {
    await startDouble(768);
    try {
      const r = await check(spec({ persistence: false }));
      expect(r.code).toBe(1);
      const c = byId(r.doc!.hosts[0]!.controls);
      expect(c['memory.dimension']).toMatchObject({
        status: 'fail',
        observed: expect.stringMatching(/embedder returns 768; store configured for 1536/),
      });
      expect(c['memory.canary.write']).toMatchObject({ status: 'fail', observed: expect.stringMatching(/dimension/i) });
    } finally {
      await startDouble();
    }
  }, 600_000);

  it('history at an unwritable path is reported disabled; data on a tmpfs fails the persistence proof', async () => {
    // The live openclaw.json is what the plugin reads: point its history at the image's read-only filesystem and its
    // vectors at the gateway's /tmp tmpfs, as a hand edit on the host would.
    const config = '/opt/openclaw/state/openclaw.json';
    await onHost(
      `cp -a ${config} /root/openclaw.json.good && sed -i ` +
        `-e 's#"historyDbPath": "/home/node/memory/history.db"#"historyDbPath": "/opt/openclaw/history.db"#' ` +
        `-e 's#"dbPath": "/home/node/memory/vector_store.db"#"dbPath": "/tmp/mem0/vector_store.db"#' ${config} && ` +
        `chown 1000:1000 ${config}`,
    );
    expect(await onHost(`grep -c -e '"/opt/openclaw/history.db"' -e '"/tmp/mem0/vector_store.db"' ${config}`)).toBe(
      '2',
    );
    try {
      const r = await check(spec());
      expect(r.code).toBe(1);
      const c = byId(r.doc!.hosts[0]!.controls);
      expect(c['memory.history-enabled']).toMatchObject({
        status: 'fail',
        observed: expect.stringMatching(/^history disabled: .*unable to open database file/),
      });
      expect(c['memory.canary.history']?.status).toBe('fail');
      expect(c['memory.config.history-db']).toMatchObject({ status: 'fail', observed: '/opt/openclaw/history.db' });
      expect(c['memory.volume.history-db']).toMatchObject({
        status: 'fail',
        observed: expect.stringMatching(/container's own filesystem/),
      });
      expect(c['memory.volume.vector-db']).toMatchObject({
        status: 'fail',
        observed: expect.stringMatching(/tmpfs \/tmp/),
      });
      // Vectors on a tmpfs work in the gateway, and are not there for a fresh container, as after a restart.
      expect(c['memory.canary.write']?.status).toBe('pass');
      expect(c['memory.canary.search']?.status).toBe('pass');
      expect(c['memory.persistence']).toMatchObject({
        status: 'fail',
        observed: expect.stringMatching(/^lost outside the container: memory \S+ not found/),
      });
    } finally {
      await onHost(`cp -a /root/openclaw.json.good ${config}`);
    }
  }, 900_000);

  it('the rest adapter proves a standalone mem0 REST server with its API key, and a wrong key fails', async () => {
    const key = process.env[REST_KEY_ENV]!;
    await onHost(`install -d -o 1000 -g 1000 -m 0700 ${REST_DIR}`);
    const started = await simulatorExec(sim.container, [
      'docker',
      'run',
      '-d',
      '--name',
      'mem0-rest',
      '--network',
      'openclaw_edge',
      '-p',
      '127.0.0.1:18888:8888',
      '--read-only',
      '--user',
      '1000:1000',
      '-v',
      `${REST_DIR}:/data`,
      '-e',
      `ADMIN_API_KEY=${key}`,
      '-e',
      `EMBEDDER_URL=http://${DOUBLE}:8080/v1`,
      '-e',
      `LLM_URL=http://${DOUBLE}:8080/v1`,
      '--entrypoint',
      'node',
      IMAGE,
      '--input-type=module-typescript',
      '--eval',
      REST_SOURCE,
    ]);
    expect(started.exitCode, started.stderr).toBe(0);
    await onHost('for i in $(seq 50); do curl -sf http://127.0.0.1:18888/healthz && exit 0; sleep 0.2; done');

    // A REST server's persistence is proven across its restart, only when asked: a plain check leaves it running.
    const plain = await check(spec({ rest: true }));
    expect(plain.code).toBe(0);
    expect(byId(plain.doc!.hosts[0]!.controls)['memory.persistence']).toMatchObject({
      status: 'not-applicable',
      note: 'memory check --restart-proof',
    });
    const r = await check(spec({ rest: true }), '--restart-proof');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const c = byId(r.doc!.hosts[0]!.controls);
    for (const id of [
      'memory.canary.write',
      'memory.canary.read',
      'memory.canary.search',
      'memory.canary.history',
      'memory.canary.delete',
      'memory.canary.gone',
      'memory.history-enabled',
      'memory.integrity.history.db',
      'memory.persistence',
    ]) {
      expect(c[id]?.status, id).toBe('pass');
    }
    expect(c['memory.volume.history-db']?.observed).toBe(`${REST_DIR}/history.db via bind ${REST_DIR} → /data`);
    expect(c['memory.path.history.db']?.note).toBe(`${REST_DIR}/history.db`);
    expect(c['memory.persistence']?.expected).toMatch(/restart of mem0-rest/);
    expect((await doubleStats())?.chat).toBe(0);

    process.env[REST_KEY_ENV] = WRONG_REST_KEY;
    try {
      const refused = await check(spec({ rest: true, persistence: false }));
      expect(refused.code).toBe(1);
      expect(byId(refused.doc!.hosts[0]!.controls)['memory.canary.write']?.observed).toMatch(
        /mem0 did not start \(HTTP 401: .*Invalid API key/,
      );
    } finally {
      process.env[REST_KEY_ENV] = key;
    }
  }, 600_000);

  it('no secret value, in any encoding steward uses, is in the output, a workflow history or the worker log', async () => {
    const key = process.env[KEY_ENV]!;
    const token = await onHost('cat /opt/openclaw/secrets/gateway-token');
    expect(token).toMatch(/^[A-Za-z0-9]{48}$/);
    for (const secret of [key, token, process.env[REST_KEY_ENV]!]) expect(outputs.join('\n')).not.toContain(secret);

    // The deploy and every check, the failing ones included; their histories decrypted, then raw.
    expect(runs.length).toBeGreaterThanOrEqual(12);
    const histories = await Promise.all(runs.map((r) => historyText(world.env, r)));
    expect(histories.join('\n')).toContain('"operation":"deploy"');
    expect(histories.join('\n')).toContain('proveMemoryCanary');
    const texts = { cli: outputs.join('\n'), history: histories.join('\n'), worker: workerLog.join('\n') };
    // The tap saw the worker run this file's activities.
    expect(texts.worker).toContain('proveMemoryCanary');
    const secrets = { embedder: key, token, rest: process.env[REST_KEY_ENV]!, 'wrong rest': WRONG_REST_KEY };
    const hits: string[] = [];
    for (const [name, value] of Object.entries(secrets)) {
      for (const form of encodings(value)) {
        for (const [where, text] of Object.entries(texts)) {
          if (text.includes(form)) hits.push(`${where}: ${name} key, ${form === value ? 'plain' : 'encoded'}`);
        }
      }
    }
    expect(hits).toEqual([]);

    // What the failing checks observed (an owner, SQLite's and mem0's own words) is in their decrypted histories, and
    // nowhere in the histories a client without the codec key reads.
    const observed = ['directory 0:0 0700', 'file is not a database', 'unable to open database file'];
    for (const o of observed) expect(texts.history).toContain(o);
    const raw = (await Promise.all(runs.map((r) => rawHistoryText(world.env, r)))).join('\n');
    expect(raw).toContain('"eventType"');
    for (const text of [...observed, ...Object.values(secrets)]) expect(raw).not.toContain(text);
  });
});
