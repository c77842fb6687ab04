#!/usr/bin/env node
// Entry point: the compiled CLI (dist/cli, scripts/build-cli.mjs) while every source it was built from is unchanged,
// else the TypeScript sources through tsx, so a checkout works without a build step and an edit is never ignored.
import { builtAndCurrent } from './build-freshness.js';

const root = new URL('../', import.meta.url);
if (process.env.STEWARD_FROM_SOURCE !== '1' && builtAndCurrent(root)) {
  await import(new URL('dist/cli/cli.js', root).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../client/cli.ts');
}
