/**
 * OpenClaw plugins as the gateway's image has them: `openclaw plugins list --json`, run in the gateway container,
 * lists every plugin it found with its status (`loaded`, `disabled`, …). steward's Google OAuth client is consumed by
 * the Google Meet plugin, which is an external plugin OpenClaw does not bundle: without it, `openclaw config validate`
 * only warns and nothing uses the client id and secret. This module reads the list as untrusted input and judges the
 * spec's `stack.integrations.googleOAuth` by it. Pure.
 */
import { z } from 'zod';
import { issuePath, printedJson } from './printed-json';
import type { Spec } from './schema';

/** The plugin that consumes `integrations.googleOAuth`. */
export const GOOGLE_OAUTH_PLUGIN = 'google-meet';

/** Plugin id → its status, as listed. */
export interface PluginList {
  readonly plugins: Readonly<Record<string, string>>;
}

const id = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/);
const status = z.string().regex(/^[a-z][a-z-]{0,39}$/);

/** {@link PluginList} from `openclaw plugins list --json`. @throws Error naming what does not fit. */
export function parsePluginList(stdout: string): PluginList {
  const doc = z
    .object({ plugins: z.array(z.object({ id: z.string(), status: z.string().optional() })).max(1000) })
    .safeParse(printedJson(stdout));
  if (!doc.success) throw new Error(`unexpected output: ${issuePath(doc.error.issues)}`);
  const plugins: Record<string, string> = {};
  for (const p of doc.data.plugins) {
    if (!id.safeParse(p.id).success) continue;
    plugins[p.id] = status.safeParse(p.status).success ? p.status! : 'unknown';
  }
  return { plugins };
}

/**
 * `integrations.google-oauth` when the spec configures the Google OAuth client: the plugin that uses it loaded in
 * the gateway. Nothing when the spec has none.
 */
export function judgeGoogleOAuth(
  spec: Spec,
  list: PluginList | { error: string },
): { control: string; expected: string; observed: string; pass: boolean }[] {
  const oauth = spec.stack.integrations.googleOAuth;
  if (!oauth) return [];
  const control = 'integrations.google-oauth';
  const expected = `plugin ${GOOGLE_OAUTH_PLUGIN} loaded, using client ${oauth.clientId}`;
  if ('error' in list) return [{ control, expected, observed: `not probed: ${list.error}`, pass: false }];
  const state = list.plugins[GOOGLE_OAUTH_PLUGIN];
  if (state === undefined) {
    const observed = `plugin ${GOOGLE_OAUTH_PLUGIN} is not installed in the gateway's image: nothing uses the client id and secret`;
    return [{ control, expected, observed, pass: false }];
  }
  return [{ control, expected, observed: `plugin ${GOOGLE_OAUTH_PLUGIN} ${state}`, pass: state === 'loaded' }];
}
