/**
 * The tar format as far as image transfer needs it: a streaming reader for `docker save` archives (ustar, PAX and
 * GNU long names, both the legacy and the OCI layout) and a writer for the few small entries steward builds itself.
 * Pure: no file system, no host.
 */

const BLOCK = 512;
/** Metadata entries (PAX headers, GNU long names) larger than this are not ones `docker save` writes. */
const META_LIMIT = 1 << 20;

/** The archive is not a tar stream steward can read: truncated, a bad checksum, an unknown size encoding. */
export class TarFormatError extends Error {
  override readonly name = 'TarFormatError';
}

export interface TarEntry {
  /** Path inside the archive, without a leading `./`. */
  readonly name: string;
  readonly type: 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';
  readonly size: number;
  /** Target of a symlink or hardlink. */
  readonly linkname: string;
  /**
   * The content, `size` bytes in chunks. Read it before asking for the next entry; what is left unread is skipped.
   * @throws TarFormatError when the archive ends inside it.
   */
  readonly body: AsyncIterable<Buffer>;
}

/**
 * Reads a tar stream entry by entry, without buffering more than one chunk of content.
 * @throws TarFormatError on a truncated archive (including one that ends without its end-of-archive blocks, which
 *   is how a broken `docker save` looks) or a header that fails its checksum.
 */
export async function* readTar(source: AsyncIterable<Buffer | Uint8Array | string>): AsyncGenerator<TarEntry> {
  const reader = new ByteReader(source[Symbol.asyncIterator]());
  let pax: Record<string, string> = {};
  let longName: string | undefined;
  let longLink: string | undefined;
  for (;;) {
    const header = await reader.exact(BLOCK);
    if (!header) throw new TarFormatError('the archive ends without its end-of-archive blocks');
    if (header.every((b) => b === 0)) return;
    verifyChecksum(header);
    const flag = String.fromCharCode(header[156]!);
    const size = pax.size !== undefined ? parseDecimal(pax.size, 'PAX size') : tarNumber(header.subarray(124, 136));
    const padding = (BLOCK - (size % BLOCK)) % BLOCK;

    if (flag === 'x' || flag === 'g' || flag === 'L' || flag === 'K') {
      if (size > META_LIMIT) throw new TarFormatError(`a ${size}-byte metadata entry`);
      const data = (await reader.exact(size + padding, true))!.subarray(0, size);
      // 'g' (global PAX defaults) carries nothing docker save relies on.
      if (flag === 'x') pax = { ...pax, ...parsePax(data) };
      else if (flag === 'L') longName = cString(data);
      else if (flag === 'K') longLink = cString(data);
      continue;
    }

    const magic = header.subarray(257, 263).toString('latin1');
    const prefix = magic === 'ustar\0' ? field(header, 345, 155) : '';
    const rawName = pax.path ?? longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
    const linkname = pax.linkpath ?? longLink ?? field(header, 157, 100);
    pax = {};
    longName = longLink = undefined;

    let left = size;
    const body = (async function* () {
      while (left > 0) {
        const chunk = await reader.upTo(left);
        left -= chunk.length;
        yield chunk;
      }
    })();
    yield { name: normalise(rawName), type: typeOf(flag), size, linkname, body };
    await reader.skip(left + padding);
  }
}

/** One ustar archive of small files (names up to 100 bytes), with its end-of-archive blocks. */
export function writeTar(entries: readonly { name: string; data: Buffer }[], mtime = 0): Buffer {
  const parts: Buffer[] = [];
  for (const { name, data } of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    if (nameBytes.length === 0 || nameBytes.length > 100) throw new TarFormatError(`tar entry name ${name}`);
    const h = Buffer.alloc(BLOCK);
    nameBytes.copy(h, 0);
    octal(0o644, 8).copy(h, 100);
    octal(0, 8).copy(h, 108);
    octal(0, 8).copy(h, 116);
    octal(data.length, 12).copy(h, 124);
    octal(mtime, 12).copy(h, 136);
    h.fill(0x20, 148, 156);
    h[156] = 0x30; // '0': regular file
    h.write('ustar\x0000', 257, 'latin1');
    const sum = h.reduce((n, b) => n + b, 0);
    Buffer.from(`${sum.toString(8).padStart(6, '0')}\0 `, 'latin1').copy(h, 148);
    parts.push(h, data, Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK));
  }
  parts.push(Buffer.alloc(2 * BLOCK));
  return Buffer.concat(parts);
}

/** Resolves `name` through the archive's links (a symlink relative to its own directory, a hardlink to the root). */
export function resolveLink(entry: Pick<TarEntry, 'name' | 'type' | 'linkname'>): string {
  if (entry.type === 'hardlink') return normalise(entry.linkname);
  const dir = entry.name.includes('/') ? entry.name.slice(0, entry.name.lastIndexOf('/')) : '';
  const out: string[] = [];
  for (const part of `${dir}/${entry.linkname}`.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length === 0) throw new TarFormatError(`link ${entry.name} points outside the archive`);
      out.pop();
    } else out.push(part);
  }
  return out.join('/');
}

function normalise(name: string): string {
  return name.replace(/^(\.\/)+/, '').replace(/\/+$/, '');
}

function typeOf(flag: string): TarEntry['type'] {
  if (flag === '0' || flag === '\0' || flag === '7') return 'file';
  if (flag === '5') return 'directory';
  if (flag === '2') return 'symlink';
  if (flag === '1') return 'hardlink';
  return 'other';
}

function verifyChecksum(h: Buffer): void {
  const stored = tarNumber(h.subarray(148, 156));
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  if (sum !== stored) throw new TarFormatError(`tar header checksum ${stored} does not match its content (${sum})`);
}

function field(h: Buffer, start: number, length: number): string {
  return cString(h.subarray(start, start + length));
}

function cString(raw: Buffer): string {
  const end = raw.indexOf(0);
  return raw.subarray(0, end === -1 ? raw.length : end).toString('utf8');
}

/** Octal ASCII (space or NUL terminated), or base-256 when the top bit is set (sizes over 8 GB). */
export function tarNumber(raw: Buffer): number {
  if ((raw[0]! & 0x80) !== 0) {
    const n = raw.subarray(1).reduce((acc, b) => acc * 256 + b, raw[0]! & 0x7f);
    if (!Number.isSafeInteger(n)) throw new TarFormatError('a tar number beyond 2^53');
    return n;
  }
  const text = raw
    .toString('latin1')
    .replace(/[\0 ]+$/, '')
    .replace(/^ +/, '');
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) throw new TarFormatError(`tar number ${JSON.stringify(text)}`);
  return parseInt(text, 8);
}

function octal(n: number, width: number): Buffer {
  return Buffer.from(`${n.toString(8).padStart(width - 1, '0')}\0`, 'latin1');
}

function parseDecimal(text: string, what: string): number {
  if (!/^\d{1,15}$/.test(text)) throw new TarFormatError(`${what} ${JSON.stringify(text)}`);
  return Number(text);
}

/** PAX extended header records: `<length> <key>=<value>\n`. */
function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space === -1) throw new TarFormatError('PAX record without a length');
    const length = parseDecimal(data.subarray(at, space).toString('latin1'), 'PAX record length');
    if (length <= space - at || at + length > data.length) throw new TarFormatError('PAX record length');
    const record = data.subarray(space + 1, at + length - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq === -1) throw new TarFormatError('PAX record without a key');
    out[record.slice(0, eq)] = record.slice(eq + 1);
    at += length;
  }
  return out;
}

/** Pulls exact byte counts out of an iterator of chunks. */
class ByteReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;

  constructor(private readonly source: AsyncIterator<Buffer | Uint8Array | string>) {}

  /**
   * Exactly `n` bytes; undefined when the stream ended cleanly before the first of them (unless `required`).
   * @throws TarFormatError when it ends in the middle.
   */
  async exact(n: number, required = false): Promise<Buffer | undefined> {
    while (this.buffered < n && (await this.fill()));
    if (this.buffered === 0 && n > 0 && !required) return undefined;
    if (this.buffered < n) throw new TarFormatError(`the archive ends ${n - this.buffered} bytes early`);
    return this.take(n);
  }

  /** Between 1 and `n` bytes, as they come. */
  async upTo(n: number): Promise<Buffer> {
    if (this.buffered === 0 && !(await this.fill())) throw new TarFormatError(`the archive ends ${n} bytes early`);
    return this.take(Math.min(n, this.chunks[0]!.length));
  }

  async skip(n: number): Promise<void> {
    while (n > 0) n -= (await this.upTo(n)).length;
  }

  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.alloc(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0]!;
        const k = Math.min(c.length, n - at);
        c.copy(out, at, 0, k);
        at += k;
        if (k === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(k);
      }
    }
    this.buffered -= n;
    return out;
  }

  private async fill(): Promise<boolean> {
    if (this.ended) return false;
    const r = await this.source.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    const v = r.value;
    const chunk = Buffer.isBuffer(v)
      ? v
      : typeof v === 'string'
        ? Buffer.from(v)
        : Buffer.from(v.buffer, v.byteOffset, v.byteLength);
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.buffered += chunk.length;
    }
    return true;
  }
}
