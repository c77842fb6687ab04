/**
 * The model catalogue OpenClaw runs the gateway with, against `models.mode`: `merge` keeps OpenClaw's own catalogue
 * (the models its provider plugins know, such as the OpenRouter models the chain names) beside the models the spec
 * configures; `replace` holds only those, so a chain model left out of them cannot answer. Observed with
 * `openclaw models list --all --json` in the gateway's container, beside the running gateway and its state (the
 * gateway's own `models.list` call shows only the chain, in both modes). Pure.
 */
import { z } from 'zod';
import { issuePath, printedJson } from './printed-json';
import { openclawConfig } from './render/stack';
import { expectedRouting } from './routing';
import type { Spec } from './schema';

/** The catalogue's model keys, `<provider>/<model>`: host text, only ever counted or matched with the spec's. */
export interface ModelCatalogue {
  readonly keys: readonly string[];
}

/** {@link ModelCatalogue} from `openclaw models list --all --json`. @throws Error naming what does not fit. */
export function parseModelsList(stdout: string): ModelCatalogue {
  const doc = z
    .object({ models: z.array(z.object({ key: z.string().max(300) })).max(10_000) })
    .safeParse(printedJson(stdout));
  if (!doc.success) throw new Error(`unexpected output: ${issuePath(doc.error.issues)}`);
  return { keys: doc.data.models.map((m) => m.key) };
}

/** The control `providers.catalogue`. */
export interface CatalogueJudgement {
  readonly control: 'providers.catalogue';
  readonly expected: string;
  readonly observed: string;
  readonly pass: boolean;
}

/** What the spec asks of the catalogue: `models.mode`, the models it configures, and the chain's models. */
export function expectedCatalogue(spec: Spec): { mode: string; configured: string[]; chain: string[] } {
  const config = openclawConfig(spec) as {
    models?: { mode?: unknown; providers?: Record<string, { models?: { id?: unknown }[] }> };
  };
  const { primary, fallbacks } = expectedRouting(spec);
  return {
    mode: typeof config.models?.mode === 'string' ? config.models.mode : 'merge',
    configured: Object.entries(config.models?.providers ?? {}).flatMap(([id, p]) =>
      (Array.isArray(p.models) ? p.models : []).flatMap((m) => (typeof m.id === 'string' ? [`${id}/${m.id}`] : [])),
    ),
    chain: [...(primary ? [primary] : []), ...(fallbacks ?? [])],
  };
}

/**
 * Whether the catalogue is the one `models.mode` asks for: every configured model and every model of the chain listed
 * (a chain model missing from it cannot answer), and under `replace` nothing else; under `merge` OpenClaw's own
 * catalogue adds the models it knows (with its provider plugins), configured or not.
 */
export function judgeCatalogue(spec: Spec, catalogue: ModelCatalogue | { readonly error: string }): CatalogueJudgement {
  const { mode, configured, chain } = expectedCatalogue(spec);
  const expected =
    mode === 'replace'
      ? `replace: the ${configured.length} configured models only, the chain's among them`
      : `merge: the ${configured.length} configured models and OpenClaw's catalogue, the chain's among them`;
  const judged = (observed: string, pass: boolean): CatalogueJudgement => ({
    control: 'providers.catalogue',
    expected,
    observed,
    pass,
  });
  if ('error' in catalogue) return judged(`not read: ${catalogue.error}`, false);
  const listed = new Set(catalogue.keys);
  const missing = [...new Set([...configured, ...chain])].filter((k) => !listed.has(k));
  const own = new Set(configured);
  const others = catalogue.keys.filter((k) => !own.has(k)).length;
  const observed =
    `${catalogue.keys.length} models listed: ${catalogue.keys.length - others} configured, ` +
    `${others} from OpenClaw's catalogue` +
    (missing.length ? `; not listed: ${missing.join(', ')}` : '');
  return judged(observed, missing.length === 0 && (mode !== 'replace' || others === 0));
}
