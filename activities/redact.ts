/**
 * Redaction: no secret value leaves an activity in an error message, a stack trace or a failure's details, even when
 * a host command's stderr echoed it. The worker's redactor knows two kinds of secrets:
 *
 * - values the worker itself handled (external secrets read from their source or from the version store): found as
 *   they are and in every encoding steward uses — base64 (standard and URL-safe, with or without padding), hex
 *   (either case), JSON-escaped and URL-encoded;
 * - values generated on a host that never reached the worker, known only by their SHA-256 and shape (length and
 *   alphabet): any run of characters of that shape in a text — or its base64 or hex form — is hashed and compared;
 *   with the hashes of its first and last {@link EDGE_LENGTH} characters ({@link SecretEdges}), a value cut short
 *   where a line begins or ends is found too.
 *
 * Every activity is wrapped ({@link redactingActivities}), so Temporal records, and the worker logs, only scrubbed
 * failures. Uses node:crypto: workers only, never workflow code.
 */
import { createHash } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';

/** What a generated value looks like, so a text can be searched for it by hash. */
export interface SecretShape {
  readonly length: number;
  readonly alphabet: 'base62' | 'hex';
}

/**
 * SHA-256 (hex) of a generated value's first and last {@link EDGE_LENGTH} characters, computed on its host: what lets
 * a redactor that never saw the value find it cut short.
 */
export interface SecretEdges {
  readonly head: string;
  readonly tail: string;
}

/** Values shorter than this are not registered: scrubbing them would mangle ordinary text. */
const MIN_VALUE_LENGTH = 8;
/** Remembered values and fingerprints per redactor; the oldest go first. */
const MAX_ENTRIES = 4096;
/** Fingerprint search looks at this much text at most (error messages and stack traces are far shorter). */
const MAX_SCAN = 64 * 1024;
/**
 * The shortest piece of a remembered value scrubbed where a line or the text was cut (`cut -c1-300`, a message
 * sliced to its last 300 characters): a value's head at the end of a line, or its tail at the start of one.
 */
const MIN_FRAGMENT = 12;
/** How many characters of a generated value's head and tail its {@link SecretEdges} hash. */
export const EDGE_LENGTH = MIN_FRAGMENT;
const HEX64 = /^[0-9a-f]{64}$/;

const sha256 = (data: string | Buffer) => createHash('sha256').update(data).digest('hex');

/** The encodings of a value steward might print: itself, JSON-escaped, URL-encoded, base64 and hex forms. */
export function encodings(value: string): string[] {
  const bytes = Buffer.from(value, 'utf8');
  const b64 = bytes.toString('base64');
  const hex = bytes.toString('hex');
  const forms = [
    value,
    JSON.stringify(value).slice(1, -1),
    encodeURIComponent(value),
    b64,
    b64.replace(/=+$/, ''),
    bytes.toString('base64url'),
    hex,
    hex.toUpperCase(),
  ];
  return [...new Set(forms)];
}

export class Redactor {
  /** encoded form → label */
  private readonly forms = new Map<string, string>();
  /** sha256 → label and shape */
  private readonly fingerprints = new Map<string, { label: string; shape: SecretShape }>();
  /** sha256 of a generated value's first / last {@link EDGE_LENGTH} characters → label and shape */
  private readonly heads = new Map<string, { label: string; shape: SecretShape }>();
  private readonly tails = new Map<string, { label: string; shape: SecretShape }>();

  /** Remembers a value the worker handled, under a label such as the secret's name. */
  remember(label: string, value: string): void {
    if (value.length < MIN_VALUE_LENGTH) return;
    for (const form of encodings(value)) bounded(this.forms, form, label);
  }

  /**
   * Remembers a value known only by its SHA-256 (hex) and its shape: one generated on a host. With its edges, pieces
   * of it cut where a line begins or ends are found as well.
   */
  rememberFingerprint(label: string, sha256Hex: string, shape: SecretShape, edges?: SecretEdges): void {
    if (!HEX64.test(sha256Hex) || shape.length < MIN_VALUE_LENGTH) return;
    bounded(this.fingerprints, sha256Hex, { label, shape });
    if (edges && shape.length > EDGE_LENGTH && HEX64.test(edges.head) && HEX64.test(edges.tail)) {
      bounded(this.heads, edges.head, { label, shape });
      bounded(this.tails, edges.tail, { label, shape });
    }
  }

  /** `text` with every known secret, in any of its encodings, replaced by `[redacted:<label>]`. */
  redact(text: string): string {
    let out = text;
    if (this.forms.size > 0) {
      const forms = [...this.forms.keys()].filter((f) => out.includes(f)).sort((a, b) => b.length - a.length);
      for (const form of forms) out = out.split(form).join(marker(this.forms.get(form)!));
      out = this.redactFragments(out);
    }
    if (this.fingerprints.size > 0) out = this.redactByFingerprint(out);
    return this.heads.size > 0 ? this.redactEdges(out) : out;
  }

  /** Whether `text` holds a known secret. */
  holdsSecret(text: string): boolean {
    return this.redact(text) !== text;
  }

  /** A remembered value cut short where a line (or the text) begins or ends: its head or tail, 12+ characters. */
  private redactFragments(text: string): string {
    if (text.length > MAX_SCAN) return this.redactFragments(text.slice(0, MAX_SCAN)) + text.slice(MAX_SCAN);
    const forms = [...this.forms].filter(([f]) => f.length > MIN_FRAGMENT);
    return text
      .split('\n')
      .map((line) => {
        let out = line;
        for (const [form, label] of forms) {
          // A head: the line's rest, from an occurrence of the value's first characters, begins the value.
          const head = form.slice(0, MIN_FRAGMENT);
          for (let at = out.indexOf(head); at >= 0; at = out.indexOf(head, at + 1)) {
            if (form.startsWith(out.slice(at))) {
              out = `${out.slice(0, at)}${marker(label)}`;
              break;
            }
          }
          // A tail: the line's start, up to an occurrence of the value's last characters, ends the value.
          const tail = form.slice(-MIN_FRAGMENT);
          const end = out.indexOf(tail);
          if (end >= 0 && form.endsWith(out.slice(0, end + MIN_FRAGMENT))) {
            out = `${marker(label)}${out.slice(end + MIN_FRAGMENT)}`;
          }
        }
        return out;
      })
      .join('\n');
  }

  /**
   * A generated value cut short, known by its edges: a run at a line's end whose first {@link EDGE_LENGTH}
   * characters hash to a known head (plain, hex or base64), or a run at a line's start whose last ones hash to a
   * known tail (plain or hex). A trailing `...` or `…` a truncation left is taken along.
   */
  private redactEdges(text: string): string {
    if (text.length > MAX_SCAN) return this.redactEdges(text.slice(0, MAX_SCAN)) + text.slice(MAX_SCAN);
    const longest = Math.max(...[...this.heads.values()].map((f) => f.shape.length));
    const forms: { run: RegExp; width: number; decode: (s: string) => Buffer | string; factor: number }[] = [
      { run: /[A-Za-z0-9]+/, width: EDGE_LENGTH, decode: (s) => s, factor: 1 },
      { run: /[0-9A-Fa-f]+/, width: 2 * EDGE_LENGTH, decode: (s) => Buffer.from(s, 'hex'), factor: 2 },
    ];
    const base64 = {
      run: /[A-Za-z0-9+/_-]+=*/,
      width: (4 * EDGE_LENGTH) / 3,
      decode: (s: string) => Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64'),
      factor: 4 / 3,
    };
    const cutHead = (line: string): string => {
      const [, body = '', cut = ''] = /^([\s\S]*?)(\.\.\.|…)?$/.exec(line) ?? [];
      for (const f of [...forms, base64]) {
        const run = new RegExp(`${f.run.source}$`).exec(body)?.[0] ?? '';
        const from = Math.max(0, run.length - Math.ceil(longest * f.factor));
        for (let i = from; i + f.width <= run.length; i++) {
          const hit = this.heads.get(sha256(f.decode(run.slice(i, i + f.width))));
          if (hit && run.length - i <= Math.ceil(hit.shape.length * f.factor) + 2) {
            return `${body.slice(0, body.length - run.length + i)}${marker(hit.label)}${cut}`;
          }
        }
      }
      return line;
    };
    const cutTail = (line: string): string => {
      for (const f of forms) {
        const run = new RegExp(`^${f.run.source}`).exec(line)?.[0] ?? '';
        for (let j = Math.min(run.length, Math.ceil(longest * f.factor)); j >= f.width; j--) {
          const hit = this.tails.get(sha256(f.decode(run.slice(j - f.width, j))));
          if (hit && j <= hit.shape.length * f.factor) return `${marker(hit.label)}${line.slice(j)}`;
        }
      }
      return line;
    };
    return text
      .split('\n')
      .map((line) => cutTail(cutHead(line)))
      .join('\n');
  }

  private redactByFingerprint(text: string): string {
    if (text.length > MAX_SCAN) return this.redactByFingerprint(text.slice(0, MAX_SCAN)) + text.slice(MAX_SCAN);
    const lengths = new Set([...this.fingerprints.values()].map((f) => f.shape.length));
    const hits: { start: number; end: number; label: string; padded: boolean }[] = [];
    const scan = (
      run: RegExp,
      width: (n: number) => number[],
      decode: (s: string) => Buffer | string,
      padded = false,
    ) => {
      for (const m of text.matchAll(run)) {
        for (const n of lengths) {
          for (const w of width(n)) {
            for (let i = 0; i + w <= m[0].length; i++) {
              const candidate = m[0].slice(i, i + w);
              let decoded: Buffer | string;
              try {
                decoded = decode(candidate);
              } catch {
                continue;
              }
              const f = this.fingerprints.get(sha256(decoded));
              if (f && f.shape.length === n) {
                hits.push({ start: m.index + i, end: m.index + i + w, label: f.label, padded });
              }
            }
          }
        }
      }
    };
    scan(
      /[A-Za-z0-9]+/g,
      (n) => [n],
      (s) => s,
    );
    scan(
      /[0-9A-Fa-f]+/g,
      (n) => [2 * n],
      (s) => Buffer.from(s, 'hex'),
    );
    scan(
      /[A-Za-z0-9+/_-]+=*/g,
      (n) => [...new Set([Math.ceil(n / 3) * 4, Math.ceil((4 * n) / 3)])],
      (s) => Buffer.from(s.replace(/-/g, '+').replace(/_/g, '/'), 'base64'),
      true,
    );
    if (hits.length === 0) return text;
    hits.sort((a, b) => a.start - b.start || b.end - a.end);
    let out = '';
    let at = 0;
    for (const h of hits) {
      if (h.start < at) continue;
      out += text.slice(at, h.start) + marker(h.label);
      at = h.end;
      // A base64 form's padding goes with it.
      while (h.padded && text[at] === '=') at++;
    }
    return out + text.slice(at);
  }
}

function marker(label: string): string {
  return `[redacted:${label}]`;
}

function bounded<V>(map: Map<string, V>, key: string, value: V): void {
  map.delete(key);
  map.set(key, value);
  if (map.size > MAX_ENTRIES) map.delete(map.keys().next().value!);
}

/** The worker's redactor: activities remember what they handle; every activity's failures pass through it. */
export const secretRedactor = new Redactor();

/** Strings inside `value` (objects, arrays) redacted; anything else unchanged. */
function redactDeep(value: unknown, r: Redactor): unknown {
  if (typeof value === 'string') return r.redact(value);
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, r));
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v, r)]));
  }
  return value;
}

/**
 * A result with every string redacted: for results built from a host's text (verification controls), where a value
 * the worker knows may have been echoed.
 */
export function redactedResult<T>(value: T, r: Redactor = secretRedactor): T {
  return redactDeep(value, r) as T;
}

function texts(err: unknown, depth = 0): string[] {
  if (depth > 8) return [];
  if (!(err instanceof Error)) return [String(err)];
  const details = err instanceof ApplicationFailure ? JSON.stringify(err.details ?? []) : '';
  return [err.message, err.stack ?? '', details, ...(err.cause ? texts(err.cause, depth + 1) : [])];
}

function scrub(err: unknown, r: Redactor, depth = 0): Error {
  if (!(err instanceof Error)) return new Error(r.redact(String(err)));
  const cause = err.cause && depth < 8 ? scrub(err.cause, r, depth + 1) : undefined;
  const message = r.redact(err.message);
  let out: Error;
  if (err instanceof ApplicationFailure) {
    out = ApplicationFailure.create({
      message,
      type: err.type ?? err.name,
      nonRetryable: err.nonRetryable === true,
      details: (redactDeep(err.details ?? [], r) as unknown[]) ?? [],
      ...(err.nextRetryDelay !== undefined ? { nextRetryDelay: err.nextRetryDelay } : {}),
      ...(cause ? { cause } : {}),
    });
  } else {
    out = new Error(message, cause ? { cause } : undefined);
    out.name = err.name;
  }
  out.stack = r.redact(err.stack ?? `${err.name}: ${message}`);
  return out;
}

/**
 * `err` with every known secret scrubbed from its message, stack, details and causes. Returns `err` itself when it
 * holds none, so failures without secrets keep their exact class (cancellations, timeouts).
 */
export function redactError(err: unknown, r: Redactor = secretRedactor): unknown {
  return texts(err).some((t) => r.holdsSecret(t)) ? scrub(err, r) : err;
}

/** Wraps every activity so that what it throws passes through {@link redactError} first. */
export function redactingActivities<T extends Record<string, (...args: never[]) => Promise<unknown>>>(
  activities: T,
  r: Redactor = secretRedactor,
): T {
  return Object.fromEntries(
    Object.entries(activities).map(([name, fn]) => [
      name,
      async (...args: never[]) => {
        try {
          return await fn(...args);
        } catch (err) {
          throw redactError(err, r);
        }
      },
    ]),
  ) as T;
}
