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

/** A batch of `fragments`; `nonce` only for tests (default: 128 random bits, hex). */
export function probeBatch(fragments: readonly string[], nonce = randomBytes(16).toString('hex')): ProbeBatch {
  if (!/^[0-9a-f]{16,}$/.test(nonce)) throw new Error('probe nonce must be at least 16 hex digits');
  const body = fragments
    .map((f, i) => `printf '\\036%s %d\\n' ${nonce} ${i}\n( ${f}\n) 2>&1\nprintf '\\037%s %d %d\\n' ${nonce} ${i} $?`)
    .join('\n');
  return {
    script: `set +e\n${body}`,
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
