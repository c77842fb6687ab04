/**
 * Images without a registry, end to end: small images built on this machine's Docker engine reach a simulator
 * provisioned through the CLI, only when the host lacks them or has another ID, and then only the layers its engine
 * lacks; an interrupted transfer is continued by the next attempt from what reached the host.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalImageMissing, shortId, transferImages, type TransferProgress } from '../../activities/deploy/images';
import { STAGING_DIR } from '../../activities/deploy/image-staging';
import { dockerOver } from '../../activities/host/docker';
import { CommandFailed, ConnectionFailed, toActivityFailure } from '../../activities/host/errors';
import { openSession, type HostSession } from '../../activities/host/session';
import type { Simulator } from '../../client/dev/simulator';
import { hostName, stage, type KeyPair, type Stage } from '../support/fixtures';

const local = new Docker({ socketPath: '/var/run/docker.sock' });
const suffix = randomBytes(3).toString('hex');
const A = `steward-test/images-a-${suffix}:1`;
const B = `steward-test/images-b-${suffix}:1`;
/** `FROM A` plus a label: A's layers, another config. */
const LABELLED = `steward-test/images-labelled-${suffix}:1`;
/** `FROM A` plus one small file: A's layer and one more. */
const EXTENDED = `steward-test/images-extended-${suffix}:1`;
const BIG = `steward-test/images-big-${suffix}:1`;
const KiB = 1024;
const MiB = 1024 * KiB;

let world: Stage;
let keys: KeyPair;
let sim: Simulator;
let session: HostSession;
/** This file's image cache, so that nothing the tests do reaches the operator's. */
const cacheDir = mkdtempSync(join(tmpdir(), 'steward-image-cache-'));
/** Every image ID this file created locally, removed in afterAll (a re-import leaves the old one untagged). */
const created = new Set<string>();

/**
 * `docker import` of a tiny root filesystem (a version file and `size` random bytes, so every build differs and the
 * stream is long enough to break in the middle) tagged `ref` on the local engine.
 * @returns the new image ID.
 */
async function buildImage(ref: string, version: string, size = 256 * KiB): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'steward-image-'));
  try {
    writeFileSync(join(dir, 'version'), `${version}\n`);
    writeFileSync(join(dir, 'payload'), randomBytes(size));
    const tar = spawn('tar', ['-C', dir, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [repo, tag] = ref.split(':') as [string, string];
    const progress = await local.importImage(tar.stdout, { repo, tag });
    await new Promise((resolve, reject) =>
      local.modem.followProgress(progress, (err, out) => (err ? reject(err) : resolve(out))),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return localId(ref);
}

/** `docker build` of `dockerfile` (with `files` beside it) tagged `ref` on the local engine; its image ID. */
async function buildFrom(ref: string, dockerfile: string, files: Record<string, string> = {}): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'steward-build-'));
  try {
    writeFileSync(join(dir, 'Dockerfile'), dockerfile);
    for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, name), content);
    const context = spawn('tar', ['-C', dir, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const progress = await local.buildImage(context.stdout, { t: ref, rm: true });
    await new Promise((resolve, reject) =>
      local.modem.followProgress(progress, (err, out) => {
        const failed = (out as { error?: string }[] | undefined)?.find((o) => o.error);
        if (err || failed) reject(err ?? new Error(failed!.error));
        else resolve(out);
      }),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return localId(ref);
}

async function localId(ref: string): Promise<string> {
  const { Id } = await local.getImage(ref).inspect();
  created.add(Id);
  return Id;
}

/** The file a layer travels as: Docker 20.10 saves layers uncompressed, so its digest is the diff ID. */
async function topLayerFile(ref: string): Promise<string> {
  const layers = (await local.getImage(ref).inspect()).RootFS.Layers!;
  return layers.at(-1)!.replace(/^sha256:/, '');
}

async function hostImageId(ref: string): Promise<string | undefined> {
  try {
    return (await dockerOver(session).getImage(ref).inspect()).Id;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw err;
  }
}

/** Root on the host, under the staging lock (so an upload cut a moment ago has finished writing). */
async function asRoot(script: string): Promise<string> {
  return (await session.check(`exec 9>>${STAGING_DIR}/.lock; flock -w 30 9; ${script}`, { label: 'test' })).stdout;
}

/** The staging directory's files, `name size` each, sorted (not its lock and owner files). */
async function stagedFiles(): Promise<string[]> {
  const out = await asRoot(`find ${STAGING_DIR} -mindepth 1 -maxdepth 1 ! -name '.*' -printf '%f %s\\n' | sort`);
  return out.split('\n').filter(Boolean);
}

async function connect(): Promise<HostSession> {
  const target = { name: hostName(sim), address: sim.address, port: sim.port, identityFile: keys.privateKeyPath };
  return openSession(
    { ...target, loginUser: 'steward', opsUser: 'steward', hostKey: sim.hostKey, trustOnFirstUse: false },
    'steward',
  );
}

/** The local engine, except that image archives break after `limit` bytes, as if dockerd's connection dropped. */
function breakingAfter(limit: number): Docker {
  type Saver = { getImages(opts: { names: string[] }): Promise<Readable> };
  const broken = Object.create(local) as Docker & Saver;
  broken.getImages = async (opts) => {
    const source = await (local as Docker & Saver).getImages(opts);
    return Readable.from(
      (async function* () {
        let sent = 0;
        for await (const chunk of source as AsyncIterable<Buffer>) {
          if (sent + chunk.length >= limit) {
            yield chunk.subarray(0, limit - sent);
            source.destroy();
            throw new Error('connection to the local engine reset (simulated)');
          }
          sent += chunk.length;
          yield chunk;
        }
      })(),
    );
  };
  return broken;
}

/**
 * Transfers `ref` and drops the SSH session once `cutAt` bytes went out, in the middle of its layer.
 * @returns the error, and how many bytes of the layer file the host kept.
 */
async function interrupted(ref: string, cutAt: number): Promise<{ error: unknown; kept: number }> {
  const doomed = session;
  const error = await transferImages(doomed, local, [ref], {
    cacheDir,
    onProgress: (bytes) => {
      if (bytes >= cutAt) void doomed.close();
    },
  }).catch((err: unknown) => err);
  session = await connect();
  const file = await topLayerFile(ref);
  const kept = await asRoot(`stat -c %s ${STAGING_DIR}/${file}.part`);
  return { error, kept: Number(kept.trim()) };
}

beforeAll(async () => {
  world = await stage({ taskQueue: 'images-test', simulators: 1, golden: 'provisioned' });
  keys = world.keys;
  sim = world.sims[0]!;
  session = await connect();
});

afterAll(async () => {
  await session?.close();
  await world?.close();
  for (const id of [...created].reverse())
    await local
      .getImage(id)
      .remove({ force: true })
      .catch(() => undefined);
  rmSync(cacheDir, { recursive: true, force: true });
});

describe('transferImages', () => {
  let idA: string;
  let idB: string;

  it('sends images the host lacks, which it then has under their tags with the same IDs', async () => {
    [idA, idB] = [await buildImage(A, 'a1'), await buildImage(B, 'b1')];
    const progress: number[] = [];
    const details: TransferProgress[] = [];
    const r = await transferImages(session, local, [A, B], {
      cacheDir,
      onProgress: (bytes, detail) => {
        progress.push(bytes);
        details.push(detail);
      },
    });

    expect(r.changes).toEqual([
      { resource: `image:${A}`, action: 'create', after: { id: shortId(idA) } },
      { resource: `image:${B}`, action: 'create', after: { id: shortId(idB) } },
    ]);
    expect(
      r.transferred.map(({ image, id, layersSent, layersReused }) => ({ image, id, layersSent, layersReused })),
    ).toEqual([
      { image: A, id: idA, layersSent: 1, layersReused: 0 },
      { image: B, id: idB, layersSent: 1, layersReused: 0 },
    ]);
    expect(r.skipped).toEqual([]);
    expect(await hostImageId(A)).toBe(idA);
    expect(await hostImageId(B)).toBe(idB);
    // Both layers are random bytes: each image's share is at least its payload, and the shares add up to the stream.
    for (const t of r.transferred) expect(t.bytes).toBeGreaterThan(256 * KiB);
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toBe(r.transferred.reduce((sum, t) => sum + t.bytes, 0));
    // The phases in order, and while sending how far through the layers it is: at the end, all of them.
    const phases = details.map((d) => d.phase).filter((p, i, all) => p !== all[i - 1]);
    expect(phases).toEqual(['saving', 'sending', 'loading']);
    const lastSending = details.filter((d) => d.phase === 'sending').at(-1)!;
    expect(lastSending.total).toBeGreaterThan(512 * KiB);
    expect(lastSending.read).toBe(lastSending.total);
    // Loaded layers leave the staging directory.
    expect(await stagedFiles()).toEqual([]);
    expect(await asRoot(`stat -c '%U %a' ${STAGING_DIR}`)).toBe('root 700\n');
  });

  it('sends nothing when the host already has every image with the same ID', async () => {
    const r = await transferImages(session, local, [A, B], { cacheDir });
    expect(r.changes).toEqual([]);
    expect(r.transferred).toEqual([]);
    expect(r.skipped).toEqual([
      { image: A, id: idA, bytes: expect.any(Number) as number },
      { image: B, id: idB, bytes: expect.any(Number) as number },
    ]);
  });

  it('sends a few kB for an image whose layers the host holds: only its config, or a new small layer', async () => {
    const labelled = await buildFrom(LABELLED, `FROM ${A}\nLABEL steward.test=labelled\n`);
    const extended = await buildFrom(EXTENDED, `FROM ${A}\nCOPY note /note\n`, { note: 'one small file\n' });
    expect((await local.getImage(LABELLED).inspect()).RootFS.Layers).toEqual(
      (await local.getImage(A).inspect()).RootFS.Layers,
    );

    const r = await transferImages(session, local, [A, LABELLED], { cacheDir });
    expect(r.changes).toEqual([{ resource: `image:${LABELLED}`, action: 'create', after: { id: shortId(labelled) } }]);
    expect(r.transferred).toMatchObject([{ image: LABELLED, id: labelled, layersSent: 0, layersReused: 1 }]);
    expect(r.transferred[0]!.bytes).toBeLessThan(64 * KiB);
    expect(await hostImageId(LABELLED)).toBe(labelled);
    expect(await hostImageId(A)).toBe(idA);

    const e = await transferImages(session, local, [EXTENDED], { cacheDir, compress: false });
    expect(e.transferred).toMatchObject([{ image: EXTENDED, id: extended, layersSent: 1, layersReused: 1 }]);
    expect(e.transferred[0]!.bytes).toBeLessThan(64 * KiB);
    expect(await hostImageId(EXTENDED)).toBe(extended);
    expect(await stagedFiles()).toEqual([]);
  });

  it('sends only the image rebuilt under the same tag, raw when told not to compress', async () => {
    const before = idA;
    idA = await buildImage(A, 'a2');
    const r = await transferImages(session, local, [A, B], { cacheDir, compress: false });
    expect(r.changes).toEqual([
      { resource: `image:${A}`, action: 'update', before: { id: shortId(before) }, after: { id: shortId(idA) } },
    ]);
    expect(r.transferred.map((t) => t.image)).toEqual([A]);
    expect(r.skipped.map((s) => s.image)).toEqual([B]);
    expect(await hostImageId(A)).toBe(idA);
    expect(await hostImageId(B)).toBe(idB);
  });

  it('on a local save broken halfway fails retryably before sending anything, leaving the tag; a retry completes', async () => {
    const before = idA;
    idA = await buildImage(A, 'a3');
    const error = await transferImages(session, breakingAfter(150_000), [A, B], { cacheDir }).catch(
      (err: unknown) => err,
    );
    expect(error).toBeInstanceOf(CommandFailed);
    expect((error as CommandFailed).retryable).toBe(true);
    expect((error as Error).message).toMatch(
      /docker save \(.*\) from the local engine .*image save broke off: .*reset/,
    );
    expect(await hostImageId(A)).toBe(before);
    expect(await stagedFiles()).toEqual([]);

    const retry = await transferImages(session, local, [A, B], { cacheDir });
    expect(retry.transferred.map((t) => t.id)).toEqual([idA]);
    expect(await hostImageId(A)).toBe(idA);
  });

  it('continues an upload cut mid-layer from what reached the host, sending only the rest', async () => {
    const id = await buildImage(BIG, 'big1', 8 * MiB);
    const size = Number((await local.getImage(BIG).inspect()).Size);
    const { error, kept } = await interrupted(BIG, 4 * MiB);
    expect(error).toBeInstanceOf(ConnectionFailed);
    expect((error as ConnectionFailed).retryable).toBe(true);
    expect(await hostImageId(BIG)).toBeUndefined();
    // What had reached the file when the session died: less than went out (SSH and sockets held the rest).
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(4 * MiB);

    const retry = await transferImages(session, local, [BIG], { cacheDir });
    expect(retry.transferred).toMatchObject([{ image: BIG, id, layersSent: 1, layersReused: 0, resumedBytes: kept }]);
    // Random bytes do not compress: what went out is the rest of the layer file and the config, not the whole.
    expect(retry.transferred[0]!.bytes).toBeLessThan(size - kept + 64 * KiB);
    expect(retry.transferred[0]!.bytes).toBeLessThan(size);
    expect(await hostImageId(BIG)).toBe(id);
    expect(await stagedFiles()).toEqual([]);
  });

  it('detects a damaged partial file when it completes and sends that layer again', async () => {
    const id = await buildImage(BIG, 'big2', 8 * MiB);
    const file = await topLayerFile(BIG);
    const { kept } = await interrupted(BIG, 4 * MiB);
    expect(kept).toBeGreaterThan(1024);
    const at = Math.floor(kept / 2);
    await asRoot(`printf 'damage' | dd of=${STAGING_DIR}/${file}.part bs=1 seek=${at} conv=notrunc status=none`);

    const retry = await transferImages(session, local, [BIG], { cacheDir, compress: false });
    expect(retry.transferred).toMatchObject([{ id, resumedBytes: kept }]);
    // The rest of the damaged copy, then the whole file again.
    expect(retry.transferred[0]!.bytes).toBeGreaterThan(8 * MiB);
    expect(await hostImageId(BIG)).toBe(id);
    expect(await stagedFiles()).toEqual([]);
  });

  it('refuses a staging directory that is not root-only, not retryably, following nothing', async () => {
    await buildImage(BIG, 'big3');
    await asRoot(
      `mv ${STAGING_DIR} ${STAGING_DIR}.moved && mkdir -m 0700 /tmp/planted && ln -s /tmp/planted ${STAGING_DIR}`,
    );
    try {
      const error = await transferImages(session, local, [BIG], { cacheDir }).catch((err: unknown) => err);
      expect(error).toBeInstanceOf(CommandFailed);
      expect((error as Error).message).toContain(`${STAGING_DIR} must be a directory only root can write to`);
      expect(toActivityFailure(error).nonRetryable).toBe(true);
      expect((await session.check('ls -A /tmp/planted', { label: 'planted' })).stdout).toBe('');
    } finally {
      await session.check(`rm ${STAGING_DIR} && rmdir /tmp/planted && mv ${STAGING_DIR}.moved ${STAGING_DIR}`, {
        label: 'restore staging',
      });
    }
  });

  it('refuses an image missing from the local engine, naming it, before sending anything', async () => {
    const missing = `steward-test/images-missing-${suffix}:1`;
    const error = await transferImages(session, local, [A, missing], { cacheDir }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(LocalImageMissing);
    expect((error as Error).message).toContain(missing);
    expect(toActivityFailure(error).nonRetryable).toBe(true);
  });
});
