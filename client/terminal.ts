/**
 * What steward prints is often the host's text: file names, command errors, control evidence, findings. Host text
 * may hold terminal control sequences (a file named `\x1b]0;…`, an error that clears the screen, a carriage return
 * that overprints a line), and none may steer the operator's terminal. So every line the CLI prints has its control
 * characters (C0 but tab and newline, DEL, C1) written as `\u00XX`: visible, harmless, and inside a `--json`
 * document the same JSON value as before.
 */
const UNSAFE = /[\x00-\x08\x0b-\x1f\x7f-\x9f]/g;

export function terminalSafe(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Makes console.log, .info, .warn and .error print their string arguments {@link terminalSafe}. */
export function installTerminalSafeConsole(): void {
  for (const name of ['log', 'info', 'warn', 'error'] as const) {
    const original = console[name].bind(console);
    console[name] = (...args: unknown[]) => original(...args.map((a) => (typeof a === 'string' ? terminalSafe(a) : a)));
  }
}
