/**
 * The pure parts of layer-aware image transfer: tar reading and writing, `docker save` manifests and configs, chain
 * IDs, which layer files a host needs, the host's answers; the operator's image cache against a fake engine; and the
 * staging script's upload protocol against a directory of its own (as root only, like on a host).
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import type Docker from 'dockerode';
import { afterAll, describe, expect, it } from 'vitest';
import { ImageCache, INDEX_TTL_MS, SavedImageError } from '../../activities/deploy/image-cache';
import {
  chainIds,
  configDiffIds,
  loadManifest,
  parseHandshake,
  parseHostLayers,
  parseSaveManifest,
  parseVerdicts,
  planLayers,
  sha256,
  type ImageLayers,
  type LayerBlob,
} from '../../activities/deploy/image-layers';
import { HOST_SCRIPTS } from '../../activities/deploy/image-staging';
import { readTar, resolveLink, TarFormatError, writeTar, type TarEntry } from '../../activities/deploy/image-tar';
import { UnexpectedHostOutput } from '../../activities/host/errors';

const scratch = mkdtempSync(join(tmpdir(), 'steward-images-unit-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function entries(tar: Buffer | AsyncIterable<Buffer>): Promise<{ name: string; type: string; data: string }[]> {
  const out: { name: string; type: string; data: string }[] = [];
  const source = Buffer.isBuffer(tar) ? chunked(tar, 7) : tar;
  for await (const e of readTar(source)) {
    const chunks: Buffer[] = [];
    for await (const c of e.body) chunks.push(c);
    out.push({ name: e.name, type: e.type, data: Buffer.concat(chunks).toString('utf8') });
  }
  return out;
}

/** `buf` in chunks of `n` bytes, so that headers and bodies straddle chunk boundaries. */
async function* chunked(buf: Buffer, n: number): AsyncGenerator<Buffer> {
  for (let at = 0; at < buf.length; at += n) yield buf.subarray(at, at + n);
}

const digestOf = (s: string) => sha256(s);
const blob = (diffId: string, size = 10): LayerBlob => ({ diffId, digest: diffId, size });

describe('tar', () => {
  it('reads back what it writes, whatever the chunking', async () => {
    const tar = writeTar([
      { name: 'manifest.json', data: Buffer.from('[]') },
      { name: 'x'.repeat(100), data: Buffer.alloc(1000, 'a') },
      { name: 'empty', data: Buffer.alloc(0) },
    ]);
    expect(tar.length % 512).toBe(0);
    expect(await entries(tar)).toEqual([
      { name: 'manifest.json', type: 'file', data: '[]' },
      { name: 'x'.repeat(100), type: 'file', data: 'a'.repeat(1000) },
      { name: 'empty', type: 'file', data: '' },
    ]);
  });

  it('skips what a reader leaves unread', async () => {
    const tar = writeTar([
      { name: 'a', data: Buffer.alloc(5000, 'a') },
      { name: 'b', data: Buffer.from('b') },
    ]);
    const names: string[] = [];
    for await (const e of readTar(chunked(tar, 100))) names.push(e.name);
    expect(names).toEqual(['a', 'b']);
  });

  it('reads GNU and PAX long names and links as GNU tar writes them', async () => {
    const dir = join(scratch, 'tar-src');
    const long = `${'d'.repeat(80)}/${'f'.repeat(120)}`;
    mkdirSync(join(dir, 'd'.repeat(80)), { recursive: true });
    writeFileSync(join(dir, long), 'long');
    execFileSync('ln', ['-s', `../${'d'.repeat(80)}/${'f'.repeat(120)}`, join(dir, 'd'.repeat(80), 'link')]);
    for (const format of ['gnu', 'pax']) {
      const tar = execFileSync('tar', [`--format=${format}`, '-C', dir, '-cf', '-', '.']);
      const got = await entries(tar);
      expect(got).toContainEqual({ name: long, type: 'file', data: 'long' });
      const link = got.find((e) => e.type === 'symlink')!;
      expect(link.name).toBe(`${'d'.repeat(80)}/link`);
    }
  });

  it('refuses a truncated archive, one without its end blocks, and a damaged header', async () => {
    const tar = writeTar([{ name: 'a', data: Buffer.alloc(2000, 'a') }]);
    await expect(entries(tar.subarray(0, 1000))).rejects.toThrow(TarFormatError);
    await expect(entries(tar.subarray(0, tar.length - 1024))).rejects.toThrow(/end-of-archive/);
    const damaged = Buffer.from(tar);
    damaged[3] = 0x41;
    await expect(entries(damaged)).rejects.toThrow(/checksum/);
  });

  it('resolves symlinks relative to their directory and hardlinks from the root', () => {
    const link = (name: string, type: TarEntry['type'], linkname: string) => ({ name, type, linkname });
    expect(resolveLink(link('abc/layer.tar', 'symlink', '../blobs/sha256/ff'))).toBe('blobs/sha256/ff');
    expect(resolveLink(link('abc/layer.tar', 'hardlink', 'blobs/sha256/ff'))).toBe('blobs/sha256/ff');
    expect(() => resolveLink(link('a', 'symlink', '../../etc/passwd'))).toThrow(/outside/);
  });
});

describe('layers', () => {
  // steward/vps:bookworm as Docker 20.10 stores it: its diff IDs and, from the layer database, their chain IDs.
  const vps = [
    'sha256:5dd2b893133a953ac03c2bd28293032471f41e5ea4f873756a807681cbe761e6',
    'sha256:bfcea9b3fc5fd06020ffe22d73bbec7838cc180c4a7668ace4d18630521f8137',
    'sha256:82c88e1eccfbf47d391a934bf70d3b2c0d698cdcea9f68c4fc2a6ee54e0ec5bc',
    'sha256:26dbfa964a78891df5004a2abe4955068d01d976f26bd28a2ec154c649cf1cbd',
  ];
  const vpsChains = [
    'sha256:5dd2b893133a953ac03c2bd28293032471f41e5ea4f873756a807681cbe761e6',
    'sha256:f758481eb930633c123958187b27492a90658c3c9aed80a503cf95bc873cb833',
    'sha256:9ea09cb9f89bd17b161af51ffcc75bf716243dc5cacdc9c512bf72d73ab781ae',
    'sha256:d5a63953824598f9e59b71cba38379d63597b88a6a5210621a767f7c6272c944',
  ];

  it('computes chain IDs as the engine does', () => {
    expect(chainIds(vps)).toEqual(vpsChains);
    expect(chainIds([])).toEqual([]);
  });

  it('reads the one entry of a docker save manifest and refuses anything else', () => {
    const entry = { Config: 'c.json', RepoTags: null, Layers: ['a/layer.tar'] };
    expect(parseSaveManifest(JSON.stringify([entry]))).toEqual({ Config: 'c.json', Layers: ['a/layer.tar'] });
    expect(() => parseSaveManifest(JSON.stringify([entry, entry]))).toThrow(/one-image/);
    expect(() => parseSaveManifest(JSON.stringify([{ ...entry, Layers: [1] }]))).toThrow(/Layers/);
    expect(() => parseSaveManifest('{')).toThrow();
  });

  it("reads an image config's diff IDs and refuses malformed ones", () => {
    const config = (diffIds: unknown) => Buffer.from(JSON.stringify({ rootfs: { type: 'layers', diff_ids: diffIds } }));
    expect(configDiffIds(config(vps))).toEqual(vps);
    expect(() => configDiffIds(config(['sha256:xyz']))).toThrow(/diff ID/);
    expect(() => configDiffIds(Buffer.from('{}'))).toThrow(/rootfs/);
  });

  it('needs no file for an image whose layers the host holds, only a config', () => {
    const derived: ImageLayers = { id: digestOf('derived'), tags: ['d:1'], layers: vps.map((d) => blob(d)) };
    const plan = planLayers([derived], new Set(vpsChains));
    expect(plan.blobs).toEqual([]);
    expect(plan.images).toEqual([{ id: derived.id, reused: 4, missing: [] }]);
  });

  it('needs the files above what the host holds, each once, and a layer on another parent again', () => {
    const top = blob(digestOf('top'));
    const a: ImageLayers = { id: digestOf('a'), tags: ['a:1'], layers: [...vps.slice(0, 2).map((d) => blob(d)), top] };
    const b: ImageLayers = { id: digestOf('b'), tags: ['b:1'], layers: [...vps.slice(0, 2).map((d) => blob(d)), top] };
    // The same diff ID as vps's second layer, but on another parent: another layer to the engine.
    const c: ImageLayers = { id: digestOf('c'), tags: ['c:1'], layers: [top, blob(vps[1]!)] };
    const plan = planLayers([a, b, c], new Set(vpsChains.slice(0, 2)));
    expect(plan.blobs.map((l) => l.digest)).toEqual([top.digest, vps[1]]);
    expect(plan.images.map((i) => [i.reused, i.missing.length])).toEqual([
      [2, 1],
      [2, 1],
      [0, 2],
    ]);
  });

  it('writes a load manifest naming every layer by its staged file, tags and foreign sources kept', () => {
    const image: ImageLayers = {
      id: digestOf('cfg'),
      tags: ['steward/openclaw:1'],
      layers: [{ diffId: vps[0]!, digest: digestOf('gz'), size: 3 }],
      layerSources: { [vps[0]!]: { mediaType: 'foreign' } },
    };
    expect(JSON.parse(loadManifest([image]).toString())).toEqual([
      {
        Config: `${image.id.slice(7)}.json`,
        RepoTags: ['steward/openclaw:1'],
        Layers: [digestOf('gz').slice(7)],
        LayerSources: { [vps[0]!]: { mediaType: 'foreign' } },
      },
    ]);
  });
});

describe("the host's answers", () => {
  const id = digestOf('image');
  const [l1, l2] = [digestOf('l1'), digestOf('l2')];

  it('turns every image on the host into the chain IDs of its layers, skipping one that vanished', () => {
    const out = [`${id} ${l1} ${l2}`, `${digestOf('scratch')}`, 'Error: No such image: sha256:abc', ''].join('\n');
    expect(parseHostLayers('h', out)).toEqual(new Set(chainIds([l1, l2])));
  });

  it('refuses any other line', () => {
    for (const line of [`${id} ${l1} x`, `${id}  ${l1}`, 'Cannot connect to the Docker daemon', `${id} ${l1};rm`])
      expect(() => parseHostLayers('h', line)).toThrow(UnexpectedHostOutput);
  });

  const files = [blob(l1, 100), blob(l2, 50)];
  const hex = (d: string) => d.slice(7);

  it('reads the staging handshake: whole files and partial ones with their offsets', () => {
    const state = parseHandshake('h', [`have ${hex(l1)}`, `part ${hex(l2)} 20`], files);
    expect(state.get(hex(l1))).toEqual({ have: true });
    expect(state.get(hex(l2))).toEqual({ have: false, offset: 20 });
  });

  it.each([
    [['have x'], /printed/],
    [[`part ${hex(l2)} 51`, `have ${hex(l1)}`], /51 bytes/],
    [[`part ${hex(l2)} 01`, `have ${hex(l1)}`], /printed/],
    [[`have ${hex(l1)}`, `have ${hex(l1)}`, `have ${hex(l2)}`], /unasked/],
    [[`have ${hex(digestOf('other'))}`], /unasked/],
    [[`have ${hex(l1)}`], /did not answer/],
  ])('refuses the handshake %j', (lines, message) => {
    expect(() => parseHandshake('h', lines, files)).toThrow(message);
  });

  it('reads verdicts only for files being uploaded', () => {
    const uploading = new Set([hex(l1), hex(l2)]);
    expect(parseVerdicts('h', [`done ${hex(l1)}`, `bad ${hex(l2)}`], uploading)).toEqual(
      new Map([
        [hex(l1), 'done'],
        [hex(l2), 'bad'],
      ]),
    );
    expect(parseVerdicts('h', [`short ${hex(l1)} 3`], uploading).get(hex(l1))).toBe('short');
    for (const line of [`done ${hex(digestOf('x'))}`, `short ${hex(l1)}`, `done ${hex(l1)} 3`, 'tick'])
      expect(() => parseVerdicts('h', [line], uploading)).toThrow(UnexpectedHostOutput);
  });
});

/** A `docker save` of one image in the legacy layout, the layer file of `layers[i]` under `<v1 id>/layer.tar`. */
function savedImage(layers: Buffer[], extra: Record<string, unknown> = {}) {
  const diffIds = layers.map((l) => sha256(l));
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffIds }, ...extra }),
  );
  const id = sha256(config);
  const dirs = layers.map((_, i) => createHash('sha256').update(`${id}${i}`).digest('hex'));
  const tar = writeTar([
    ...layers.flatMap((l, i) => [
      { name: `${dirs[i]}/VERSION`, data: Buffer.from('1.0') },
      { name: `${dirs[i]}/layer.tar`, data: l },
    ]),
    { name: `${id.slice(7)}.json`, data: config },
    {
      name: 'manifest.json',
      data: Buffer.from(
        JSON.stringify([{ Config: `${id.slice(7)}.json`, RepoTags: null, Layers: dirs.map((d) => `${d}/layer.tar`) }]),
      ),
    },
  ]);
  return { id, config, diffIds, tar };
}

/** An engine whose `docker save` returns `archives[id]`, counting the saves. */
function fakeEngine(archives: Record<string, Buffer>, breakAfter?: number) {
  const saves: string[] = [];
  const engine = {
    getImages: ({ names }: { names: string[] }) => {
      saves.push(names[0]!);
      const tar = archives[names[0]!]!;
      if (breakAfter === undefined) return Promise.resolve(Readable.from(chunked(tar, 4096)));
      return Promise.resolve(
        Readable.from(
          (async function* () {
            yield tar.subarray(0, breakAfter);
            throw new Error('connection to the local engine reset');
          })(),
        ),
      );
    },
  };
  return { engine: engine as unknown as Docker, saves };
}

describe('the image cache', () => {
  const small = randomBytes(3000);
  const large = randomBytes((1 << 20) + 5000); // held on disk while the save streams, not in memory

  it('saves an image once, then serves it from the cache', async () => {
    const dir = join(scratch, 'cache-1');
    const img = savedImage([large, small]);
    const { engine, saves } = fakeEngine({ [img.id]: img.tar });
    const cache = new ImageCache(dir);
    const [first, concurrent] = await Promise.all([cache.get(engine, img.id), cache.get(engine, img.id)]);
    expect(saves).toEqual([img.id]);
    expect(concurrent).toEqual(first);
    expect(first.config.equals(img.config)).toBe(true);
    expect(first.layers).toEqual([
      { diffId: img.diffIds[0], digest: img.diffIds[0], size: large.length },
      { diffId: img.diffIds[1], digest: img.diffIds[1], size: small.length },
    ]);
    expect(readFileSync(cache.blobPath(img.diffIds[0]!)).equals(large)).toBe(true);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(cache.blobPath(img.diffIds[1]!)).mode & 0o777).toBe(0o600);

    const again = await new ImageCache(dir).get(engine, img.id);
    expect(saves).toEqual([img.id]);
    expect(again).toEqual(first);
  });

  it('saves again when a layer file is damaged or gone', async () => {
    const dir = join(scratch, 'cache-2');
    const img = savedImage([small]);
    const { engine, saves } = fakeEngine({ [img.id]: img.tar });
    const cache = new ImageCache(dir);
    await cache.get(engine, img.id);
    writeFileSync(cache.blobPath(img.diffIds[0]!), Buffer.concat([small.subarray(1), Buffer.from('x')]));
    expect(await cache.verifyBlob(img.diffIds[0]!)).toBe(false);
    expect(existsSync(cache.blobPath(img.diffIds[0]!))).toBe(false);
    expect(await cache.read(img.id)).toBeUndefined();
    await cache.get(engine, img.id);
    expect(saves).toEqual([img.id, img.id]);
    expect(await cache.verifyBlob(img.diffIds[0]!)).toBe(true);
  });

  it('refuses a save that is not the image asked for, and leaves nothing usable from a broken one', async () => {
    const dir = join(scratch, 'cache-3');
    const img = savedImage([small]);
    const other = savedImage([small], { Labels: { x: 'y' } });
    const cache = new ImageCache(dir);
    await expect(cache.get(fakeEngine({ [img.id]: other.tar }).engine, img.id)).rejects.toThrow(SavedImageError);
    await expect(cache.get(fakeEngine({ [img.id]: img.tar }, 2000).engine, img.id)).rejects.toThrow(/reset/);
    expect(await cache.read(img.id)).toBeUndefined();
  });

  it('prunes indexes unused for a long time, then the blobs only they named', async () => {
    const dir = join(scratch, 'cache-4');
    const shared = randomBytes(2000);
    const a = savedImage([shared, randomBytes(100)]);
    const b = savedImage([shared]);
    const cache = new ImageCache(dir);
    await cache.get(fakeEngine({ [a.id]: a.tar }).engine, a.id);
    await cache.get(fakeEngine({ [b.id]: b.tar }).engine, b.id);
    const old = new Date(Date.now() - INDEX_TTL_MS - 60_000);
    utimesSync(join(dir, 'index', `${a.id.slice(7)}.json`), old, old);
    utimesSync(cache.blobPath(a.diffIds[1]!), old, old);
    utimesSync(cache.blobPath(a.id), old, old);
    await cache.prune();
    expect(await cache.read(a.id)).toBeUndefined();
    expect(existsSync(cache.blobPath(a.diffIds[1]!))).toBe(false);
    expect(existsSync(cache.blobPath(a.id))).toBe(false);
    expect(await cache.read(b.id)).toBeDefined();
  });
});

/**
 * The upload half of the host's staging script, run here against a directory of this test's own. It insists that
 * the directory is root's, so it runs only as root (as steward runs it on a host).
 */
describe.skipIf(process.getuid?.() !== 0)('the staging script', () => {
  const parent = join(scratch, 'host');
  const dir = join(parent, 'images');
  mkdirSync(parent, { mode: 0o755, recursive: true });
  const a = randomBytes(300_000);
  const b = randomBytes(10_000);
  const [ha, hb] = [sha256(a).slice(7), sha256(b).slice(7)];
  const upload = (input: Buffer, gz: boolean, files: [string, number][]) => {
    const r = spawnSync(
      'sh',
      ['-c', HOST_SCRIPTS.upload, 'sh', parent, dir, gz ? '1' : '0', ...files.flatMap(([h, n]) => [h, String(n)])],
      { input: gz ? gzipSync(input) : input },
    );
    return { lines: r.stdout.toString().trim().split('\n'), code: r.status, stderr: r.stderr.toString() };
  };

  it('stages whole files, answers "have" for them afterwards, and makes the directory 0700', () => {
    const r = upload(Buffer.concat([a, b]), true, [
      [ha, a.length],
      [hb, b.length],
    ]);
    expect(r).toMatchObject({ code: 0, lines: [`part ${ha} 0`, `part ${hb} 0`, 'ready', `done ${ha}`, `done ${hb}`] });
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(readFileSync(join(dir, ha)).equals(a)).toBe(true);
    expect(upload(Buffer.alloc(0), false, [[ha, a.length]]).lines).toEqual([`have ${ha}`, 'ready']);
    rmSync(join(dir, ha));
    rmSync(join(dir, hb));
  });

  it('keeps the prefix of a cut upload and continues from its end', () => {
    const cut = upload(a.subarray(0, 120_000), false, [[ha, a.length]]);
    expect(cut).toMatchObject({ code: 1, lines: [`part ${ha} 0`, 'ready', `short ${ha} 120000`] });
    const rest = upload(a.subarray(120_000), true, [[ha, a.length]]);
    expect(rest).toMatchObject({ code: 0, lines: [`part ${ha} 120000`, 'ready', `done ${ha}`] });
    expect(readFileSync(join(dir, ha)).equals(a)).toBe(true);
    rmSync(join(dir, ha));
  });

  it('drops a damaged partial file once it is complete, and one longer than the file', () => {
    upload(a.subarray(0, 120_000), false, [[ha, a.length]]);
    const part = join(dir, `${ha}.part`);
    const damaged = readFileSync(part);
    damaged[5] = damaged[5]! ^ 0xff;
    writeFileSync(part, damaged);
    expect(upload(a.subarray(120_000), false, [[ha, a.length]]).lines).toEqual([
      `part ${ha} 120000`,
      'ready',
      `bad ${ha}`,
    ]);
    expect(existsSync(part)).toBe(false);
    writeFileSync(part, Buffer.alloc(a.length + 1));
    expect(upload(a, false, [[ha, a.length]]).lines).toEqual([`part ${ha} 0`, 'ready', `done ${ha}`]);
    rmSync(join(dir, ha));
  });

  it('ends a holder of the lock that outlives the wait (a peer gone without a word), keeping its prefix', async () => {
    const quick = HOST_SCRIPTS.upload.replaceAll('flock -w 30 9', 'flock -w 1 9');
    const stale = spawn('sh', ['-c', quick, 'sh', parent, dir, '0', ha, String(a.length)], { detached: true });
    const exited = new Promise((resolve) => stale.once('exit', (code, signal) => resolve(signal ?? code)));
    await new Promise<void>((resolve) => stale.stdout.on('data', (d: Buffer) => d.includes('ready') && resolve()));
    stale.stdin.write(a.subarray(0, 50_000));
    await new Promise((resolve) => setTimeout(resolve, 200));

    // As steward does: send what follows the offset the handshake reports.
    const next = spawn('sh', ['-c', quick, 'sh', parent, dir, '0', ha, String(a.length)]);
    let out = '';
    const done = new Promise((resolve) => next.once('close', resolve));
    next.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      const offset = /^part [0-9a-f]{64} (\d+)\nready\n$/.exec(out)?.[1];
      if (offset !== undefined) next.stdin.end(a.subarray(Number(offset)));
    });
    expect(await done).toBe(0);
    const kept = Number(/^part [0-9a-f]{64} (\d+)$/m.exec(out)![1]);
    expect(kept).toBeGreaterThan(0);
    expect(out.trim().split('\n')).toEqual([`part ${ha} ${kept}`, 'ready', `done ${ha}`]);
    expect(await exited).toBe('SIGTERM');
    expect(readFileSync(join(dir, ha)).equals(a)).toBe(true);
    rmSync(join(dir, ha));
  });

  it('refuses a staging directory that is a symlink or writable by others, changing nothing', () => {
    rmSync(dir, { recursive: true, force: true });
    const elsewhere = join(scratch, 'elsewhere');
    mkdirSync(elsewhere, { mode: 0o700 });
    execFileSync('ln', ['-s', elsewhere, dir]);
    const r = upload(b, false, [[hb, b.length]]);
    expect(r.code).toBe(70);
    expect(r.stderr).toContain(`${dir} must be a directory only root can write to`);
    expect(existsSync(join(elsewhere, '.lock'))).toBe(false);
    rmSync(dir);
    execFileSync('chmod', ['0777', parent]);
    expect(upload(b, false, [[hb, b.length]]).code).toBe(70);
    execFileSync('chmod', ['0755', parent]);
  });
});
