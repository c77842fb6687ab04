/**
 * `steward upgrade HOST --to VERSION`: the run's spec names the new release's image; once the upgrade succeeded, the
 * spec file says so too (`stack.image`, its comments and layout kept), so the next deploy or drift repair keeps the
 * new version instead of going back.
 */
import { readFile, rename, stat, writeFile } from 'node:fs/promises';
import { parseDocument } from 'yaml';
import type { Spec } from '../../model/schema';
import { UsageError } from '../errors';

/** A release as npm and the image tags spell it. */
const VERSION = /^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$/;

/** `current`'s repository at `version`. @throws UsageError for an image pinned by digest. */
export function imageAt(current: string, version: string): string {
  if (current.includes('@')) {
    throw new UsageError(`stack.image ${current} is pinned by digest: put the new image in the spec and deploy`);
  }
  const slash = current.lastIndexOf('/');
  const colon = current.lastIndexOf(':');
  return `${colon > slash ? current.slice(0, colon) : current}:${version}`;
}

export async function upgradeChange(
  specPath: string,
  version: string,
  quiet: boolean,
): Promise<{ spec: (spec: Spec) => Spec; after: () => Promise<void> }> {
  if (!VERSION.test(version)) {
    throw new UsageError(`--to ${JSON.stringify(version)}: must be a release such as 2026.9.6`);
  }
  let image = '';
  return {
    spec: (spec) => {
      image = imageAt(spec.stack.image, version);
      return { ...spec, stack: { ...spec.stack, image } };
    },
    after: async () => {
      const doc = parseDocument(await readFile(specPath, 'utf8'));
      doc.setIn(['stack', 'image'], image);
      const tmp = `${specPath}.steward-upgrade`;
      await writeFile(tmp, doc.toString(), { mode: (await stat(specPath)).mode & 0o777 });
      await rename(tmp, specPath);
      if (!quiet) console.log(`${specPath}: stack.image is now ${image}`);
    },
  };
}
