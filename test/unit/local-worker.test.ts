/**
 * The CLI's short way through the local worker (client/local-worker.ts): only a private socket directory is used,
 * the worker accepts only a well-formed request of its own build, keys, server and queue, and the CLI goes on by
 * itself whenever nothing started (declined, no answer) but never runs twice once the worker accepted.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it, vi } from 'vitest';
import { checkPrivate, exchange, keyFingerprint, socketPath, type LocalRequest } from '../../client/local-worker';
import { checkRequest } from '../../client/local-worker-server';
import type { GlobalOptions } from '../../client/globals';

const dir = mkdtempSync(join(tmpdir(), 'steward-local-worker-'));
const uid = process.getuid!();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const g: GlobalOptions = {
  spec: '/srv/ops/steward.yaml',
  address: '127.0.0.1:7233',
  namespace: 'default',
  temporal: { address: '127.0.0.1:7233', namespace: 'default', profile: 'default' },
  json: false,
  wait: true,
  taskQueue: 'steward',
};
const request: LocalRequest = {
  v: 1,
  build: 'build-a',
  keys: 'k'.repeat(64),
  // What the CLI sends: its options without the Temporal target (no API key or private key crosses the socket).
  globals: {
    spec: g.spec,
    address: g.address,
    namespace: g.namespace,
    json: g.json,
    wait: g.wait,
    taskQueue: g.taskQueue,
  },
  command: { operation: 'drift', workflowType: 'driftHost', hosts: ['web1'], mode: 'plan', concurrency: '10' },
  user: 'ops@laptop',
  quiet: true,
};
const own = { build: 'build-a', keys: 'k'.repeat(64), g };

describe('the socket directory', () => {
  it('is used only when it is a directory of this user that nobody else may enter', () => {
    const ok = join(dir, 'ok');
    mkdirSync(ok, { mode: 0o700 });
    expect(checkPrivate(ok, uid)).toBeUndefined();
    expect(checkPrivate(join(dir, 'not-yet'), uid)).toBeUndefined();
    expect(checkPrivate(ok, uid + 1)?.unsafe).toContain(`belongs to uid ${uid}`);

    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o755);
    expect(checkPrivate(open, uid)?.unsafe).toContain('has mode 755');

    const link = join(dir, 'link');
    symlinkSync(ok, link);
    expect(checkPrivate(link, uid)?.unsafe).toContain('is not a directory');
  });

  it('holds one socket per server, namespace and task queue', () => {
    const a = socketPath('/run/steward', g);
    expect(a).toMatch(/^\/run\/steward\/[0-9a-f]{20}\.sock$/);
    expect(socketPath('/run/steward', { ...g, taskQueue: 'other' })).not.toBe(a);
    expect(socketPath('/run/steward', { ...g, namespace: 'prod' })).not.toBe(a);
    expect(socketPath('/run/steward', { ...g, address: '10.0.0.5:7233' })).not.toBe(a);
  });

  it('compares key rings by a one-way digest', () => {
    const ring = (id: string, byte: number) => ({ keys: [{ id, key: Buffer.alloc(32, byte) }] });
    const f = keyFingerprint(ring('k1', 1));
    expect(f).toMatch(/^[0-9a-f]{64}$/);
    expect(keyFingerprint(ring('k1', 1))).toBe(f);
    expect(keyFingerprint(ring('k1', 2))).not.toBe(f);
    expect(keyFingerprint(ring('k2', 1))).not.toBe(f);
    expect(f).not.toContain(Buffer.alloc(32, 1).toString('hex'));
  });
});

describe("the worker's check of a request", () => {
  it('accepts a request of its build, keys, server and queue', () => {
    expect(checkRequest(request, own)).toEqual({ request });
  });

  it.each([
    ['another build', { ...request, build: 'build-b' }, 'another steward build'],
    ['other keys', { ...request, keys: 'j'.repeat(64) }, 'other codec keys'],
    ['another server', { ...request, globals: { ...request.globals, address: '10.0.0.5:7233' } }, 'another server'],
    [
      'another queue',
      { ...request, globals: { ...request.globals, taskQueue: 'x' } },
      'another server, namespace or task queue',
    ],
    ['a relative spec', { ...request, globals: { ...request.globals, spec: 'steward.yaml' } }, 'not a request'],
    // Credentials never cross the socket: a request carrying a Temporal target is not one the CLI sends.
    ['a Temporal target', { ...request, globals: g }, 'not a request'],
    [
      'a workflow type not of its operation',
      { ...request, command: { ...request.command, workflowType: 'rotateSecrets' } },
      'not a request',
    ],
    [
      'an operation the CLI never hands over',
      { ...request, command: { ...request.command, operation: 'upgrade', workflowType: 'upgradeHost' } },
      'not a request',
    ],
    ['a user name with spaces', { ...request, user: 'ops; rm -rf /' }, 'not a request'],
    ['an unknown field', { ...request, env: { PATH: '/tmp' } }, 'not a request'],
    ['another protocol', { ...request, v: 2 }, 'not a request'],
  ])('declines %s', (_what, raw, reason) => {
    const checked = checkRequest(raw, own);
    expect('declined' in checked && checked.declined).toContain(reason);
  });
});

describe('the exchange, as the CLI sees it', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    server = undefined;
    vi.restoreAllMocks();
  });

  /** A worker double on a socket of its own that answers each request with `replies` (raw lines). */
  async function worker(answer: (socket: Socket, line: string) => void): Promise<string> {
    const path = join(dir, `w-${Math.random().toString(16).slice(2)}.sock`);
    server = createServer((socket) => {
      socket.setEncoding('utf8');
      let buf = '';
      let answered = false;
      socket.on('error', () => undefined);
      socket.on('data', (d: string) => {
        buf += d;
        if (answered || !buf.includes('\n')) return;
        answered = true;
        answer(socket, buf.slice(0, buf.indexOf('\n')));
      });
    });
    await new Promise<void>((r) => server!.listen(path, r));
    return path;
  }

  it("prints the worker's lines and exits with its code; the request is the CLI's", async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => undefined);
    const error = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    let seen: unknown;
    const path = await worker((socket, line) => {
      seen = JSON.parse(line);
      socket.end(
        ['{"accepted":true}', '{"out":"web1: 1 resource would change"}', '{"out":"completed"}', '{"exit":2}', ''].join(
          '\n',
        ),
      );
    });
    expect(await exchange(path, request)).toBe(2);
    expect(seen).toEqual(request);
    expect(log.mock.calls.map((c) => c[0])).toEqual(['web1: 1 resource would change', 'completed']);
    expect(error).not.toHaveBeenCalled();
  });

  it("prints the worker's error as the CLI would and exits with its code", async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const path = await worker((socket) =>
      socket.end('{"accepted":true}\n{"exit":64,"error":"unknown host web9; the spec has web1"}\n'),
    );
    expect(await exchange(path, request)).toBe(64);
    expect(error).toHaveBeenCalledWith('steward: unknown host web9; the spec has web1');
  });

  it('goes on by itself when the worker declines, closes or does not answer before accepting', async () => {
    expect(await exchange(await worker((s) => s.end('{"declined":"another steward build"}\n')), request)).toBe(
      undefined,
    );
    await new Promise((r) => server!.close(r));
    expect(await exchange(await worker((s) => s.destroy()), request)).toBe(undefined);
    await new Promise((r) => server!.close(r));
    expect(await exchange(await worker(() => undefined), request, 200)).toBe(undefined);
    expect(await exchange(join(dir, 'nobody.sock'), request)).toBe(undefined);
  });

  it('gives the go-ahead only while it still waits: a worker that accepts after the CLI gave up starts nothing', async () => {
    let received = '';
    const path = await worker((socket) => {
      socket.on('data', (d: string) => (received += d));
      setTimeout(() => socket.write('{"accepted":true}\n'), 300);
    });
    expect(await exchange(path, request, 100)).toBe(undefined);
    await new Promise((r) => setTimeout(r, 400));
    expect(received).not.toContain('"go"');

    await new Promise((r) => server!.close(r));
    let go = '';
    const prompt = await worker((socket) => {
      socket.on('data', (d: string) => {
        go += d;
        if (go.includes('\n')) socket.end('{"exit":0}\n');
      });
      socket.write('{"accepted":true}\n');
    });
    expect(await exchange(prompt, request)).toBe(0);
    expect(go).toBe('{"go":true}\n');
  });

  it('after the worker accepted, a lost socket ends the CLI with exit 1 and is never run again', async () => {
    const error = vi.spyOn(console, 'error').mockImplementation(() => undefined);
    const path = await worker((socket) => {
      socket.write('{"accepted":true}\n{"out":"provision web1"}\n');
      setTimeout(() => socket.destroy(), 50);
    });
    vi.spyOn(console, 'log').mockImplementation(() => undefined);
    expect(await exchange(path, request)).toBe(1);
    expect(String(error.mock.calls[0]?.[0])).toContain('lost the local worker');
  });
});
