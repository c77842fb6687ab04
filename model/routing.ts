/**
 * Model routing as the gateway runs it, against the routing the spec renders. OpenClaw resolves its default model,
 * its fallback chain and the providers it may call from more than openclaw.json: a provider key in its environment
 * (`OPENAI_API_KEY`) or an auth profile saved in its state makes that provider usable without any config change —
 * "auto-detected", and a model of it can answer. `openclaw models status --json` (read in the gateway container with
 * the security audit, activities/deploy/audit.ts) says what it resolved; this module compares that with the spec.
 */
import { z } from 'zod';
import { openclawConfig } from './render/stack';
import type { Spec } from './schema';

/** What the gateway resolved. Key material never enters it: only provider ids, how each is authorised, variable names. */
export interface Routing {
  /** The default model the gateway resolved, `<provider>/<model>`. */
  readonly primary: string | null;
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
  const start = stdout.indexOf('{');
  if (start === -1) throw new Error('it printed no JSON');
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
    .safeParse(JSON.parse(stdout.slice(start)));
  if (!doc.success) throw new Error(`unexpected output: ${doc.error.issues[0]?.path.join('.')}`);
  const d = doc.data;
  const routing = {
    primary: d.resolvedDefault ?? d.defaultModel ?? null,
    fallbacks: d.fallbacks ?? [],
    providers: (d.auth?.providers ?? []).map((p) => {
      const variable = /^env: ([A-Z][A-Z0-9_]*)$/.exec(p.env?.source ?? '')?.[1];
      return { id: p.provider, kind: p.effective?.kind ?? 'unknown', ...(variable ? { variable } : {}) };
    }),
  };
  const checked = routingSchema.safeParse(routing);
  if (!checked.success) throw new Error(`unexpected value at ${checked.error.issues[0]?.path.join('.')}`);
  return checked.data;
}

/** What the spec routes to: from the rendered openclaw.json, so `stack.settings` counts too. */
export interface ExpectedRouting {
  /** undefined: the spec leaves the default model to OpenClaw, and it is not compared. */
  readonly primary?: string;
  readonly fallbacks?: readonly string[];
  /** Providers the gateway may use: those configured, and those the model chain names. */
  readonly providers: readonly string[];
}

export function expectedRouting(spec: Spec): ExpectedRouting {
  const config = openclawConfig(spec) as {
    models?: { providers?: Record<string, unknown> };
    agents?: { defaults?: { model?: string | { primary?: string; fallbacks?: string[] } } };
  };
  const model = config.agents?.defaults?.model;
  const primary = typeof model === 'string' ? model : model?.primary;
  const fallbacks = typeof model === 'object' ? model.fallbacks : undefined;
  const chain = [primary, ...(fallbacks ?? [])].filter((m): m is string => typeof m === 'string');
  const providers = new Set([
    ...Object.keys(config.models?.providers ?? {}),
    ...chain.map((m) => m.slice(0, m.indexOf('/'))),
  ]);
  return {
    ...(primary !== undefined ? { primary } : {}),
    ...(primary !== undefined || fallbacks !== undefined ? { fallbacks: fallbacks ?? [] } : {}),
    providers: [...providers].sort(),
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
  for (const p of observed.providers) {
    if (p.kind === 'missing' || expected.providers.includes(p.id)) continue;
    out.push({
      resource: `routing:provider:${p.id}`,
      expected: undefined,
      observed: describeKind(p),
      message: `provider ${p.id} is ${describeKind(p)}; the spec does not configure it`,
      ...(p.kind === 'profiles' ? { profile: true as const } : {}),
    });
  }
  for (const id of expected.providers) {
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
