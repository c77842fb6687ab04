/**
 * Audit exports and their hash chain. Pure: hashes, names, the manifest schema and the verification of a chain
 * whose files were already hashed (`export-dir.ts` reads directories into an {@link ChainSnapshot}).
 *
 * An export directory `NNNNNN` (its sequence number, six digits) holds one history file per run and `manifest.json`:
 *
 * - each file's SHA-256 is listed in the manifest, in export order; file `i` (from 1) is named `iiii-…json`;
 * - `previous` names the export before it and the SHA-256 of that export's manifest.json bytes (`null` for the first
 *   export of a chain);
 * - `chainHash` = SHA-256 of the UTF-8 text
 *   `steward-audit-chain/1\nsequence <n>\nprevious <previous manifest SHA-256 | none>\n` followed by one line
 *   `<i> <file> <sha256>\n` per file in manifest order.
 *
 * Since each manifest's hash is recorded by the next export, changing any file, any manifest, the order of files or
 * of exports breaks a hash somewhere after it; the newest manifest's hash (the head) is what to keep elsewhere.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { auditSelectionSchema } from '../../model/audit';

export const MANIFEST_FILE = 'manifest.json';
export const MANIFEST_FORMAT = 'steward-audit-export/1';
export const CHAIN_FORMAT = 'steward-audit-chain/1';

const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'must be a lowercase hex SHA-256');
const isoSchema = z.iso.datetime({ offset: true });

export const exportEntrySchema = z
  .object({
    file: z.string().regex(/^\d{4,}-[A-Za-z0-9._-]+\.json$/),
    sha256: sha256Schema,
    bytes: z.number().int().min(0),
    events: z.number().int().min(0),
    workflowId: z.string(),
    runId: z.string(),
    type: z.string(),
    status: z.string(),
    host: z.string().optional(),
    operation: z.string().optional(),
    outcome: z.string().optional(),
    startTime: isoSchema,
    closeTime: isoSchema,
  })
  .strict();
export type ExportEntry = z.infer<typeof exportEntrySchema>;

export const manifestSchema = z
  .object({
    format: z.literal(MANIFEST_FORMAT),
    sequence: z.number().int().min(1),
    createdAt: isoSchema,
    namespace: z.string(),
    /** Runs that closed in [since, until) and matched `selection` were exported. */
    window: z.object({ since: isoSchema.nullable(), until: isoSchema }).strict(),
    selection: auditSelectionSchema.extend({ limit: z.number().int().optional() }).strict(),
    query: z.string(),
    /** Who wrote it: the CLI (with its client identity) or the `auditExport` workflow run. */
    producer: z
      .object({
        kind: z.enum(['cli', 'workflow']),
        identity: z.string().optional(),
        workflowId: z.string().optional(),
        runId: z.string().optional(),
      })
      .strict(),
    previous: z.object({ export: z.string(), manifestSha256: sha256Schema }).strict().nullable(),
    files: z.array(exportEntrySchema),
    /** Runs selected but gone before their history was read (retention expired in between). */
    skipped: z.array(z.object({ workflowId: z.string(), runId: z.string(), reason: z.string() }).strict()),
    chainHash: sha256Schema,
  })
  .strict();
export type Manifest = z.infer<typeof manifestSchema>;

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** The chain hash of an export, as defined in this module's comment. */
export function chainHash(
  sequence: number,
  previousManifestSha256: string | null,
  files: readonly Pick<ExportEntry, 'file' | 'sha256'>[],
): string {
  const lines = [CHAIN_FORMAT, `sequence ${sequence}`, `previous ${previousManifestSha256 ?? 'none'}`];
  files.forEach((f, i) => lines.push(`${i + 1} ${f.file} ${f.sha256}`));
  return sha256Hex(`${lines.join('\n')}\n`);
}

/** `000042`: the directory of export 42. */
export function exportDirName(sequence: number): string {
  return String(sequence).padStart(6, '0');
}

/** Sequence number of an export directory name, or undefined for any other name. */
export function sequenceOf(name: string): number | undefined {
  return /^\d{6,}$/.test(name) ? Number(name) : undefined;
}

/** `0007-provision_web1-<runId>.json`: position in the export, then the workflow id and run id made file-safe. */
export function historyFileName(index: number, workflowId: string, runId: string): string {
  const safe = (s: string) => s.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 120);
  return `${String(index).padStart(4, '0')}-${safe(workflowId)}-${safe(runId)}.json`;
}

/** Position encoded in a history file name. */
function indexOf(file: string): number {
  return Number(/^(\d+)-/.exec(file)?.[1] ?? NaN);
}

/** The bytes written as manifest.json. */
export function serializeManifest(manifest: Manifest): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}

/** One export directory as found on disk: its manifest's bytes and every other file's hash. */
export interface ExportSnapshot {
  /** Directory name (`000003`), or the directory itself when a single export is verified. */
  readonly name: string;
  /** Absent when the directory has no manifest.json. */
  readonly manifest?: Uint8Array;
  /** Every file other than manifest.json, by name. */
  readonly files: ReadonlyMap<string, { readonly sha256: string; readonly bytes: number }>;
  /** Entries that are not regular files (directories, links). */
  readonly others: readonly string[];
}

/** A chain directory as found on disk: its exports in name order, and whatever else lies there. */
export interface ChainSnapshot {
  readonly exports: readonly ExportSnapshot[];
  /** Entries of the chain directory that are not export directories. */
  readonly extras: readonly string[];
}

export interface VerifyProblem {
  /** Path relative to the verified directory: `000002/0003-….json`, `000002/manifest.json`, `000004`. */
  readonly path: string;
  readonly problem: string;
}

export interface VerifiedExport {
  readonly name: string;
  readonly sequence?: number;
  readonly files: number;
  readonly manifestSha256?: string;
  readonly chainHash?: string;
}

export interface VerifyResult {
  readonly ok: boolean;
  readonly problems: readonly VerifyProblem[];
  readonly exports: readonly VerifiedExport[];
  /** SHA-256 of the newest manifest.json. */
  readonly head?: string;
}

export interface VerifyOptions {
  /**
   * SHA-256 of the manifest the first export links to, when the chain's older exports are kept elsewhere. Without
   * it the first export must start the chain (`previous: null`).
   */
  readonly previous?: string;
  /** The head recorded elsewhere: the newest manifest must hash to it (catches exports removed from the end). */
  readonly expectHead?: string;
}

/**
 * Verifies every export of a chain: manifests readable, every listed file present with its hash, no unlisted
 * file, files numbered in manifest order, chain hashes recomputed, each export linked to the one before it by that
 * manifest's hash and numbered one after it, and the head as expected. Reports every problem, each naming its path.
 */
export function verifyChain(snapshot: ChainSnapshot, options: VerifyOptions = {}): VerifyResult {
  const problems: VerifyProblem[] = [];
  const verified: VerifiedExport[] = [];
  for (const extra of snapshot.extras) problems.push({ path: extra, problem: 'extra entry: not an export directory' });

  let before: { name: string; sequence?: number; manifestSha256?: string } | undefined;
  snapshot.exports.forEach((exp, position) => {
    const result = verifyExport(exp, problems);
    verified.push(result.summary);
    const m = result.manifest;
    const at = (file: string) => (exp.name === '.' ? file : `${exp.name}/${file}`);
    if (m) {
      const dirSequence = sequenceOf(exp.name);
      if (dirSequence !== undefined && dirSequence !== m.sequence) {
        problems.push({
          path: at(MANIFEST_FILE),
          problem: `export directory ${exp.name} holds the manifest of export ${m.sequence}: exports renamed or reordered`,
        });
      }
      if (position === 0) {
        if (options.previous !== undefined) {
          if (m.previous?.manifestSha256 !== options.previous) {
            problems.push({
              path: at(MANIFEST_FILE),
              problem: `broken chain: links to ${m.previous?.manifestSha256 ?? 'nothing'}, expected ${options.previous}`,
            });
          }
        } else if (m.previous !== null) {
          problems.push({
            path: at(MANIFEST_FILE),
            problem:
              `broken chain: links to export ${m.previous.export} (manifest ${m.previous.manifestSha256}), which is ` +
              'not here; give that manifest or its hash with --previous',
          });
        } else if (m.sequence !== 1) {
          problems.push({ path: at(MANIFEST_FILE), problem: `broken chain: export ${m.sequence} links to nothing` });
        }
      } else if (before) {
        if (before.sequence !== undefined && m.sequence !== before.sequence + 1) {
          problems.push({
            path: at(MANIFEST_FILE),
            problem: `broken chain: export ${m.sequence} follows export ${before.sequence}`,
          });
        }
        if (!m.previous || m.previous.manifestSha256 !== before.manifestSha256 || m.previous.export !== before.name) {
          problems.push({
            path: at(MANIFEST_FILE),
            problem:
              `broken chain: links to ${m.previous ? `${m.previous.export} (${m.previous.manifestSha256})` : 'nothing'}` +
              `, but the export before it is ${before.name} (${before.manifestSha256 ?? 'unreadable'})`,
          });
        }
      }
    }
    before = { name: exp.name, ...(m ? { sequence: m.sequence } : {}), ...hashOf(exp) };
  });

  const head = before?.manifestSha256;
  if (options.expectHead !== undefined && head !== options.expectHead) {
    const last = snapshot.exports.at(-1);
    problems.push({
      path: last ? `${last.name === '.' ? '' : `${last.name}/`}${MANIFEST_FILE}` : '.',
      problem: `head is ${head ?? 'missing'}, expected ${options.expectHead}: exports removed or replaced`,
    });
  }
  if (snapshot.exports.length === 0) problems.push({ path: '.', problem: 'no export found' });
  return { ok: problems.length === 0, problems, exports: verified, ...(head ? { head } : {}) };
}

function hashOf(exp: ExportSnapshot): { manifestSha256?: string } {
  return exp.manifest ? { manifestSha256: sha256Hex(exp.manifest) } : {};
}

/** Checks one export against its own manifest; pushes problems and returns the manifest when it could be read. */
function verifyExport(
  exp: ExportSnapshot,
  problems: VerifyProblem[],
): { manifest?: Manifest; summary: VerifiedExport } {
  const at = (file: string) => (exp.name === '.' ? file : `${exp.name}/${file}`);
  for (const other of exp.others) problems.push({ path: at(other), problem: 'extra entry: not a history file' });
  if (!exp.manifest) {
    problems.push({ path: at(MANIFEST_FILE), problem: 'missing manifest' });
    return { summary: { name: exp.name, files: exp.files.size } };
  }
  const manifestSha256 = sha256Hex(exp.manifest);
  let manifest: Manifest;
  try {
    const parsed = manifestSchema.safeParse(JSON.parse(Buffer.from(exp.manifest).toString('utf8')));
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      problems.push({
        path: at(MANIFEST_FILE),
        problem: `altered manifest: ${issue?.path.join('.') || '(root)'} ${issue?.message ?? 'is invalid'}`,
      });
      return { summary: { name: exp.name, files: exp.files.size, manifestSha256 } };
    }
    manifest = parsed.data;
  } catch {
    problems.push({ path: at(MANIFEST_FILE), problem: 'altered manifest: not JSON' });
    return { summary: { name: exp.name, files: exp.files.size, manifestSha256 } };
  }

  const listed = new Set(manifest.files.map((f) => f.file));
  const byHash = new Map(manifest.files.map((f) => [f.sha256, f.file]));
  manifest.files.forEach((entry, i) => {
    if (indexOf(entry.file) !== i + 1) {
      problems.push({
        path: at(entry.file),
        problem: `out of order: listed at position ${i + 1} of the manifest`,
      });
    }
    const found = exp.files.get(entry.file);
    if (!found) {
      problems.push({ path: at(entry.file), problem: 'missing file' });
      return;
    }
    if (found.sha256 !== entry.sha256) {
      const moved = byHash.get(found.sha256);
      problems.push({
        path: at(entry.file),
        problem: moved
          ? `reordered: holds the content of ${moved}`
          : `altered: SHA-256 ${found.sha256}, manifest says ${entry.sha256}`,
      });
    }
  });
  for (const name of [...exp.files.keys()].sort()) {
    if (!listed.has(name)) problems.push({ path: at(name), problem: 'extra file: not in the manifest' });
  }
  const recomputed = chainHash(manifest.sequence, manifest.previous?.manifestSha256 ?? null, manifest.files);
  if (recomputed !== manifest.chainHash) {
    problems.push({
      path: at(MANIFEST_FILE),
      problem: `chain hash ${manifest.chainHash} does not match its files (recomputed ${recomputed}): manifest altered`,
    });
  }
  return {
    manifest,
    summary: {
      name: exp.name,
      sequence: manifest.sequence,
      files: manifest.files.length,
      manifestSha256,
      chainHash: manifest.chainHash,
    },
  };
}
