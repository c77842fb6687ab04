// Whether the compiled CLI in <root>/dist/cli matches its sources (scripts/build-cli.mjs records each one's size and
// modification time): a missing or unreadable record, or any source changed, moved or gone, means no.
import { readFileSync, statSync } from 'node:fs';

/** @param {URL} root the checkout, ending in `/` */
export function builtAndCurrent(root) {
  try {
    const sources = JSON.parse(readFileSync(new URL('dist/cli/sources.json', root), 'utf8'));
    for (const [file, [size, mtime]] of Object.entries(sources)) {
      const s = statSync(new URL(file, root));
      if (s.size !== size || Math.trunc(s.mtimeMs) !== mtime) return false;
    }
    return Object.keys(sources).length > 0;
  } catch {
    return false;
  }
}
