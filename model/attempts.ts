/**
 * How a step's retried attempt is labelled. Host steps are retried by the workflow (workflows/retry.ts), so each
 * attempt is an activity of its own in history; its summary says which attempt it is, and the audit timeline reads
 * that back to show the attempts as one step, as the Temporal UI shows them one after another.
 */
const ATTEMPT = / · attempt (\d+) \((\d+) failed, (\d+) lost their worker\)$/;

/** `<step summary> · attempt N (F failed, L lost their worker)`. */
export function attemptSummary(step: string, attempt: number, failures: number, losses: number): string {
  return `${step} · attempt ${attempt} (${failures} failed, ${losses} lost their worker)`;
}

/** The attempt a summary names (undefined for a first attempt or any other summary). */
export function attemptOf(summary: string | undefined): number | undefined {
  const m = summary === undefined ? null : ATTEMPT.exec(summary);
  return m ? Number(m[1]) : undefined;
}
