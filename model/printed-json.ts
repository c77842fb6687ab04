/**
 * The JSON document an OpenClaw command printed with `--json`, out of whatever else the container wrote around it
 * (log lines before and after). Host output is untrusted: the document is found by its lines, a bounded number of
 * candidates is tried, and no parser message (which quotes the text around a fault) is ever passed on. Pure.
 */

/**
 * Where a document failed its schema, for an error message: each step of the path as written when it is a plain key
 * or an index, `?` otherwise — the keys of a record are the host's text, which must not reach a report.
 */
export function issuePath(issues: readonly { readonly path: readonly PropertyKey[] }[]): string {
  const path = issues[0]?.path ?? [];
  // At most 15 characters: no run a report keeps is secret-sized (model/host-text.ts).
  return path.map((p) => (typeof p === 'number' || /^[A-Za-z][A-Za-z0-9_]{0,14}$/.test(String(p)) ? p : '?')).join('.');
}

/** The document, from the first line that opens one to the last line that closes it. @throws Error without quoting. */
export function printedJson(stdout: string): unknown {
  const lines = stdout.split('\n');
  const start = lines.findIndex((l) => l.startsWith('{'));
  if (start === -1) throw new Error('it printed no JSON');
  let tries = 0; // closing lines tried, from the last: a few, however much the container printed
  for (let end = lines.length - 1; end >= start && tries < 8; end--) {
    if (!lines[end]!.trimEnd().endsWith('}')) continue;
    tries++;
    try {
      return JSON.parse(lines.slice(start, end + 1).join('\n')) as unknown;
    } catch {
      // The parser's own message quotes the text around the fault, which may be a masked key: never kept.
    }
  }
  throw new Error('its output is not JSON');
}
