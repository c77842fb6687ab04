/** Whether the compiled CLI in <root>/dist/cli matches its sources (build-freshness.js). */
export function builtAndCurrent(root: URL): boolean;
