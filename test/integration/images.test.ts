/**
 * Images without a registry, end to end: small images built on this machine's Docker engine reach a simulator
 * provisioned through the CLI (save → SSH → load), only when the host lacks them or has another ID.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalImageMissingError, shortId, transferImages } from '../../activities/deploy/images';
import { dockerOver } from '../../activities/host/docker';
import { CommandError, toActivityFailure } from '../../activities/host/errors';
import { openSession, type HostSession } from '../../activities/host/session';
import type { Simulator } from '../../client/dev/simulator';
import { hostName, stage, type KeyPair, type Stage } from '../support/fixtures';

const local = new Docker({ socketPath: '/var/run/docker.sock' });
const suffix = randomBytes(3).toString('hex');
const A = `steward-test/images-a-${suffix}:1`;
const B = `steward-test/images-b-${suffix}:1`;

let world: Stage;
let keys: KeyPair;
let sim: Simulator;
let session: HostSession;
/** Every image ID this file created locally, removed in afterAll (a re-import leaves the old one untagged). */
const created = new Set<string>();

/**
 * `docker import` of a tiny root filesystem (a version file and 256 KiB of random bytes, so every build differs and
 * the stream is long enough to break in the middle) tagged `ref` on the local engine.
 * @returns the new image ID.
 */
async function buildImage(ref: string, version: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'steward-image-'));
  try {
    writeFileSync(join(dir, 'version'), `${version}\n`);
    writeFileSync(join(dir, 'payload'), randomBytes(256 * 1024));
    const tar = spawn('tar', ['-C', dir, '-c', '.'], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [repo, tag] = ref.split(':') as [string, string];
    const progress = await local.importImage(tar.stdout, { repo, tag });
    await new Promise((resolve, reject) =>
      local.modem.followProgress(progress, (err, out) => (err ? reject(err) : resolve(out))),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const { Id } = await local.getImage(ref).inspect();
  created.add(Id);
  return Id;
}

async function hostImageId(ref: string): Promise<string | undefined> {
  try {
    return (await dockerOver(session).getImage(ref).inspect()).Id;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return undefined;
    throw err;
  }
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

beforeAll(async () => {
  world = await stage({ taskQueue: 'images-test', simulators: 1, provision: 1 });
  keys = world.keys;
  sim = world.sims[0]!;
  const target = { name: hostName(sim), address: sim.address, port: sim.port, identityFile: keys.privateKeyPath };
  session = await openSession(
    { ...target, loginUser: 'steward', opsUser: 'steward', hostKey: sim.hostKey, trustOnFirstUse: false },
    'steward',
  );
});

afterAll(async () => {
  await session?.close();
  await world?.close();
  for (const id of created)
    await local
      .getImage(id)
      .remove({ force: true })
      .catch(() => undefined);
});

describe('transferImages', () => {
  let idA: string;
  let idB: string;

  it('sends images the host lacks, which it then has under their tags with the same IDs', async () => {
    [idA, idB] = [await buildImage(A, 'a1'), await buildImage(B, 'b1')];
    const progress: number[] = [];
    const r = await transferImages(session, local, [A, B], { onProgress: (bytes) => progress.push(bytes) });

    expect(r.changes).toEqual([
      { resource: `image:${A}`, action: 'create', after: { id: shortId(idA) } },
      { resource: `image:${B}`, action: 'create', after: { id: shortId(idB) } },
    ]);
    expect(r.transferred.map(({ image, id }) => ({ image, id }))).toEqual([
      { image: A, id: idA },
      { image: B, id: idB },
    ]);
    expect(r.skipped).toEqual([]);
    expect(await hostImageId(A)).toBe(idA);
    expect(await hostImageId(B)).toBe(idB);
    // Both layers are random bytes: each image's share is at least its payload, and the shares add up to the stream.
    for (const t of r.transferred) expect(t.bytes).toBeGreaterThan(256 * 1024);
    expect(progress.length).toBeGreaterThan(1);
    expect(progress.at(-1)).toBe(r.transferred.reduce((sum, t) => sum + t.bytes, 0));
  });

  it('sends nothing when the host already has every image with the same ID', async () => {
    const r = await transferImages(session, local, [A, B]);
    expect(r.changes).toEqual([]);
    expect(r.transferred).toEqual([]);
    expect(r.skipped).toEqual([
      { image: A, id: idA, bytes: expect.any(Number) as number },
      { image: B, id: idB, bytes: expect.any(Number) as number },
    ]);
  });

  it('sends only the image rebuilt under the same tag, raw when told not to compress', async () => {
    const before = idA;
    idA = await buildImage(A, 'a2');
    const r = await transferImages(session, local, [A, B], { compress: false });
    expect(r.changes).toEqual([
      { resource: `image:${A}`, action: 'update', before: { id: shortId(before) }, after: { id: shortId(idA) } },
    ]);
    expect(r.transferred.map((t) => t.image)).toEqual([A]);
    expect(r.skipped.map((s) => s.image)).toEqual([B]);
    expect(await hostImageId(A)).toBe(idA);
    expect(await hostImageId(B)).toBe(idB);
  });

  it('on a stream broken halfway fails retryably, leaving the tag on the previous image; a retry completes', async () => {
    const before = idA;
    idA = await buildImage(A, 'a3');
    const error = await transferImages(session, breakingAfter(150_000), [A, B]).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(CommandError);
    expect((error as CommandError).retryable).toBe(true);
    expect((error as Error).message).toMatch(/docker load .*image stream broke after \d+ bytes/);
    expect(await hostImageId(A)).toBe(before);

    const retry = await transferImages(session, local, [A, B]);
    expect(retry.transferred.map((t) => t.id)).toEqual([idA]);
    expect(await hostImageId(A)).toBe(idA);
  });

  it('refuses an image missing from the local engine, naming it, before sending anything', async () => {
    const missing = `steward-test/images-missing-${suffix}:1`;
    const error = await transferImages(session, local, [A, missing]).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(LocalImageMissingError);
    expect((error as Error).message).toContain(missing);
    expect(toActivityFailure(error).nonRetryable).toBe(true);
  });
});
