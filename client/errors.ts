/** CLI-level errors; the entry file maps them to exit codes. */

/** Wrong flags, arguments or hosts: exit 64. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** The operation was refused before it started, e.g. the same operation already runs on the host: exit 1. */
export class OperationRefusedError extends Error {
  override readonly name = 'OperationRefusedError';
}

/** Exit codes of PRODUCT.md. */
export const EXIT = { ok: 0, failed: 1, drift: 2, usage: 64 } as const;
