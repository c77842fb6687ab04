/**
 * Payload encryption against the real dev server: a provision plan run through the CLI and steward's worker leaves
 * only ciphertext in history (read with a client that has no codec), which decodes with the key; rotating the codec
 * key keeps old histories readable; the `temporal` CLI decodes through the codec server with the bearer token; and a
 * workflow of every steward type started by a client without the codec key, with a plaintext input that asks for a
 * change on the host and a command on the worker's machine, runs nothing: its workflow task fails naming the
 * unencrypted payload, no activity or child is scheduled, and neither the host nor the worker's machine changes.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { Client, WorkflowFailedError } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { simulatorExec } from '../../client/dev/simulator';
import { resolveTemporalBinary } from '../../client/dev/temporal';
import type { ResultDocument } from '../../client/operation';
import { AesGcmPayloadCodec, encryptingDataConverter, isEncrypted, METADATA_KEY_ID } from '../../codec/aes-gcm';
import { addKeyToFile, KeyRing, loadKeyFile } from '../../codec/keys';
import { startCodecServer } from '../../codec/server';
import type { HostReport } from '../../model/report';
import { specSchema, type SpecInput } from '../../model/schema';
import { steward } from '../support/cli';
import { hostName, stage, startWorker, writeSpec, type Stage } from '../support/fixtures';

type History = proto.temporal.api.history.v1.IHistory;

const TASK_QUEUE = 'codec-test';
let s: Stage;
let spec: string;
/** Values in the run's input that must never be readable in history: the key path and the pinned host key. */
let canaries: string[];

beforeAll(async () => {
  s = await stage({ taskQueue: TASK_QUEUE, simulators: 1 });
  spec = writeSpec(s.keys, s.sims);
  canaries = [s.keys.privateKeyPath, s.sims[0]!.hostKey.split(' ')[1]!];
});

afterAll(async () => {
  await s?.close();
});

/** Every payload in a history, with where it was; search attributes and headers are not payloads a codec sees. */
/**
 * The marker a `patched()` call records: its details are written by the SDK's core, not the data converter, and hold
 * the patch id only, no data of the run. Every other payload must be ciphertext.
 */
const PATCH_MARKER = 'core_patch';

function payloadsOf(history: History): { where: string; payload: Payload }[] {
  const found: { where: string; payload: Payload }[] = [];
  const walk = (node: unknown, where: string): void => {
    if (node === null || typeof node !== 'object' || node instanceof Uint8Array) return;
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${where}[${i}]`));
    if ((node as { markerName?: string }).markerName === PATCH_MARKER) return;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'searchAttributes' || key === 'header') continue;
      if (key === 'payloads' && Array.isArray(value)) {
        for (const p of value as Payload[]) found.push({ where, payload: p });
      } else walk(value, where ? `${where}.${key}` : key);
    }
  };
  for (const event of history.events ?? []) {
    const attributes = Object.entries(event).find(([k, v]) => k.endsWith('EventAttributes') && v);
    if (attributes) walk(attributes[1], attributes[0]);
  }
  return found;
}

/** The payloads in `temporal workflow show -o json` output, with their encoding and data (base64 undone). */
function payloadsInJson(out: string): { encoding: string; text: string }[] {
  const found: { encoding: string; text: string }[] = [];
  const walk = (node: unknown): void => {
    if (node === null || typeof node !== 'object') return;
    if (Array.isArray(node)) return node.forEach(walk);
    if ((node as { markerName?: string }).markerName === PATCH_MARKER) return;
    for (const [key, value] of Object.entries(node)) {
      if (key === 'searchAttributes' || key === 'header') continue;
      if (key === 'payloads' && Array.isArray(value)) {
        for (const p of value as { metadata?: { encoding?: string }; data?: string }[]) {
          found.push({
            encoding: Buffer.from(p.metadata?.encoding ?? '', 'base64').toString(),
            text: Buffer.from(p.data ?? '', 'base64').toString('latin1'),
          });
        }
      } else walk(value);
    }
  };
  walk(JSON.parse(out));
  return found;
}

const keyIdOf = (p: Payload): string => Buffer.from(p.metadata?.[METADATA_KEY_ID] ?? []).toString();

/** `steward --json provision --plan` on `queue` with the codec keys of `keyFile`. */
async function planRun(queue: string, keyFile?: string): Promise<ResultDocument> {
  const r = await steward(
    ['--spec', spec, '--address', s.env.address, '--task-queue', queue, '--json', 'provision', '--plan'],
    keyFile ? { STEWARD_CODEC_KEY_FILE: keyFile } : {},
  );
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as ResultDocument;
}

const plainClient = () => new Client({ connection: s.env.connection, namespace: s.env.namespace });
const clientWith = (ring: KeyRing) =>
  new Client({
    connection: s.env.connection,
    namespace: s.env.namespace,
    dataConverter: encryptingDataConverter(ring),
  });

describe('payload encryption', () => {
  it('leaves only ciphertext in history: workflow input and result, every activity input and result', async () => {
    const run = await planRun(TASK_QUEUE);
    expect(run.status).toBe('completed');
    const history = await plainClient().workflow.getHandle(run.workflowId, run.runId).fetchHistory();
    const payloads = payloadsOf(history);
    const where = new Set(payloads.map((p) => p.where.replace(/\[\d+\]/g, '')));
    expect([...where]).toEqual(
      expect.arrayContaining([
        'workflowExecutionStartedEventAttributes.input',
        'activityTaskScheduledEventAttributes.input',
        'activityTaskCompletedEventAttributes.result',
        'workflowExecutionCompletedEventAttributes.result',
      ]),
    );
    expect(payloads.filter((p) => p.where.startsWith('activityTaskScheduled')).length).toBeGreaterThanOrEqual(3);
    for (const { where, payload } of payloads) {
      expect(isEncrypted(payload), where).toBe(true);
      expect(keyIdOf(payload), where).toBe(s.env.keys.current.id);
    }
    // Not in any encoding: the whole history as the server stores and sends it.
    const wire = Buffer.from(proto.temporal.api.history.v1.History.encode(history).finish()).toString('latin1');
    const wireB64 = Buffer.from(wire, 'latin1').toString('base64');
    for (const canary of canaries) {
      expect(wire).not.toContain(canary);
      expect(wireB64).not.toContain(Buffer.from(canary).toString('base64'));
    }

    // With the key it all decodes: the input is the spec with the key path and host key.
    const decoded = await new AesGcmPayloadCodec(s.env.keys).decode(payloads.map((p) => p.payload));
    const values = JSON.stringify(decoded.map((p) => defaultPayloadConverter.fromPayload(p)));
    for (const canary of canaries) expect(values).toContain(canary);
    const result = (await s.env.client.workflow.getHandle(run.workflowId, run.runId).result()) as HostReport;
    expect(result.status).toBe('completed');
  });

  it('rotates the codec key: new runs use the new key, old histories still decode, dropped keys are named', async () => {
    const queue = 'codec-rotate';
    const file = join(s.keys.dir, 'rotate.keys');
    const a = await addKeyToFile(file);
    let worker = await startWorker(s.env, queue, await loadKeyFile(file));
    const first = await planRun(queue, file).finally(() => worker.stop());

    const b = await addKeyToFile(file); // [B, A]: B encrypts from now on, A still decrypts
    expect((await loadKeyFile(file)).ids).toEqual([b.key.id, a.key.id]);
    worker = await startWorker(s.env, queue, await loadKeyFile(file));
    const second = await planRun(queue, file).finally(() => worker.stop());

    const raw = plainClient();
    const keyIds = async (run: ResultDocument) =>
      new Set(
        payloadsOf(await raw.workflow.getHandle(run.workflowId, run.runId).fetchHistory()).map((p) =>
          keyIdOf(p.payload),
        ),
      );
    expect([...(await keyIds(first))]).toEqual([a.key.id]);
    expect([...(await keyIds(second))]).toEqual([b.key.id]);

    const rotated = clientWith(await loadKeyFile(file));
    for (const run of [first, second]) {
      const report = (await rotated.workflow.getHandle(run.workflowId, run.runId).result()) as HostReport;
      expect(report.status).toBe('completed');
    }

    // Once A leaves the ring, A's histories no longer decode, and the error says which key they need.
    const onlyB = clientWith(KeyRing.of([b.key]));
    expect(((await onlyB.workflow.getHandle(second.workflowId, second.runId).result()) as HostReport).status).toBe(
      'completed',
    );
    const err = await onlyB.workflow
      .getHandle(first.workflowId, first.runId)
      .result()
      .catch((e: unknown) => e);
    expect(err).not.toBeInstanceOf(WorkflowFailedError);
    expect((err as Error).message).toContain(`codec key "${a.key.id}", which is not in the key ring (${b.key.id})`);
  });

  it('the temporal CLI shows the run decoded through the codec server with the bearer token, and only then', async () => {
    const run = await planRun(TASK_QUEUE);
    const token = 'integration-token-0123456789';
    const server = await startCodecServer({ ring: s.env.keys, token, port: 0 });
    const temporal = resolveTemporalBinary();
    if (!temporal) throw new Error('no temporal CLI: run scripts/setup.sh');
    const show = async (...extra: string[]) =>
      promisify(execFile)(
        temporal,
        [
          ...['workflow', 'show', '-w', run.workflowId, '-r', run.runId, '-o', 'json'],
          ...['--address', s.env.address, '--namespace', s.env.namespace, ...extra],
        ],
        { maxBuffer: 64 * 1024 * 1024, env: { ...process.env, TEMPORAL_VERSION_CHECK_DISABLED: '1' } },
      ).then(
        (r) => ({ code: 0, out: r.stdout }),
        (e: { code?: number; stdout?: string; stderr?: string }) => ({
          code: e.code ?? -1,
          out: `${e.stdout ?? ''}${e.stderr ?? ''}`,
        }),
      );
    try {
      // As the README shows it: the token in the CLI's env file (0600), not on its command line.
      const envFile = join(s.keys.dir, 'steward-temporal.yaml');
      writeFileSync(envFile, `env:\n  steward:\n    codec-endpoint: ${server.url}\n    codec-auth: Bearer ${token}\n`, {
        mode: 0o600,
      });
      const decoded = await show('--env-file', envFile, '--env', 'steward');
      expect(decoded.code).toBe(0);
      const decodedPayloads = payloadsInJson(decoded.out);
      expect(decodedPayloads.length).toBeGreaterThan(3);
      // An activity that returns nothing (the run guard's findEarlierRun, usually) decodes to binary/null.
      const decodedEncodings = new Set(decodedPayloads.map((p) => p.encoding));
      decodedEncodings.delete('binary/null');
      expect(decodedEncodings).toEqual(new Set(['json/plain']));
      for (const canary of canaries) expect(decodedPayloads.map((p) => p.text).join('\n')).toContain(canary);

      const plain = await show();
      expect(plain.code).toBe(0);
      const plainPayloads = payloadsInJson(plain.out);
      expect(plainPayloads.length).toBe(decodedPayloads.length);
      expect(new Set(plainPayloads.map((p) => p.encoding))).toEqual(new Set(['binary/encrypted']));
      for (const canary of canaries) expect(plainPayloads.map((p) => p.text).join('\n')).not.toContain(canary);

      const wrong = await show('--codec-endpoint', server.url, '--codec-auth', 'Bearer wrong-token-0123456789');
      expect(wrong.code).not.toBe(0);
      for (const canary of canaries) expect(wrong.out).not.toContain(canary);
    } finally {
      await server.close();
    }
  });
});

/** Every workflow type the worker registers (workflows/index.ts), each a way in for a spec. */
const WORKFLOW_TYPES = [
  'provisionHost',
  'hardenHost',
  'deployHost',
  'memoryCheckHost',
  'driftHost',
  'convergeHost',
  'fleet',
  'auditExport',
  'rotateSecret',
  'rotateSecrets',
];

describe('payloads without the codec key', () => {
  it('a plaintext input starts nothing: the task fails naming the unencrypted payload, host and worker untouched', async () => {
    const sim = s.sims[0]!;
    // What an attacker would ask for: the ops user created with sudo on the host, and a command run by the worker.
    const marker = join(s.keys.dir, `plaintext-ran-${randomBytes(4).toString('hex')}`);
    const file = writeSpec(
      s.keys,
      [sim],
      {
        ssh: { opsUser: 'intruder' },
        secrets: { 'gateway-token': { external: { command: ['touch', marker] } } },
      } as Partial<SpecInput>,
      'intruder.yaml',
    );
    const spec = specSchema.parse(parse(readFileSync(file, 'utf8')));
    const input = { spec, host: hostName(sim), hosts: [hostName(sim)], mode: 'apply', operation: 'provision' };
    const raw = plainClient();
    const started = await Promise.all(
      WORKFLOW_TYPES.map((type) =>
        raw.workflow.start(type, {
          taskQueue: TASK_QUEUE,
          workflowId: `plaintext-${type}-${randomBytes(3).toString('hex')}`,
          args: [input],
        }),
      ),
    );
    try {
      for (const [i, handle] of started.entries()) {
        const type = WORKFLOW_TYPES[i]!;
        const deadline = Date.now() + 60_000;
        let history = await handle.fetchHistory();
        const failedTask = () => history.events?.find((e) => e.workflowTaskFailedEventAttributes);
        while (!failedTask() && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 500));
          history = await handle.fetchHistory();
        }
        // The failure's text is itself an encrypted payload (steward's failure converter): decoded with the key.
        const failure = failedTask()?.workflowTaskFailedEventAttributes?.failure;
        expect(failure?.message, type).toBe('Encoded failure');
        const [attributes] = await new AesGcmPayloadCodec(s.env.keys).decode([failure!.encodedAttributes as Payload]);
        expect(defaultPayloadConverter.fromPayload<{ message: string }>(attributes!).message, type).toMatch(
          /refused an unencrypted payload \(encoding "json\/plain"\)/,
        );
        const kinds = (history.events ?? []).map((e) =>
          Object.keys(e).find((k) => k.endsWith('EventAttributes') && e[k as keyof typeof e]),
        );
        expect(kinds, type).not.toContain('activityTaskScheduledEventAttributes');
        expect(kinds, type).not.toContain('startChildWorkflowExecutionInitiatedEventAttributes');
        expect(kinds, type).not.toContain('workflowExecutionCompletedEventAttributes');
        expect((await handle.describe()).status.name, type).toBe('RUNNING');
      }
    } finally {
      await Promise.all(started.map((h) => h.terminate('test over').catch(() => undefined)));
    }
    expect(existsSync(marker)).toBe(false);
    const user = await simulatorExec(sim.container, ['sh', '-c', 'id intruder 2>&1 || echo absent']);
    expect(user.stdout).toContain('absent');
  });

  it("another application's plaintext memo does not break steward's listings of schedules and runs", async () => {
    const raw = plainClient();
    const id = `other-app-${randomBytes(3).toString('hex')}`;
    await raw.schedule.create({
      scheduleId: id,
      spec: { intervals: [{ every: '1h' }] },
      action: { type: 'startWorkflow', workflowType: 'somethingElse', taskQueue: 'other-app', args: [] },
      memo: { owner: 'another application' },
      state: { paused: true },
    });
    try {
      const globals = ['--spec', spec, '--address', s.env.address, '--task-queue', TASK_QUEUE, '--json'];
      for (const args of [
        ['schedule', 'list'],
        ['status', '--host', hostName(s.sims[0]!)],
      ]) {
        const r = await steward([...globals, ...args]);
        expect(r.stderr, args.join(' ')).toBe('');
        expect(r.code, args.join(' ')).toBe(0);
      }
    } finally {
      await raw.schedule.getHandle(id).delete();
    }
  });
});
