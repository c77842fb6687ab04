/** Text that came from a host (a command's output, a provider's error) made fit for a report. Pure. */

/** Printable ASCII on one line, at most `max` characters (cut with an ellipsis). */
export function printable(text: string, max: number): string {
  const line = text.replace(/[^\x20-\x7e]+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/**
 * What of a host's free text a report may carry: printable words (letters, digits, spaces, `.,:/()_-`), and no run of
 * 16 or more word characters — an error may quote a key or a token (in a URL, say), and those are such runs; words,
 * model names and numbers are not.
 */
export function scrubbed(text: string, max: number): string {
  const words = text.replace(/[^A-Za-z0-9 .,:/()_-]+/g, ' ').replace(/[A-Za-z0-9_-]{16,}/g, '[...]');
  return printable(words.replace(/ {2,}/g, ' '), max);
}
