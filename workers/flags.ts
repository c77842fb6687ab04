/** What `steward worker` accepts in its flags, checked before anything loads the SDK or connects. */

/** A deployment name: no '.', which separates it from the build id in a version's canonical name `<name>.<build id>`. */
export const DEPLOYMENT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$/;

/** A build id, e.g. a release tag or commit, or the default `wf-<digest of the workflow code>`. */
export const BUILD_ID = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,99}$/;

/** The OTLP traces endpoint from OpenTelemetry's standard variables, as its exporters read them. */
export function tracesEndpoint(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const traces = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (traces) return traces;
  const base = env.OTEL_EXPORTER_OTLP_ENDPOINT;
  return base ? `${base.replace(/\/+$/, '')}/v1/traces` : undefined;
}

/** An http(s) URL without credentials in it (they belong in OTEL_EXPORTER_OTLP_HEADERS, which is never printed). */
export function tracesUrlProblem(url: string): string | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return 'not a URL';
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return 'expected http:// or https://';
  if (u.username || u.password) return 'credentials in the URL: put them in OTEL_EXPORTER_OTLP_HEADERS';
  return undefined;
}
