/** CLI-level errors; the entry file maps them to exit codes. */

/** Wrong flags, arguments or hosts: exit 64. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Exit codes of PRODUCT.md. */
export const EXIT = { ok: 0, failed: 1, drift: 2, usage: 64 } as const;

/** Ends the command with a given exit code without printing a stack (the message was printed already). */
export class ExitCode extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}
