/** Host text on its way into a report: a log line, a file's setting, a scanner's warning. */

/** One line as it may reach a plan or a terminal: control bytes shown as `?`, at most `max` characters. */
export function printable(text: string, max = 200): string {
  return text.replace(/[^\x20-\x7e\u00a0-\uffff]/g, '?').slice(0, max);
}

/**
 * The last run of a scheduled host check, from a probe whose first line is its log's modification time (epoch
 * seconds) and the rest what the check wrote; undefined when the log is empty or absent (it has not run yet).
 */
export function lastRun(
  out: string,
  nowMs: number,
): { readonly ageHours: number; readonly lines: string[] } | undefined {
  const [time = '', ...lines] = out.trim().split('\n');
  if (!time) return undefined;
  return { ageHours: Math.max(0, Math.round((nowMs - Number(time) * 1000) / 3_600_000)), lines };
}
