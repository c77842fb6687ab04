/** Text that came from a host (a command's output, a provider's error) made fit for a report. Pure. */

/** Printable ASCII on one line, at most `max` characters (cut with an ellipsis). */
export function printable(text: string, max: number): string {
  const line = text.replace(/[^\x20-\x7e]+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
}

/**
 * What of a host's free text a report may carry: no run of 16 or more characters without a space, masked in the raw
 * text before anything else (an error may quote a key or a token, alone or inside a URL, in any alphabet: base64's
 * `+/=` included), then printable words only (letters, digits, spaces, `.,:()_-`). Words and numbers survive; long
 * names (a URL, a long model id) do not.
 */
export function scrubbed(text: string, max: number): string {
  const words = text.replace(/\S{16,}/g, '[...]').replace(/[^A-Za-z0-9 .,:()_\[\]-]+/g, ' ');
  return printable(words.replace(/ {2,}/g, ' '), max);
}
