/**
 * Building shell command lines. Every value that reaches a host shell goes through `sh`, which quotes each argument;
 * command text is never concatenated from spec values.
 */
import { quote } from 'shell-quote';

/** Quotes an argument vector into one POSIX shell command line. */
export function sh(argv: readonly string[]): string {
  if (argv.length === 0) throw new Error('empty command');
  return quote([...argv]);
}

/**
 * Quotes an argument vector for use inside a larger script: `run('chown', uid, path)`.
 * Numbers are converted with String(); nothing else is accepted.
 */
export function run(...argv: readonly (string | number)[]): string {
  return sh(argv.map(String));
}
