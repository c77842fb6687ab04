/** CLI-level errors, and the exit code and message each error ends a command with. */
import { PolicyViolation } from '../model/governance';
import { TemporalConfigError } from '../common/temporal-connection';
import { ValidationError } from '../model/validate';

/** Wrong flags, arguments or hosts: exit 64. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The operation was refused before it started, e.g. the same operation already runs on the host: exit 1. */
export class OperationRefusedError extends Error {
  override readonly name = 'OperationRefusedError';
}

/** steward's exit codes (listed in the README's "Using it"). */
export const EXIT = { ok: 0, failed: 1, drift: 2, usage: 64 } as const;

/** The exit code and the `steward: …` message a command that threw `err` ends with. */
export function failureExit(err: unknown): { code: number; message: string } {
  const message = err instanceof Error ? err.message : String(err);
  const usage =
    err instanceof ValidationError ||
    err instanceof UsageError ||
    err instanceof PolicyViolation ||
    err instanceof TemporalConfigError;
  return { code: usage ? EXIT.usage : EXIT.failed, message };
}
