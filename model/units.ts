/**
 * Pure helpers over spec values that workflows use as well as the schema: free of zod, because every workflow run
 * evaluates its own copy of the modules it imports.
 */

const DURATION_MS: Readonly<Record<string, number>> = {
  s: 1000,
  min: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** Milliseconds in a spec duration (`30s`, `15min`, `12h`, `7d`, `2w`). @throws Error for anything else. */
export function durationMs(duration: string): number {
  const m = /^([0-9]+)(s|min|h|d|w)$/.exec(duration);
  if (!m) throw new Error(`not a duration: ${duration}`);
  return Number(m[1]) * DURATION_MS[m[2]!]!;
}

/** Where the gateway container mounts the well-known volumes when the spec gives no `mount`. */
export const DEFAULT_MOUNTS: Readonly<Record<string, string>> = {
  state: '/home/node/.openclaw',
  memory: '/home/node/memory',
  workspace: '/home/node/workspace',
};

/** The volume's mount point inside the gateway container. */
export function mountOf(v: { readonly name: string; readonly mount?: string | undefined }): string {
  return v.mount ?? DEFAULT_MOUNTS[v.name] ?? `/home/node/${v.name}`;
}
