/**
 * Audit export chains without a server: the chain hash, verification of chains held in memory (every way a file,
 * a manifest or an export can be altered, lost, added or reordered), and the same on disk through the export writer.
 */
import { cp, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuditChainError, chainHead, readChain, startExport } from '../../common/audit/export-dir';
import {
  chainHash,
  exportDirName,
  historyFileName,
  MANIFEST_FORMAT,
  serializeManifest,
  sha256Hex,
  verifyChain,
  type ChainSnapshot,
  type ExportEntry,
  type ExportSnapshot,
  type Manifest,
} from '../../common/audit/manifest';

const T0 = Date.parse('2026-03-01T00:00:00Z');

function entry(index: number, content: string): ExportEntry {
  const workflowId = `provision/web${index}/2026-03-01T00:00:0${index}Z`;
  const runId = `run-${index}`;
  return {
    file: historyFileName(index, workflowId, runId),
    sha256: sha256Hex(content),
    bytes: Buffer.byteLength(content),
    events: 11,
    workflowId,
    runId,
    type: 'provisionHost',
    status: 'Completed',
    host: `web${index}`,
    operation: 'provision',
    outcome: 'completed',
    startTime: new Date(T0 + index * 1000).toISOString(),
    closeTime: new Date(T0 + index * 1000 + 500).toISOString(),
  };
}

function manifestOf(sequence: number, previous: Manifest['previous'], files: ExportEntry[]): Manifest {
  return {
    format: MANIFEST_FORMAT,
    sequence,
    createdAt: new Date(T0 + sequence * 86_400_000).toISOString(),
    namespace: 'default',
    window: {
      since: sequence === 1 ? null : new Date(T0 + (sequence - 1) * 86_400_000).toISOString(),
      until: new Date(T0 + sequence * 86_400_000).toISOString(),
    },
    selection: {},
    query: "StewardOperation IS NOT NULL AND ExecutionStatus != 'Running'",
    producer: { kind: 'cli', identity: 'alice@laptop' },
    previous,
    files,
    skipped: [],
    chainHash: chainHash(sequence, previous?.manifestSha256 ?? null, files),
  };
}

/** A chain of `exports` exports with `perExport` histories each, as readChain would snapshot it. */
function chain(exports: number, perExport: number): { snapshot: ChainSnapshot; contents: Map<string, string>[] } {
  const snaps: ExportSnapshot[] = [];
  const contents: Map<string, string>[] = [];
  let previous: Manifest['previous'] = null;
  for (let s = 1; s <= exports; s++) {
    const byFile = new Map<string, string>();
    const files = Array.from({ length: perExport }, (_, i) => {
      const content = `{"events":[{"eventId":"1","export":${s},"run":${i + 1}}]}\n`;
      const e = entry(i + 1, content);
      byFile.set(e.file, content);
      return e;
    });
    const manifest: Buffer = Buffer.from(serializeManifest(manifestOf(s, previous, files)));
    snaps.push({ name: exportDirName(s), manifest, files: hashes(byFile), others: [] });
    contents.push(byFile);
    previous = { export: exportDirName(s), manifestSha256: sha256Hex(manifest) };
  }
  return { snapshot: { exports: snaps, extras: [] }, contents };
}

function hashes(byFile: Map<string, string>): Map<string, { sha256: string; bytes: number }> {
  return new Map([...byFile].map(([f, c]) => [f, { sha256: sha256Hex(c), bytes: Buffer.byteLength(c) }]));
}

/** The snapshot with export `i` replaced by `change(export)`. */
function withExport(s: ChainSnapshot, i: number, change: (e: ExportSnapshot) => ExportSnapshot): ChainSnapshot {
  return { ...s, exports: s.exports.map((e, j) => (j === i ? change(e) : e)) };
}

function manifestJson(e: ExportSnapshot): Manifest {
  return JSON.parse(Buffer.from(e.manifest as Uint8Array).toString('utf8')) as Manifest;
}

const paths = (r: ReturnType<typeof verifyChain>) => r.problems.map((p) => p.path);

describe('chain hash', () => {
  const files = [entry(1, 'a'), entry(2, 'b')];

  it('is SHA-256 over the format line, sequence, previous manifest hash and the numbered files', () => {
    const text =
      `steward-audit-chain/1\nsequence 3\nprevious ${'ab'.repeat(32)}\n` +
      `1 ${files[0]?.file} ${sha256Hex('a')}\n2 ${files[1]?.file} ${sha256Hex('b')}\n`;
    expect(chainHash(3, 'ab'.repeat(32), files)).toBe(sha256Hex(text));
    expect(chainHash(1, null, [])).toBe(sha256Hex('steward-audit-chain/1\nsequence 1\nprevious none\n'));
  });

  it('changes with the order of files, the previous manifest and the sequence', () => {
    const base = chainHash(2, 'cd'.repeat(32), files);
    expect(chainHash(2, 'cd'.repeat(32), [...files].reverse())).not.toBe(base);
    expect(chainHash(2, 'ce'.repeat(32), files)).not.toBe(base);
    expect(chainHash(3, 'cd'.repeat(32), files)).not.toBe(base);
  });

  it('names history files by position, workflow id and run id, file-safe', () => {
    expect(historyFileName(7, 'drift/web1/2026-03-01T00:15:00Z', '01a2-ff')).toBe(
      '0007-drift_web1_2026-03-01T00_15_00Z-01a2-ff.json',
    );
    expect(exportDirName(42)).toBe('000042');
  });
});

describe('verifyChain', () => {
  it('passes an intact chain and reports its head', () => {
    const { snapshot } = chain(3, 2);
    const r = verifyChain(snapshot);
    expect(r.problems).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.exports.map((e) => e.sequence)).toEqual([1, 2, 3]);
    expect(r.head).toBe(sha256Hex(snapshot.exports[2]?.manifest as Uint8Array));
    expect(verifyChain(snapshot, { expectHead: r.head as string }).ok).toBe(true);
  });

  it('names an altered file', () => {
    const { snapshot, contents } = chain(2, 3);
    const file = [...(contents[1] as Map<string, string>).keys()][1] as string;
    const altered = withExport(snapshot, 1, (e) => ({
      ...e,
      files: new Map([...e.files, [file, { sha256: sha256Hex('tampered'), bytes: 8 }]]),
    }));
    const r = verifyChain(altered);
    expect(r.ok).toBe(false);
    expect(r.problems).toEqual([{ path: `000002/${file}`, problem: expect.stringMatching(/^altered: SHA-256/) }]);
  });

  it('names a missing file and an extra one', () => {
    const { snapshot, contents } = chain(2, 3);
    const file = [...(contents[0] as Map<string, string>).keys()][0] as string;
    const r = verifyChain(
      withExport(snapshot, 0, (e) => {
        const files = new Map(e.files);
        files.delete(file);
        files.set('0004-notes.json', { sha256: sha256Hex('x'), bytes: 1 });
        return { ...e, files };
      }),
    );
    expect(r.problems).toEqual([
      { path: `000001/${file}`, problem: 'missing file' },
      { path: '000001/0004-notes.json', problem: 'extra file: not in the manifest' },
    ]);
  });

  it('names files whose contents were swapped as reordered', () => {
    const { snapshot, contents } = chain(1, 3);
    const [a, b] = [...(contents[0] as Map<string, string>).keys()] as [string, string];
    const r = verifyChain(
      withExport(snapshot, 0, (e) => {
        const files = new Map(e.files);
        files.set(a, e.files.get(b) as { sha256: string; bytes: number });
        files.set(b, e.files.get(a) as { sha256: string; bytes: number });
        return { ...e, files };
      }),
    );
    expect(r.problems).toEqual([
      { path: `000001/${a}`, problem: `reordered: holds the content of ${b}` },
      { path: `000001/${b}`, problem: `reordered: holds the content of ${a}` },
    ]);
  });

  it('fails a manifest whose entries were reordered, even with its chain hash recomputed', () => {
    const { snapshot } = chain(1, 3);
    const m = manifestJson(snapshot.exports[0] as ExportSnapshot);
    const files = [m.files[1], m.files[0], m.files[2]] as ExportEntry[];
    const reordered = { ...m, files, chainHash: chainHash(1, null, files) };
    const r = verifyChain(
      withExport(snapshot, 0, (e) => ({ ...e, manifest: Buffer.from(serializeManifest(reordered)) })),
    );
    expect(r.problems.map((p) => p.problem)).toEqual([
      'out of order: listed at position 1 of the manifest',
      'out of order: listed at position 2 of the manifest',
    ]);
    expect(paths(r)).toEqual([`000001/${files[0]?.file}`, `000001/${files[1]?.file}`]);
  });

  it("fails a manifest whose hashes were edited to match altered files: the chain hash, then the next export's link", () => {
    const { snapshot, contents } = chain(2, 2);
    const file = [...(contents[0] as Map<string, string>).keys()][0] as string;
    const m = manifestJson(snapshot.exports[0] as ExportSnapshot);
    const edited = { ...m, files: m.files.map((f) => (f.file === file ? { ...f, sha256: sha256Hex('forged') } : f)) };
    const forged = withExport(snapshot, 0, (e) => ({
      ...e,
      manifest: Buffer.from(serializeManifest(edited)),
      files: new Map([...e.files, [file, { sha256: sha256Hex('forged'), bytes: 6 }]]),
    }));
    const r = verifyChain(forged);
    expect(r.problems.map((p) => [p.path, p.problem.split(' ')[0]])).toEqual([
      ['000001/manifest.json', 'chain'],
      ['000002/manifest.json', 'broken'],
    ]);

    // Recomputing the chain hash too still breaks the link from export 2.
    const rehashed = { ...edited, chainHash: chainHash(1, null, edited.files) };
    const r2 = verifyChain(
      withExport(forged, 0, (e) => ({ ...e, manifest: Buffer.from(serializeManifest(rehashed)) })),
    );
    expect(r2.problems).toEqual([{ path: '000002/manifest.json', problem: expect.stringMatching(/^broken chain/) }]);
  });

  it('fails when an export is removed from the middle, the start or the end of the chain', () => {
    const { snapshot } = chain(3, 1);
    const [first, second, third] = snapshot.exports as [ExportSnapshot, ExportSnapshot, ExportSnapshot];
    const middle = verifyChain({ ...snapshot, exports: [first, third] });
    expect(middle.problems.map((p) => p.path)).toEqual(['000003/manifest.json', '000003/manifest.json']);
    expect(middle.problems[0]?.problem).toBe('broken chain: export 3 follows export 1');

    const start = verifyChain({ ...snapshot, exports: [second, third] });
    expect(start.problems).toEqual([
      { path: '000002/manifest.json', problem: expect.stringMatching(/^broken chain: links to export 000001/) },
    ]);
    // …unless the removed export's manifest hash is given: its exports were archived elsewhere.
    const archived = verifyChain(
      { ...snapshot, exports: [second, third] },
      { previous: sha256Hex(first.manifest as Uint8Array) },
    );
    expect(archived.ok).toBe(true);

    const head = verifyChain(snapshot).head as string;
    const end = verifyChain({ ...snapshot, exports: [first, second] }, { expectHead: head });
    expect(end.problems).toEqual([
      { path: '000002/manifest.json', problem: expect.stringMatching(/^head is [0-9a-f]{64}, expected/) },
    ]);
  });

  it('fails exports swapped between directories, a missing manifest and extra entries', () => {
    const { snapshot } = chain(2, 1);
    const [first, second] = snapshot.exports as [ExportSnapshot, ExportSnapshot];
    const swapped = verifyChain({
      ...snapshot,
      exports: [
        { ...second, name: '000001' },
        { ...first, name: '000002' },
      ],
    });
    expect(swapped.ok).toBe(false);
    expect(swapped.problems.some((p) => /renamed or reordered/.test(p.problem))).toBe(true);

    const noManifest = verifyChain(withExport(snapshot, 1, ({ manifest: _, ...e }) => e));
    expect(noManifest.problems[0]).toEqual({ path: '000002/manifest.json', problem: 'missing manifest' });

    const extras = verifyChain({
      exports: snapshot.exports.map((e, i) => (i === 0 ? { ...e, others: ['nested'] } : e)),
      extras: ['README.txt'],
    });
    expect(extras.problems).toEqual([
      { path: 'README.txt', problem: 'extra entry: not an export directory' },
      { path: '000001/nested', problem: 'extra entry: not a history file' },
    ]);
  });

  it('fails an empty directory', () => {
    expect(verifyChain({ exports: [], extras: [] }).problems).toEqual([{ path: '.', problem: 'no export found' }]);
  });
});

describe('export directories on disk', () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'steward-audit-chain-'));
  });
  afterAll(async () => {
    await rm(root, { recursive: true, force: true });
  });

  async function writeChain(dir: string, exports: number): Promise<void> {
    const { snapshot, contents } = chain(exports, 2);
    for (const [i, exp] of snapshot.exports.entries()) {
      const writer = await startExport(dir, i + 1);
      for (const [file, content] of contents[i] as Map<string, string>) await writer.add(file, content);
      await writer.commit(manifestJson(exp));
    }
  }

  it('writes exports that read back intact, and finds the head', async () => {
    const dir = join(root, 'intact');
    await writeChain(dir, 2);
    const r = verifyChain(await readChain(dir));
    expect(r.problems).toEqual([]);
    const head = await chainHead(dir);
    expect(head?.name).toBe('000002');
    expect(head?.manifestSha256).toBe(r.head);
    expect(head?.manifest.sequence).toBe(2);
    // One export verifies on its own too (as the start of the chain).
    expect(verifyChain(await readChain(join(dir, '000001'))).ok).toBe(true);
  });

  it('detects a file edited, deleted or renamed on disk', async () => {
    const dir = join(root, 'tampered');
    await writeChain(dir, 2);
    const [a, b] = (await readChain(dir)).exports[1]?.files.keys() ?? [];
    const edit = join(root, 'edit');
    await cp(dir, edit, { recursive: true });
    await writeFile(join(edit, '000002', a as string), (await readFile(join(dir, '000002', a as string))) + ' ');
    expect(paths(verifyChain(await readChain(edit)))).toEqual([`000002/${a}`]);

    const del = join(root, 'delete');
    await cp(dir, del, { recursive: true });
    await rm(join(del, '000001', 'manifest.json'));
    expect(paths(verifyChain(await readChain(del)))).toEqual(['000001/manifest.json', '000002/manifest.json']);

    const swap = join(root, 'swap');
    await cp(dir, swap, { recursive: true });
    await rename(join(swap, '000002', a as string), join(swap, '000002', 'tmp'));
    await rename(join(swap, '000002', b as string), join(swap, '000002', a as string));
    await rename(join(swap, '000002', 'tmp'), join(swap, '000002', b as string));
    expect(verifyChain(await readChain(swap)).problems.map((p) => p.problem)).toEqual([
      `reordered: holds the content of ${b}`,
      `reordered: holds the content of ${a}`,
    ]);
  });

  it('refuses to commit over an export that appeared meanwhile, leaving nothing behind', async () => {
    const dir = join(root, 'race');
    await writeChain(dir, 1);
    const late = await startExport(dir, 1);
    await late.add('0001-x.json', '{}');
    const m = manifestOf(1, null, []);
    await expect(late.commit(m)).rejects.toBeInstanceOf(AuditChainError);
    expect((await readChain(dir)).extras).toEqual([]);
  });

  it('refuses to continue a chain whose head manifest is unreadable', async () => {
    const dir = join(root, 'broken-head');
    await writeChain(dir, 2);
    await writeFile(join(dir, '000002', 'manifest.json'), '{"format":');
    await expect(chainHead(dir)).rejects.toBeInstanceOf(AuditChainError);
    expect(await chainHead(join(root, 'does-not-exist'))).toBeUndefined();
  });
});
