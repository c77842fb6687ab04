/**
 * The codec server: Temporal's remote codec endpoint, so the Web UI and the `temporal` CLI can show encrypted
 * payloads decoded. `POST /encode` and `POST /decode` (also under a namespace segment, `/<namespace>/decode`) take
 * and return `{ "payloads": [...] }` in proto3 JSON (metadata values and data in base64).
 *
 * Access: a bearer token (`Authorization: Bearer <token>`, as `temporal --codec-auth` sends it), or a session cookie
 * a browser gets by signing in once at `/login` with the token. The Temporal UI cannot send a static token (it passes
 * only its own OIDC access token, and only to https endpoints), but it sends cookies when "Include cross-origin
 * credentials" is on in its codec settings. The cookie is SameSite=Strict and HttpOnly; CORS answers only the
 * configured UI origins, and a request from any other origin is refused.
 *
 * Sessions live in the server: a random id per sign-in, valid for 12 hours from it, ended by `POST /logout` (that
 * session) or `POST /sessions/revoke` with the bearer token (every session), and by a restart. Sign-ins are limited
 * per client address: after 5 wrong tokens within a minute, `/login` answers 429 until the minute has passed.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import type { Payload } from '@temporalio/common';
import { z } from 'zod';
import { validate, ValidationError } from '../model/validate';
import { AesGcmPayloadCodec } from './aes-gcm';
import { CodecKeyError, PayloadDecryptionError } from './errors';
import { assertPrivateFile, writePrivateFile, type KeyRing } from './keys';

export const DEFAULT_CODEC_HOST = '127.0.0.1';
export const DEFAULT_CODEC_PORT = 8234;
/** The local dev server's Web UI. */
export const DEFAULT_UI_ORIGINS: readonly string[] = ['http://127.0.0.1:8233', 'http://localhost:8233'];
export const TOKEN_ENV = 'STEWARD_CODEC_SERVER_TOKEN';
export const TOKEN_FILE_ENV = 'STEWARD_CODEC_SERVER_TOKEN_FILE';

const MIN_TOKEN_LENGTH = 16;
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const SESSION_MAX_AGE_S = 12 * 60 * 60;
/** Sessions kept at once; the oldest goes when a sign-in would exceed it. */
const MAX_SESSIONS = 256;
/** Wrong tokens a client address may send to `/login` per {@link LOGIN_WINDOW_MS}. */
const LOGIN_FAILURES = 5;
const LOGIN_WINDOW_MS = 60_000;
const PREFLIGHT_MAX_AGE_S = 600;
const ALLOWED_HEADERS = 'Authorization, Authorization-Extras, Content-Type, X-Namespace';
const CODEC_PATH = /^(?:\/[^/]+)?\/(encode|decode)$/;

/** One payload in proto3 JSON: bytes as base64. */
const jsonPayloadSchema = z
  .object({
    metadata: z.record(z.string(), z.string()).nullish(),
    data: z.string().nullish(),
  })
  .loose();
const codecRequestSchema = z.object({ payloads: z.array(jsonPayloadSchema) }).loose();
type JsonPayload = z.infer<typeof jsonPayloadSchema>;

export interface CodecServerOptions {
  readonly ring: KeyRing;
  /** The bearer token; at least 16 characters. */
  readonly token: string;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default {@link DEFAULT_CODEC_PORT}; 0 picks a free port. */
  readonly port?: number;
  /** Browser origins allowed to call it (the UI's); default {@link DEFAULT_UI_ORIGINS}. */
  readonly origins?: readonly string[];
  /** One line per request (method, path, status; never payloads or tokens). */
  readonly log?: (line: string) => void;
  /** The clock sessions and the sign-in limit run on; default `Date.now`. */
  readonly now?: () => number;
}

export interface CodecServer {
  /** `http://host:port`, the UI's codec endpoint. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Starts the codec server. Resolves once it listens.
 * @throws CodecKeyError for a token shorter than 16 characters; the listen error when the port is taken.
 */
export async function startCodecServer(opts: CodecServerOptions): Promise<CodecServer> {
  if (opts.token.length < MIN_TOKEN_LENGTH) {
    throw new CodecKeyError(`the codec server token must be at least ${MIN_TOKEN_LENGTH} characters`);
  }
  const host = opts.host ?? DEFAULT_CODEC_HOST;
  // The UI shows histories: a plaintext payload in one (a run some client started without the key) is shown as it is.
  const codec = new AesGcmPayloadCodec(opts.ring, { readPlaintext: true });
  const origins = new Set((opts.origins ?? DEFAULT_UI_ORIGINS).map((o) => o.replace(/\/$/, '')));
  const log = opts.log ?? (() => undefined);
  const now = opts.now ?? Date.now;
  /** Session id (random) → when it expires. Ids are compared as map keys of their SHA-256, never stored raw. */
  const sessions = new Map<string, number>();
  /** Client address → times of its recent wrong tokens at `/login`. */
  const failures = new Map<string, number[]>();
  const digest = (s: string) => createHash('sha256').update(s).digest('base64url');
  // Cookies are per host, not per port: one name per codec server port keeps two of them on one host apart.
  const cookieName = (req: IncomingMessage) => `steward_codec_${req.socket.localPort}`;
  const sessionOf = (req: IncomingMessage): string | undefined => {
    const id = cookies(req.headers.cookie)[cookieName(req)];
    if (id === undefined) return undefined;
    const key = digest(id);
    const expires = sessions.get(key);
    if (expires === undefined) return undefined;
    if (expires <= now()) {
      sessions.delete(key);
      return undefined;
    }
    return key;
  };
  const recentFailures = (address: string): number[] => {
    const recent = (failures.get(address) ?? []).filter((t) => t > now() - LOGIN_WINDOW_MS);
    if (recent.length > 0) failures.set(address, recent);
    else failures.delete(address);
    return recent;
  };

  const server = createServer((req, res) => {
    handle(req, res).then(
      (status) => log(`${req.method} ${pathOf(req)} ${status}`),
      (err: unknown) => {
        log(`${req.method} ${pathOf(req)} 500 ${err instanceof Error ? err.message : String(err)}`);
        if (!res.headersSent) send(res, 500, { error: 'internal error' });
        else res.destroy();
      },
    );
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<number> {
    const path = pathOf(req);
    const origin = req.headers.origin;
    const ownOrigin = `http://${req.headers.host ?? ''}`;
    const fromUi = origin !== undefined && origins.has(origin);
    if (origin !== undefined && !fromUi && !((path === '/login' || path === '/logout') && origin === ownOrigin)) {
      return send(res, 403, { error: `origin ${origin} is not allowed` });
    }
    if (fromUi) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
    }
    res.setHeader('Vary', 'Origin');
    if (req.method === 'OPTIONS') {
      if (!fromUi) return send(res, 403, { error: 'preflight without an allowed Origin' });
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', ALLOWED_HEADERS);
      res.setHeader('Access-Control-Max-Age', String(PREFLIGHT_MAX_AGE_S));
      res.writeHead(204).end();
      return 204;
    }

    if (path === '/healthz') return req.method === 'GET' ? text(res, 200, 'ok\n') : notAllowed(res, 'GET');
    if (path === '/login') {
      if (req.method === 'GET') return html(res, 200, loginPage());
      if (req.method !== 'POST') return notAllowed(res, 'GET, POST');
      const address = req.socket.remoteAddress ?? 'unknown';
      const recent = recentFailures(address);
      if (recent.length >= LOGIN_FAILURES) {
        const wait = Math.max(1, Math.ceil((recent[0]! + LOGIN_WINDOW_MS - now()) / 1000));
        res.setHeader('Retry-After', String(wait));
        return html(res, 429, loginPage(`Too many wrong tokens; try again in ${wait} s.`));
      }
      const form = new URLSearchParams((await readBody(req, 64 * 1024)).toString('utf8'));
      if (!safeEqual(form.get('token') ?? '', opts.token)) {
        failures.set(address, [...recent, now()]);
        return html(res, 401, loginPage('That token is wrong.'));
      }
      const id = randomBytes(32).toString('base64url');
      for (const [key, expires] of sessions) if (expires <= now()) sessions.delete(key);
      while (sessions.size >= MAX_SESSIONS) sessions.delete(sessions.keys().next().value!);
      sessions.set(digest(id), now() + SESSION_MAX_AGE_S * 1000);
      res.setHeader(
        'Set-Cookie',
        `${cookieName(req)}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_MAX_AGE_S}`,
      );
      return html(res, 200, signedInPage());
    }
    if (path === '/logout') {
      if (req.method !== 'POST') return notAllowed(res, 'POST');
      const key = sessionOf(req);
      if (key) sessions.delete(key);
      res.setHeader('Set-Cookie', `${cookieName(req)}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`);
      return send(res, 200, { signedOut: key !== undefined });
    }
    if (path === '/sessions/revoke') {
      if (req.method !== 'POST') return notAllowed(res, 'POST');
      if (!bearer(req)) {
        res.setHeader('WWW-Authenticate', 'Bearer realm="steward codec server"');
        return send(res, 401, { error: 'missing or wrong bearer token' });
      }
      const revoked = sessions.size;
      sessions.clear();
      return send(res, 200, { revoked });
    }

    const route = CODEC_PATH.exec(path);
    if (!route) return send(res, 404, { error: `no such endpoint: ${path}` });
    if (req.method !== 'POST') return notAllowed(res, 'POST, OPTIONS');
    if (!authorized(req)) {
      res.setHeader('WWW-Authenticate', 'Bearer realm="steward codec server"');
      return send(res, 401, { error: 'missing or wrong bearer token' });
    }
    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      return send(res, 415, { error: 'Content-Type must be application/json' });
    }
    let body: z.infer<typeof codecRequestSchema>;
    try {
      const raw = await readBody(req, MAX_BODY_BYTES);
      body = validate(codecRequestSchema, JSON.parse(raw.toString('utf8')), 'codec request');
    } catch (err) {
      if (err instanceof BodyTooLargeError) return send(res, 413, { error: err.message });
      if (err instanceof ValidationError || err instanceof SyntaxError) return send(res, 400, { error: err.message });
      throw err;
    }
    const payloads = body.payloads.map(fromJson);
    try {
      const out = route[1] === 'encode' ? await codec.encode(payloads) : await codec.decode(payloads);
      return send(res, 200, { payloads: out.map(toJson) });
    } catch (err) {
      if (err instanceof PayloadDecryptionError) return send(res, 422, { error: err.message });
      throw err;
    }
  }

  function bearer(req: IncomingMessage): boolean {
    const given = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    return given !== undefined && safeEqual(given, opts.token);
  }

  function authorized(req: IncomingMessage): boolean {
    return bearer(req) || sessionOf(req) !== undefined;
  }

  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? DEFAULT_CODEC_PORT, host, () => {
      server.off('error', fail);
      done();
    });
  });
  const port = (server.address() as { port: number }).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    close: () =>
      new Promise<void>((done, fail) => {
        server.close((err) => (err ? fail(err) : done()));
        server.closeAllConnections();
      }),
  };
}

/**
 * The token for the codec server: `STEWARD_CODEC_SERVER_TOKEN`, or the file `file` / `STEWARD_CODEC_SERVER_TOKEN_FILE`
 * (which must give group and others no access). Read-only.
 * @throws CodecKeyError when there is none, or as {@link assertPrivateFile}.
 */
export async function loadToken(file?: string, env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const path = file ?? env[TOKEN_FILE_ENV];
  if (path) {
    const abs = resolve(path);
    await assertPrivateFile(abs, 'codec server token file');
    const token = (await readFile(abs, 'utf8')).trim();
    if (!token) throw new CodecKeyError(`codec server token file ${abs} is empty`, abs);
    return token;
  }
  const token = env[TOKEN_ENV]?.trim();
  if (token) return token;
  throw new CodecKeyError(`the codec server needs a token: --token-file FILE, ${TOKEN_FILE_ENV} or ${TOKEN_ENV}`);
}

/** Makes sure a token file exists (a new random token, mode 0600, when missing) and returns the token. */
export async function ensureTokenFile(path: string): Promise<string> {
  const file = resolve(path);
  try {
    await writePrivateFile(file, `${randomBytes(32).toString('base64url')}\n`, true);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return loadToken(file);
}

function fromJson(p: JsonPayload): Payload {
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) metadata[k] = Buffer.from(v, 'base64');
  return { metadata, data: Buffer.from(p.data ?? '', 'base64') };
}

function toJson(p: Payload): { metadata: Record<string, string>; data: string } {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) if (v) metadata[k] = Buffer.from(v).toString('base64');
  return { metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') };
}

/** Constant-time comparison of two secrets of any length. */
function safeEqual(a: string, b: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s).digest();
  return timingSafeEqual(digest(a), digest(b));
}

function cookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) out[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return out;
}

function pathOf(req: IncomingMessage): string {
  return new URL(req.url ?? '/', 'http://codec').pathname;
}

class BodyTooLargeError extends Error {
  override readonly name = 'BodyTooLargeError';
}

async function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw new BodyTooLargeError(`request body is larger than ${limit} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function send(res: ServerResponse, status: number, body: unknown): number {
  res.writeHead(status, { 'Content-Type': 'application/json', 'Cache-Control': 'no-store' });
  res.end(JSON.stringify(body));
  return status;
}

function text(res: ServerResponse, status: number, body: string): number {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' }).end(body);
  return status;
}

function html(res: ServerResponse, status: number, body: string): number {
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Cache-Control': 'no-store',
    'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
    'X-Frame-Options': 'DENY',
  });
  res.end(body);
  return status;
}

function notAllowed(res: ServerResponse, allow: string): number {
  res.setHeader('Allow', allow);
  return send(res, 405, { error: `method not allowed; use ${allow}` });
}

const PAGE_STYLE = 'body{font:16px system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem}';

function loginPage(problem?: string): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>steward codec server</title>
<style>${PAGE_STYLE}</style></head><body><h1>steward codec server</h1>
${problem ? `<p role="alert"><strong>${problem}</strong></p>` : ''}
<p>Sign this browser in to decode payloads in the Temporal Web UI.</p>
<form method="post" action="/login"><label>Token <input type="password" name="token" autocomplete="off" required></label>
<button type="submit">Sign in</button></form></body></html>`;
}

function signedInPage(): string {
  return `<!doctype html><html><head><meta charset="utf-8"><title>steward codec server</title>
<style>${PAGE_STYLE}</style></head><body><h1>Signed in</h1>
<p>This browser may now decode payloads for 12 hours. In the Temporal Web UI, open the codec server settings, use
this endpoint with <em>Include cross-origin credentials</em> on, and open the UI at the same host name as this
server.</p><form method="post" action="/logout"><button type="submit">Sign out</button></form></body></html>`;
}
