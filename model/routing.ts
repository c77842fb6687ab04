/**
 * Model routing as the gateway runs it, against the routing the spec renders. OpenClaw resolves its default model,
 * its fallback chain and the providers it may call from more than openclaw.json: a provider key in its environment
 * (`OPENAI_API_KEY`) or an auth profile saved in its state makes that provider usable without any config change —
 * "auto-detected", and a model of it can answer. `openclaw models status --json` (read in the gateway container with
 * the security audit, activities/deploy/audit.ts) says what it resolved; this module compares that with the spec.
 */
import { z } from 'zod';
import { issuePath, printedJson } from './printed-json';
import { openclawConfig } from './render/stack';
import type { Finding } from './report';
import type { Spec } from './schema';

/** What the gateway resolved. Key material never enters it: only provider ids, how each is authorised, variable names. */
export interface Routing {
  /** The gateway's default model, `<provider>/<model>`, as configured. */
  readonly primary: string | null;
  /** The default as OpenClaw resolved it, when that differs (a provider alias renamed). */
  readonly resolved?: string;
  readonly fallbacks: readonly string[];
  /** Each provider the gateway can authenticate to (or was told of and cannot). */
  readonly providers: readonly RoutedProvider[];
}

export interface RoutedProvider {
  readonly id: string;
  /** `env` (a variable in its environment), `profiles` (a saved auth profile), `models.json` (its config), … */
  readonly kind: string;
  /** The environment variable, for `env`. */
  readonly variable?: string;
}

const ref = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,199}$/);
const providerId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/);

/** The cached form of {@link Routing} (parsed as untrusted input, like the whole audit cache). */
export const routingSchema = z.strictObject({
  primary: ref.nullable(),
  /** The default as OpenClaw resolved it, when that differs (a provider alias renamed). */
  resolved: ref.optional(),
  fallbacks: z.array(ref).max(50),
  providers: z
    .array(
      z.strictObject({
        id: providerId,
        kind: z.string().regex(/^[a-z][a-z.-]{0,39}$/),
        variable: z
          .string()
          .regex(/^[A-Z][A-Z0-9_]{0,99}$/)
          .optional(),
      }),
    )
    .max(100),
});

/**
 * {@link Routing} from `openclaw models status --json`, keeping only ids, kinds and variable names (its `detail` and
 * `value` fields hold key prefixes and suffixes: never read). @throws Error naming what does not fit.
 */
export function parseModelsStatus(stdout: string): Routing {
  const json = printedJson(stdout);
  const doc = z
    .object({
      resolvedDefault: z.string().nullable().optional(),
      defaultModel: z.string().nullable().optional(),
      fallbacks: z.array(z.string()).optional(),
      auth: z
        .object({
          providers: z
            .array(
              z.object({
                provider: z.string(),
                effective: z.object({ kind: z.string() }).optional(),
                env: z.object({ source: z.string() }).optional(),
              }),
            )
            .optional(),
        })
        .optional(),
    })
    .safeParse(json);
  if (!doc.success) throw new Error(`unexpected output: ${issuePath(doc.error.issues)}`);
  const d = doc.data;
  // The default as configured: OpenClaw's resolved form renames some providers (aliases), the spec's may not.
  const routing = {
    primary: d.defaultModel ?? d.resolvedDefault ?? null,
    ...(d.resolvedDefault && d.resolvedDefault !== d.defaultModel ? { resolved: d.resolvedDefault } : {}),
    fallbacks: d.fallbacks ?? [],
    providers: (d.auth?.providers ?? []).map((p) => {
      const variable = /^env: ([A-Z][A-Z0-9_]*)$/.exec(p.env?.source ?? '')?.[1];
      return { id: p.provider, kind: p.effective?.kind ?? 'unknown', ...(variable ? { variable } : {}) };
    }),
  };
  const checked = routingSchema.safeParse(routing);
  if (!checked.success) throw new Error(`unexpected value at ${issuePath(checked.error.issues)}`);
  return checked.data;
}

/** What the spec routes to: from the rendered openclaw.json, so `stack.settings` counts too. */
export interface ExpectedRouting {
  /** undefined: the spec leaves the default model to OpenClaw, and it is not compared. */
  readonly primary?: string;
  readonly fallbacks?: readonly string[];
  /** Providers the gateway may use: those configured, and those the model chain names. */
  readonly providers: readonly string[];
  /** Providers configured under `models.providers`, each of which must have a usable key. */
  readonly configured: readonly string[];
}

export function expectedRouting(spec: Spec): ExpectedRouting {
  const config = openclawConfig(spec) as {
    models?: { providers?: Record<string, unknown> };
    agents?: { defaults?: { model?: string | { primary?: string; fallbacks?: string[] } } };
  };
  const model = config.agents?.defaults?.model;
  const primary = typeof model === 'string' ? model : model?.primary;
  const fallbacks = typeof model === 'object' ? model.fallbacks : undefined;
  const chain = [primary, ...(fallbacks ?? [])].filter((m): m is string => typeof m === 'string' && m.includes('/'));
  const configured = Object.keys(config.models?.providers ?? {}).sort();
  const providers = new Set([...configured, ...chain.map((m) => m.slice(0, m.indexOf('/')))]);
  return {
    ...(primary !== undefined ? { primary } : {}),
    ...(primary !== undefined || fallbacks !== undefined ? { fallbacks: fallbacks ?? [] } : {}),
    providers: [...providers].sort(),
    configured,
  };
}

/** One way the running routing differs from the spec's: a drift row, a failing control. */
export interface RoutingDifference {
  /** `routing:default-model`, `routing:fallbacks`, `routing:provider:<id>`. */
  readonly resource: string;
  readonly expected: unknown;
  readonly observed: unknown;
  /** One line for a person. */
  readonly message: string;
  /** A provider made usable by an auth profile in the agent's own state (nothing steward renders brings it back). */
  readonly profile?: true;
}

/** How a provider is usable, as a person reads it. */
function describeKind(p: RoutedProvider): string {
  if (p.kind === 'env') return `auto-detected from ${p.variable ?? 'its environment'}`;
  if (p.kind === 'profiles') return 'auto-detected from an auth profile in the state directory';
  return `usable (${p.kind})`;
}

export function routingDifferences(expected: ExpectedRouting, observed: Routing): RoutingDifference[] {
  const out: RoutingDifference[] = [];
  if (expected.primary !== undefined && observed.primary !== expected.primary) {
    out.push({
      resource: 'routing:default-model',
      expected: expected.primary,
      observed: observed.primary,
      message: `the gateway's default model is ${observed.primary ?? 'none'}, not ${expected.primary}`,
    });
  }
  if (expected.fallbacks && JSON.stringify(observed.fallbacks) !== JSON.stringify(expected.fallbacks)) {
    out.push({
      resource: 'routing:fallbacks',
      expected: expected.fallbacks,
      observed: observed.fallbacks,
      message: `the gateway's fallback chain is [${observed.fallbacks.join(', ')}], not [${expected.fallbacks.join(', ')}]`,
    });
  }
  // The provider of the resolved default is the configured one under OpenClaw's name for it.
  const allowed = new Set(expected.providers);
  if (observed.resolved && observed.primary === expected.primary) {
    allowed.add(observed.resolved.slice(0, observed.resolved.indexOf('/')));
  }
  for (const p of observed.providers) {
    if (p.kind === 'missing' || allowed.has(p.id)) continue;
    out.push({
      resource: `routing:provider:${p.id}`,
      expected: undefined,
      observed: describeKind(p),
      message: `provider ${p.id} is ${describeKind(p)}; the spec does not configure it`,
      ...(p.kind === 'profiles' ? { profile: true as const } : {}),
    });
  }
  for (const id of expected.configured) {
    const p = observed.providers.find((o) => o.id === id);
    if (p && p.kind !== 'missing') continue;
    out.push({
      resource: `routing:provider:${id}`,
      expected: 'usable',
      observed: p ? 'no usable key' : 'unknown to the gateway',
      message: `provider ${id} of the spec has ${p ? 'no usable key' : 'not reached the gateway'}`,
    });
  }
  return out;
}

/**
 * The routing as drift and deploy verification both judge it: the differences a deploy renders away (what the config
 * and environment decide), and findings for the rest — a provider an auth profile in the agent's own state makes
 * usable (no deploy removes it), or a routing that could not be read.
 */
export function judgeRouting(
  spec: Spec,
  routing: Routing | { readonly error: string },
): { differences: RoutingDifference[]; findings: Finding[] } {
  if ('error' in routing) {
    const message = `model routing not read: ${routing.error}`;
    return { differences: [], findings: [{ id: 'openclaw.routing.unavailable', severity: 'medium', message }] };
  }
  const all = routingDifferences(expectedRouting(spec), routing);
  return {
    differences: all.filter((d) => !d.profile),
    findings: all
      .filter((d) => d.profile)
      .map((d) => ({
        id: 'openclaw.routing.auth-profile',
        severity: 'medium',
        message: `${d.message} (the profile is the agent's own: a repair leaves it; \`openclaw models auth logout\` in the gateway removes it)`,
        resource: d.resource,
      })),
  };
}

/** `primary then fallback, …` for a person; undefined without a primary. */
export function describeChain(
  primary: string | null | undefined,
  fallbacks: readonly string[] = [],
): string | undefined {
  return primary ? `${primary}${fallbacks.length ? ` then ${fallbacks.join(', ')}` : ''}` : undefined;
}
