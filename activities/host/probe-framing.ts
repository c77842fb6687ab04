/**
 * Framing for batched probes: many script fragments run in one round trip, and each one's output and exit code come
 * back in a record `\x1e<nonce> <i>\n<output>\x1f<nonce> <i> <code>\n`. The nonce is random per batch, so output the
 * host or a container controls (a container-writable openclaw.json, a file name, a log line) cannot end its own
 * record early or stand in for another probe's: it was written before the nonce existed. Records are read in order,
 * each exactly once.
 */
import { randomBytes } from 'node:crypto';

export interface ProbeResult {
  readonly out: string;
  readonly code: number;
}

export interface ProbeBatch {
  /** The script that runs every fragment in order (`set +e`, so one failing does not hide the others). */
  readonly script: string;
  /** Each fragment's result by index; `missing` lists the fragments whose record is absent or incomplete. */
  parse(stdout: string): { results: (ProbeResult | undefined)[]; missing: number[] };
}

/**
 * A batch of `fragments`. With `lanes` > 1, that many subshells run the fragments side by side (fragment i in lane
 * i mod lanes), each record into a file of its own in a fresh private temp dir, printed in index order at the end: the
 * output is what a run in order prints, sooner. For observations only, which do not depend on one another; where no
 * temp dir can be made, the fragments run in order. `nonce` only for tests (default: 128 random bits, hex).
 */
export function probeBatch(
  fragments: readonly string[],
  { nonce = randomBytes(16).toString('hex'), lanes = 1 }: { nonce?: string; lanes?: number } = {},
): ProbeBatch {
  if (!/^[0-9a-f]{16,}$/.test(nonce)) throw new Error('probe nonce must be at least 16 hex digits');
  if (!Number.isInteger(lanes) || lanes < 1) throw new Error('probe lanes must be a whole number ≥ 1');
  const record = (f: string, i: number) =>
    `printf '\\036%s %d\\n' ${nonce} ${i}\n( ${f}\n) 2>&1\nprintf '\\037%s %d %d\\n' ${nonce} ${i} $?`;
  const width = Math.min(lanes, fragments.length);
  return {
    script: width > 1 ? laneScript(fragments.map(record), width) : `set +e\n${fragments.map(record).join('\n')}`,
    parse(stdout) {
      const results: (ProbeResult | undefined)[] = [];
      const missing: number[] = [];
      let at = 0;
      for (let i = 0; i < fragments.length; i++) {
        const open = `\x1e${nonce} ${i}\n`;
        const start = stdout.indexOf(open, at);
        const closeAt = start < 0 ? -1 : stdout.indexOf(`\x1f${nonce} ${i} `, start + open.length);
        const code =
          closeAt < 0 ? undefined : /^(\d{1,3})\n/.exec(stdout.slice(closeAt + nonce.length + 3 + String(i).length));
        if (start < 0 || closeAt < 0 || !code) {
          results.push(undefined);
          missing.push(i);
          continue;
        }
        results.push({ out: stdout.slice(start + open.length, closeAt), code: Number(code[1]) });
        at = closeAt + nonce.length + 3 + String(i).length + code[0].length;
      }
      return { results, missing };
    },
  };
}

/**
 * Records as shell functions, run in `width` background lanes into `$d/<i>`, then printed in order. The temp dir is
 * made by mktemp (mode 0700, a fresh name) and removed on exit, also when `timeout` ends the script; the lanes are in
 * its process group, so they end with it.
 */
function laneScript(records: readonly string[], width: number): string {
  const fns = records.map((r, i) => `p${i}() {\n${r}\n}`);
  const lanes = Array.from({ length: width }, (_, k) => {
    const mine = records.flatMap((_, i) => (i % width === k ? [`p${i} > "$d/${i}"`] : []));
    return `(\n${mine.join('\n')}\n) &`;
  });
  const inOrder = records.map((_, i) => `"$d/${i}"`).join(' ');
  return [
    'set +e',
    ...fns,
    'd=$(mktemp -d 2>/dev/null || mktemp -d -p /dev/shm 2>/dev/null)',
    'if [ -n "$d" ] && [ -d "$d" ]; then',
    `  trap 'rm -rf "$d"' EXIT`,
    `  trap 'exit 143' HUP INT TERM`,
    ...lanes,
    '  wait',
    `  cat ${inOrder} 2>/dev/null`,
    'else',
    ...records.map((_, i) => `  p${i}`),
    'fi',
  ].join('\n');
}
