/**
 * Payload encryption without a Temporal server: the AES-256-GCM codec, key rings and key files, key resolution for
 * clients and workers, the codec server's auth and CORS, and the CLI commands around them.
 */
import { chmod, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCodecKeys } from '../../common/codec-keys';
import { writeDevState } from '../../common/dev-state';
import { AesGcmPayloadCodec, ENCODING_ENCRYPTED, isEncrypted, METADATA_KEY_ID } from '../../codec/aes-gcm';
import { CodecKeyError, PayloadDecryptionError } from '../../codec/errors';
import {
  addKeyToFile,
  ensureKeyFile,
  formatKeyFile,
  generateKey,
  keyRingFromEnv,
  KeyRing,
  loadKeyFile,
  parseKeyRing,
} from '../../codec/keys';
import { ensureTokenFile, loadToken, startCodecServer, type CodecServer } from '../../codec/server';
import { ValidationError } from '../../model/validate';
import { steward } from '../support/cli';

const SECRET = 'gateway-token-5f1d9c0a-plaintext';
const keyA = generateKey();
const keyB = generateKey();
const ringA = KeyRing.of([keyA]);
const ringBA = KeyRing.of([keyB, keyA]);
const ringB = KeyRing.of([keyB]);

const toPayloads = (...values: unknown[]): Payload[] => values.map((v) => defaultPayloadConverter.toPayload(v));
const fromPayload = (p: Payload): unknown => defaultPayloadConverter.fromPayload(p);
const text = (p: Payload): string => Buffer.from(p.data ?? []).toString('latin1');
const keyIdOf = (p: Payload): string => Buffer.from(p.metadata?.[METADATA_KEY_ID] ?? []).toString();

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'steward-codec-'));
});

describe('AES-256-GCM payload codec', () => {
  it('round-trips payloads; ciphertext hides the value and its encoding, and differs per payload', async () => {
    const codec = new AesGcmPayloadCodec(ringA);
    const original = toPayloads({ token: SECRET }, { token: SECRET }, null, 'x'.repeat(100_000));
    const encrypted = await codec.encode(original);
    for (const p of encrypted) {
      expect(isEncrypted(p)).toBe(true);
      expect(Object.keys(p.metadata ?? {}).sort()).toEqual(['encoding', METADATA_KEY_ID]);
      expect(Buffer.from(p.metadata!.encoding!).toString()).toBe(ENCODING_ENCRYPTED);
      expect(keyIdOf(p)).toBe(keyA.id);
      expect(text(p)).not.toContain(SECRET);
      expect(text(p)).not.toContain('json/plain');
    }
    expect(Buffer.from(encrypted[0]!.data!).equals(Buffer.from(encrypted[1]!.data!))).toBe(false); // fresh IV each
    const decoded = await codec.decode(encrypted);
    expect(decoded.map(fromPayload)).toEqual([{ token: SECRET }, { token: SECRET }, null, 'x'.repeat(100_000)]);
    expect(decoded.map((p) => Buffer.from(p.metadata!.encoding!).toString())).toEqual(
      original.map((p) => Buffer.from(p.metadata!.encoding!).toString()),
    );
  });

  it('refuses a payload it did not encrypt, naming its encoding; a history reader may show it as it is', async () => {
    const plain = toPayloads({ a: 1 });
    const err = await new AesGcmPayloadCodec(ringA).decode(plain).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadDecryptionError);
    expect((err as Error).message).toMatch(/^refused an unencrypted payload \(encoding "json\/plain"\)/);
    // One plaintext payload among encrypted ones is refused too: nothing of the batch is returned.
    const mixed = [...(await new AesGcmPayloadCodec(ringA).encode(toPayloads('ok'))), ...plain];
    await expect(new AesGcmPayloadCodec(ringA).decode(mixed)).rejects.toThrow(/unencrypted payload/);
    // A forged "encrypted" payload is refused as well: the metadata alone proves nothing.
    const forged = [
      { metadata: { ...plain[0]!.metadata, encoding: Buffer.from('binary/encrypted') }, data: plain[0]!.data },
    ];
    await expect(new AesGcmPayloadCodec(ringA).decode(forged)).rejects.toThrow(PayloadDecryptionError);
    const reader = new AesGcmPayloadCodec(ringA, { readPlaintext: true });
    expect((await reader.decode(plain)).map(fromPayload)).toEqual([{ a: 1 }]);
  });

  it('refuses altered ciphertext, IV, tag or key id, and truncated data', async () => {
    const codec = new AesGcmPayloadCodec(ringBA);
    const [p] = await codec.encode(toPayloads({ token: SECRET }));
    const data = Buffer.from(p!.data!);
    const flip = (i: number): Payload => {
      const d = Buffer.from(data);
      d[i] = d[i]! ^ 0x01;
      return { metadata: p!.metadata!, data: d };
    };
    for (const altered of [
      flip(0), // IV
      flip(20), // ciphertext
      flip(data.length - 1), // tag
      { metadata: p!.metadata!, data: data.subarray(0, 20) },
      { metadata: { ...p!.metadata!, [METADATA_KEY_ID]: Buffer.from(keyA.id) }, data }, // the other key's id
    ]) {
      await expect(codec.decode([altered])).rejects.toThrow(PayloadDecryptionError);
      await expect(codec.decode([altered])).rejects.toThrow(/failed authentication/);
    }
  });

  it('encrypts with the first key and decrypts with any key of the ring', async () => {
    const oldPayloads = await new AesGcmPayloadCodec(ringA).encode(toPayloads('old run'));
    const rotated = new AesGcmPayloadCodec(ringBA);
    const newPayloads = await rotated.encode(toPayloads('new run'));
    expect(keyIdOf(oldPayloads[0]!)).toBe(keyA.id);
    expect(keyIdOf(newPayloads[0]!)).toBe(keyB.id);
    expect((await rotated.decode([...oldPayloads, ...newPayloads])).map(fromPayload)).toEqual(['old run', 'new run']);
  });

  it('names the key id a payload needs when the ring lacks it', async () => {
    const old = await new AesGcmPayloadCodec(ringA).encode(toPayloads('old run'));
    const err = await new AesGcmPayloadCodec(ringB).decode(old).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PayloadDecryptionError);
    expect((err as PayloadDecryptionError).keyId).toBe(keyA.id);
    expect((err as Error).message).toContain(`codec key "${keyA.id}", which is not in the key ring (${keyB.id})`);
  });
});

describe('key rings and key files', () => {
  const line = (k: { id: string; key: Buffer }) => `${k.id}=${k.key.toString('base64')}`;

  it('parses the line format and JSON, current key first', () => {
    const lines = parseKeyRing(`# comment\n\n${line(keyB)}\n  ${line(keyA)}  \n`, 'test');
    expect(lines.ids).toEqual([keyB.id, keyA.id]);
    expect(lines.current.key.equals(keyB.key)).toBe(true);
    const json = parseKeyRing(
      JSON.stringify({ keys: [keyA, keyB].map((k) => ({ id: k.id, key: k.key.toString('base64') })) }),
      'test',
    );
    expect(json.ids).toEqual([keyA.id, keyB.id]);
    expect(parseKeyRing(formatKeyFile(ringBA), 'test').ids).toEqual(ringBA.ids);
  });

  it('reports every malformed entry with its line, and refuses empty rings and repeated ids', () => {
    const err = (() => {
      try {
        parseKeyRing(`${line(keyA)}\nno-equals-sign\nbad id!=${keyA.key.toString('base64')}\nk2=c2hvcnQ=\n`, 'f');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ValidationError);
    const message = (err as Error).message;
    expect(message).toContain('line 2: must be id=base64key');
    expect(message).toMatch(/line 3 id: must be 1–64 letters/);
    expect(message).toMatch(/line 4 key: must be 32 random bytes in base64/);
    expect(message).not.toContain(keyA.key.toString('base64')); // never echoes key material
    expect(() => parseKeyRing('# nothing\n', 'f')).toThrow(/has no key/);
    expect(() => parseKeyRing(`${line(keyA)}\n${line(keyA)}`, 'f')).toThrow(/key id .* twice/);
    expect(() => parseKeyRing('{"keys": []}', 'f')).toThrow(ValidationError);
  });

  it('refuses a key file that group or others can read or write, saying how to fix it', async () => {
    const file = join(dir, 'open.keys');
    await writeFile(file, line(keyA), { mode: 0o600 });
    await expect(loadKeyFile(file)).resolves.toBeInstanceOf(KeyRing);
    for (const mode of [0o644, 0o640, 0o604, 0o620]) {
      await chmod(file, mode);
      const err = await loadKeyFile(file).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(CodecKeyError);
      expect((err as Error).message).toContain(`has mode 0${mode.toString(8)}`);
      expect((err as Error).message).toContain(`chmod 600 ${file}`);
    }
    await expect(loadKeyFile(join(dir, 'missing.keys'))).rejects.toThrow(/does not exist/);
  });

  it('adds keys in front of a file it creates with mode 0600, and ensureKeyFile creates only once', async () => {
    const file = join(dir, 'sub', 'codec.keys');
    const first = await addKeyToFile(file);
    expect(first.created).toBe(true);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const second = await addKeyToFile(file);
    expect(second.created).toBe(false);
    expect((await loadKeyFile(file)).ids).toEqual([second.key.id, first.key.id]);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    await expect(addKeyToFile(file, second.key)).rejects.toThrow(/already has key id/);

    const devFile = join(dir, 'dev', 'codec.keys');
    const made = await Promise.all([ensureKeyFile(devFile), ensureKeyFile(devFile), ensureKeyFile(devFile)]);
    expect(made.filter((m) => m.created)).toHaveLength(1);
    expect(new Set(made.map((m) => m.ring.current.id)).size).toBe(1);
  });

  it('reads keys from STEWARD_CODEC_KEYS or STEWARD_CODEC_KEY_FILE, not both', async () => {
    const file = join(dir, 'env.keys');
    await writeFile(file, formatKeyFile(ringA), { mode: 0o600 });
    expect(await keyRingFromEnv({})).toBeUndefined();
    expect((await keyRingFromEnv({ STEWARD_CODEC_KEY_FILE: file }))?.ids).toEqual([keyA.id]);
    const inline = `${line(keyB)}, ${line(keyA)}`;
    expect((await keyRingFromEnv({ STEWARD_CODEC_KEYS: inline }))?.ids).toEqual([keyB.id, keyA.id]);
    await expect(keyRingFromEnv({ STEWARD_CODEC_KEYS: inline, STEWARD_CODEC_KEY_FILE: file })).rejects.toThrow(
      /not both/,
    );
    await expect(keyRingFromEnv({ STEWARD_CODEC_KEYS: 'k1=short' })).rejects.toThrow(/entry 1 key/);
  });

  it("clients and workers take the environment's keys, else the dev key of the dev server, else refuse", async () => {
    const specDir = await mkdtemp(join(tmpdir(), 'steward-codec-spec-'));
    const spec = join(specDir, 'steward.yaml');
    const address = '127.0.0.1:17233';
    const keyFile = join(dir, 'env.keys');
    expect((await loadCodecKeys({ address, spec }, { STEWARD_CODEC_KEY_FILE: keyFile })).ids).toEqual([keyA.id]);

    const none = await loadCodecKeys({ address, spec }, {}).catch((e: unknown) => e);
    expect(none).toBeInstanceOf(CodecKeyError);
    expect((none as Error).message).toContain(`no payload codec key for ${address}`);
    expect((none as Error).message).toContain('steward codec keygen --file FILE');

    const devKey = await ensureKeyFile(join(specDir, '.steward', 'dev', 'codec.keys'));
    await writeDevState(spec, { temporal: { address }, codec: { keyFile: devKey.file, tokenFile: 'x', url: 'y' } });
    expect((await loadCodecKeys({ address, spec }, {})).ids).toEqual(devKey.ring.ids);
    // The dev key is for the dev server only: another server gets no key by accident.
    await expect(loadCodecKeys({ address: '203.0.113.5:7233', spec }, {})).rejects.toThrow(CodecKeyError);
    // The key file `steward init` makes beside the spec serves any server; the dev key still wins for its own.
    const beside = await ensureKeyFile(join(specDir, 'keys', 'codec.keys'));
    expect((await loadCodecKeys({ address: '203.0.113.5:7233', spec }, {})).ids).toEqual(beside.ring.ids);
    expect((await loadCodecKeys({ address, spec }, {})).ids).toEqual(devKey.ring.ids);
    await chmod(beside.file, 0o644);
    await expect(loadCodecKeys({ address: '203.0.113.5:7233', spec }, {})).rejects.toThrow(/group and others/);
  });
});

describe('codec server', () => {
  const token = 'test-token-0123456789abcdef';
  const ui = 'http://127.0.0.1:8233';
  let server: CodecServer;
  const post = (path: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
  const bearer = { Authorization: `Bearer ${token}` };
  const json = (p: Payload) => ({
    metadata: Object.fromEntries(
      Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
    ),
    data: Buffer.from(p.data ?? []).toString('base64'),
  });

  beforeAll(async () => {
    server = await startCodecServer({ ring: ringBA, token, port: 0 });
  });
  afterAll(() => server?.close());

  it('listens on 127.0.0.1 by default', () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}`);
  });

  it('encodes and decodes proto3-JSON payloads for a caller with the bearer token', async () => {
    const plain = toPayloads({ token: SECRET }).map(json);
    const encoded = await post('/encode', { payloads: plain }, bearer);
    expect(encoded.status).toBe(200);
    const enc = (await encoded.json()) as { payloads: { metadata: Record<string, string>; data: string }[] };
    expect(Buffer.from(enc.payloads[0]!.metadata.encoding!, 'base64').toString()).toBe(ENCODING_ENCRYPTED);
    expect(Buffer.from(enc.payloads[0]!.metadata[METADATA_KEY_ID]!, 'base64').toString()).toBe(keyB.id);
    expect(Buffer.from(enc.payloads[0]!.data, 'base64').toString('latin1')).not.toContain(SECRET);

    // Payloads from an older key decode too, also under a namespace path as `temporal --codec-endpoint` uses it.
    const old = (await new AesGcmPayloadCodec(ringA).encode(toPayloads('old run'))).map(json);
    const decoded = await post('/default/decode', { payloads: [...enc.payloads, ...old] }, bearer);
    expect(decoded.status).toBe(200);
    const dec = (await decoded.json()) as { payloads: { metadata: Record<string, string>; data: string }[] };
    const values = dec.payloads.map((p) =>
      fromPayload({
        metadata: Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
        data: Buffer.from(p.data, 'base64'),
      }),
    );
    expect(values).toEqual([{ token: SECRET }, 'old run']);
  });

  it('answers 401 without a token or with a wrong one', async () => {
    const body = { payloads: [] };
    const attempts: Record<string, string>[] = [
      {},
      { Authorization: 'Bearer wrong-token-0123456789abcdef' },
      { Authorization: `Bearer ${token}x` },
      { Authorization: `Basic ${Buffer.from(`u:${token}`).toString('base64')}` },
      { Cookie: `steward_codec_${server.port}=forged` },
    ];
    for (const headers of attempts) {
      const r = await post('/decode', body, headers);
      expect(r.status).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    expect((await post('/decode', body, bearer)).status).toBe(200);
  });

  it('names the missing key id when a payload cannot be decoded', async () => {
    const other = generateKey();
    const foreign = (await new AesGcmPayloadCodec(KeyRing.of([other])).encode(toPayloads('x'))).map(json);
    const r = await post('/decode', { payloads: foreign }, bearer);
    expect(r.status).toBe(422);
    expect(((await r.json()) as { error: string }).error).toContain(`codec key "${other.id}"`);
  });

  it('answers CORS preflights from the UI origin, with the headers the UI sends', async () => {
    const r = await fetch(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: {
        Origin: ui,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'authorization,content-type,x-namespace',
      },
    });
    expect(r.status).toBe(204);
    expect(r.headers.get('access-control-allow-origin')).toBe(ui);
    expect(r.headers.get('access-control-allow-credentials')).toBe('true');
    expect(r.headers.get('access-control-allow-methods')).toContain('POST');
    const allowed = r.headers.get('access-control-allow-headers')?.toLowerCase().split(/,\s*/);
    expect(allowed).toEqual(expect.arrayContaining(['authorization', 'content-type', 'x-namespace']));
    expect(r.headers.get('vary')).toContain('Origin');

    // The UI can read a 401 too (it needs the CORS headers to tell the user why).
    const denied = await post('/decode', { payloads: [] }, { Origin: ui });
    expect(denied.status).toBe(401);
    expect(denied.headers.get('access-control-allow-origin')).toBe(ui);
    const ok = await post('/decode', { payloads: [] }, { Origin: 'http://localhost:8233', ...bearer });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('access-control-allow-origin')).toBe('http://localhost:8233');
  });

  it('refuses other origins, even with the right token', async () => {
    const evil = 'http://evil.example';
    const pre = await fetch(`${server.url}/decode`, {
      method: 'OPTIONS',
      headers: { Origin: evil, 'Access-Control-Request-Method': 'POST' },
    });
    expect(pre.status).toBe(403);
    expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    const r = await post('/decode', { payloads: [] }, { Origin: evil, ...bearer });
    expect(r.status).toBe(403);
    expect(r.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('signs a browser in at /login with an HttpOnly SameSite=Strict cookie, only with the right token', async () => {
    const page = await fetch(`${server.url}/login`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<form method="post" action="/login">');
    const login = (t: string) =>
      fetch(`${server.url}/login`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: server.url },
        body: new URLSearchParams({ token: t }).toString(),
        redirect: 'manual',
      });
    const wrong = await login('wrong-token-0123456789abcdef');
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const right = await login(token);
    expect(right.status).toBe(200);
    const cookie = right.headers.get('set-cookie') ?? '';
    expect(cookie).toMatch(new RegExp(`^steward_codec_${server.port}=[\\w-]+; HttpOnly; SameSite=Strict; Path=/`));
    expect(cookie).not.toContain(token);
    const session = cookie.split(';')[0]!;
    const r = await post('/decode', { payloads: [] }, { Origin: ui, Cookie: session });
    expect(r.status).toBe(200);
    // A login form posted from another site is refused.
    const csrf = await fetch(`${server.url}/login`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: 'http://evil.example' },
      body: new URLSearchParams({ token }).toString(),
    });
    expect(csrf.status).toBe(403);
  });

  it('keeps sessions in the server: they expire after 12 hours, end on sign-out or revocation, and sign-ins are rate-limited', async () => {
    let clock = Date.parse('2026-12-05T08:00:00Z');
    const own = await startCodecServer({ ring: ringBA, token, port: 0, now: () => clock });
    try {
      const form = (t: string) => ({
        method: 'POST',
        headers: { 'Content-Type': 'application/x-www-form-urlencoded', Origin: own.url },
        body: new URLSearchParams({ token: t }).toString(),
      });
      const signIn = async () => {
        const r = await fetch(`${own.url}/login`, form(token));
        expect(r.status).toBe(200);
        return (r.headers.get('set-cookie') ?? '').split(';')[0]!;
      };
      const decode = (headers: Record<string, string>) =>
        fetch(`${own.url}/decode`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Origin: ui, ...headers },
          body: '{"payloads":[]}',
        }).then((r) => r.status);

      // Each sign-in is its own random session; one expires 12 hours after it began, whatever the browser keeps.
      const first = await signIn();
      const second = await signIn();
      expect(first).not.toBe(second);
      clock += 12 * 3600_000 - 1000;
      expect(await decode({ Cookie: first })).toBe(200);
      clock += 2000;
      expect(await decode({ Cookie: first })).toBe(401);

      // Sign-out ends that session only; revocation (bearer token only) ends every one.
      const a = await signIn();
      const b = await signIn();
      const out = await fetch(`${own.url}/logout`, { method: 'POST', headers: { Cookie: a, Origin: own.url } });
      expect(out.status).toBe(200);
      expect(out.headers.get('set-cookie')).toMatch(/Max-Age=0/);
      expect(await decode({ Cookie: a })).toBe(401);
      expect(await decode({ Cookie: b })).toBe(200);
      expect((await fetch(`${own.url}/sessions/revoke`, { method: 'POST', headers: { Cookie: b } })).status).toBe(401);
      const revoke = await fetch(`${own.url}/sessions/revoke`, { method: 'POST', headers: bearer });
      expect(revoke.status).toBe(200);
      expect(await revoke.json()).toEqual({ revoked: 1 });
      expect(await decode({ Cookie: b })).toBe(401);
      expect(await decode(bearer)).toBe(200);

      // Five wrong tokens in a minute, then even the right one waits until the minute has passed.
      for (let i = 0; i < 5; i++)
        expect((await fetch(`${own.url}/login`, form(`wrong-${i}-0123456789abcdef`))).status).toBe(401);
      const limited = await fetch(`${own.url}/login`, form(token));
      expect(limited.status).toBe(429);
      expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(limited.headers.get('set-cookie')).toBeNull();
      clock += 61_000;
      await signIn();
    } finally {
      await own.close();
    }
  });

  it('answers malformed requests with 4xx', async () => {
    expect((await fetch(`${server.url}/decode`, { headers: bearer })).status).toBe(405);
    expect((await post('/nope', { payloads: [] }, bearer)).status).toBe(404);
    expect((await post('/decode', '{not json', bearer)).status).toBe(400);
    expect((await post('/decode', { payloads: [{ data: 42 }] }, bearer)).status).toBe(400);
    const plain = await fetch(`${server.url}/decode`, {
      method: 'POST',
      headers: { 'Content-Type': 'text/plain', ...bearer },
      body: '{"payloads":[]}',
    });
    expect(plain.status).toBe(415);
    expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
  });

  it('takes its token from a private file or the environment, and refuses short tokens', async () => {
    const file = join(dir, 'token');
    const made = await ensureTokenFile(file);
    expect(made.length).toBeGreaterThanOrEqual(32);
    expect(await ensureTokenFile(file)).toBe(made);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await loadToken(undefined, { STEWARD_CODEC_SERVER_TOKEN_FILE: file })).toBe(made);
    expect(await loadToken(undefined, { STEWARD_CODEC_SERVER_TOKEN: 'from-env-0123456789' })).toBe(
      'from-env-0123456789',
    );
    await chmod(file, 0o644);
    await expect(loadToken(file, {})).rejects.toThrow(/chmod 600/);
    await expect(loadToken(undefined, {})).rejects.toThrow(/needs a token/);
    await expect(startCodecServer({ ring: ringA, token: 'short', port: 0 })).rejects.toThrow(/at least 16/);
  });
});

describe('CLI', () => {
  const noKeys = { STEWARD_CODEC_KEYS: '', STEWARD_CODEC_KEY_FILE: '' };

  it('codec keygen creates a 0600 key file, then adds keys in front; prints ids, never keys', async () => {
    const file = join(dir, 'cli', 'codec.keys');
    const first = await steward(['--json', 'codec', 'keygen', '--file', file], noKeys);
    expect(first.code).toBe(0);
    const a = JSON.parse(first.stdout) as { keyId: string; keys: string[]; created: boolean };
    expect(a.created).toBe(true);
    const second = await steward(['codec', 'keygen'], { ...noKeys, STEWARD_CODEC_KEY_FILE: file });
    expect(second.code).toBe(0);
    const ring = await loadKeyFile(file);
    expect(ring.ids).toHaveLength(2);
    expect(ring.ids[1]).toBe(a.keyId);
    expect(second.stdout).toContain(`${ring.ids[0]} encrypts; ${ring.ids.join(', ')} decrypt`);
    for (const k of ring.keys) expect(first.stdout + second.stdout).not.toContain(k.key.toString('base64'));

    await chmod(file, 0o640);
    const refused = await steward(['codec', 'keygen', '--file', file], noKeys);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('group and others must have no access');
    expect((await readFile(file, 'utf8')).split('\n').filter((l) => l.includes('='))).toHaveLength(2);
  });

  it('a worker and a client refuse to start without codec keys', async () => {
    // A spec in an empty directory: no key file beside it either.
    const spec = join(await mkdtemp(join(tmpdir(), 'steward-nokeys-')), 'steward.yaml');
    const worker = await steward(['--spec', spec, '--address', '127.0.0.1:1', 'worker'], noKeys);
    expect(worker.code).toBe(1);
    expect(worker.stderr).toContain('no payload codec key for 127.0.0.1:1');
    const status = await steward(['--spec', spec, '--address', '127.0.0.1:1', 'status'], noKeys);
    expect(status.code).toBe(1);
    expect(status.stderr).toContain('no payload codec key');
  });
});
