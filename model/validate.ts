/**
 * One validation helper for every boundary: the spec file, CLI flags and output parsed from hosts.
 * Pure: workflows may import it.
 */
import type { z } from 'zod';

export interface ValidationIssue {
  /** Dotted path such as `hosts[0].port`, or `(root)`. */
  readonly path: string;
  readonly message: string;
}

/** Input that does not match its schema. Carries every issue at once, each with its path. */
export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  constructor(
    /** What was validated: `steward.yaml`, `--host`, `dpkg-query output on vps1`. */
    readonly context: string,
    readonly issues: readonly ValidationIssue[],
  ) {
    super(`${context} is invalid:\n${issues.map((i) => `  - ${i.path}: ${i.message}`).join('\n')}`);
  }
}

/** Formats a zod issue path the way operators write it: `hosts[0].port`. */
export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  return path
    .map((seg, i) => (typeof seg === 'number' ? `[${seg}]` : i === 0 ? String(seg) : `.${String(seg)}`))
    .join('');
}

/** Converts zod issues to steward's form; an unknown key names the key itself. */
export function toIssues(error: z.ZodError): ValidationIssue[] {
  return error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => ({ path: formatPath([...issue.path, key]), message: 'is not a known key' }));
    }
    const missing = issue.code === 'invalid_type' && / received undefined$/.test(issue.message);
    return [{ path: formatPath(issue.path), message: missing ? 'is required' : issue.message }];
  });
}

/**
 * Parses `data` with `schema`.
 * @throws ValidationError listing every issue with its path. Never partially applies anything.
 */
export function validate<S extends z.ZodType>(schema: S, data: unknown, context: string): z.infer<S> {
  const result = schema.safeParse(data);
  if (!result.success) throw new ValidationError(context, toIssues(result.error));
  return result.data;
}
