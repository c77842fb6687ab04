/**
 * What deploy writes to a host, rendered from the spec alone: the compose project, `openclaw.json` and the
 * Caddyfile, plus where each lives and which secrets reach which container. Pure (workflows import it), so plan,
 * apply and drift all compare the host against the same bytes.
 *
 * Secrets never appear here: the gateway reads them from files (`/run/secrets/<name>`, OpenClaw SecretRefs of the
 * `file` source) or from an env file steward assembles on the host; the rendered files only name them.
 */
import type { Spec } from '../schema';
import { mountOf } from '../units';

/** uid/gid of Caddy in steward/caddy (images/caddy/Dockerfile). */
export const PROXY_UID = 1001;
/** Path of the mem0 plugin inside steward/openclaw (its image label steward.openclaw.plugin-path.openclaw-mem0). */
export const MEM0_PLUGIN_PATH = '/opt/openclaw/plugins/openclaw-mem0/node_modules/@mem0/openclaw-mem0';
export const COMPOSE_PROJECT = 'openclaw';
export const GATEWAY_SERVICE = 'gateway';
export const PROXY_SERVICE = 'proxy';

/**
 * Label carrying a digest of the container's own compose definition: docker-compose recreates a container when that
 * definition changes, so comparing the label with the rendered one tells a plan which ones it will recreate (the
 * contents of an env file, which compose folds in too, are compared elsewhere by variable name only).
 */
export const DEFINITION_LABEL = 'steward.definition-sha256';

/** Where everything lives on the host, under the install dir. */
export interface StackLayout {
  readonly installDir: string;
  readonly composeFile: string;
  readonly openclawJson: string;
  readonly proxyDir: string;
  readonly caddyfile: string;
  readonly proxyData: string;
  readonly proxyConfig: string;
  readonly secretsDir: string;
  readonly gatewayEnv: string;
  /** steward's own bookkeeping: the live release's manifest and the previous release, for rollback. */
  readonly releaseDir: string;
  /** Caddy's internal CA root, which the verification trusts (internal TLS). */
  readonly proxyRootCa: string;
}

export function stackLayout(spec: Spec): StackLayout {
  const dir = spec.stack.installDir;
  const state = spec.stack.volumes.find((v) => v.name === 'state')!;
  return {
    installDir: dir,
    composeFile: `${dir}/compose.yaml`,
    openclawJson: `${state.path}/openclaw.json`,
    proxyDir: `${dir}/proxy`,
    caddyfile: `${dir}/proxy/Caddyfile`,
    proxyData: `${dir}/proxy/data`,
    proxyConfig: `${dir}/proxy/config`,
    secretsDir: `${dir}/secrets`,
    gatewayEnv: `${dir}/secrets/gateway.env`,
    releaseDir: `${dir}/.steward`,
    proxyRootCa: `${dir}/proxy/data/caddy/pki/authorities/local/root.crt`,
  };
}

/** The stack network's fixed addresses: the proxy (trusted for forwarded headers) and the gateway. */
export function stackAddresses(spec: Spec): { proxy: string; gateway: string; subnet: string } {
  const [base = '', prefix] = spec.proxy.subnet.split('/');
  const n = base.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const network = n - (n % 2 ** (32 - Number(prefix)));
  const ip = (k: number) => [24, 16, 8, 0].map((s) => ((network + k) >>> s) & 255).join('.');
  return { subnet: `${ip(0)}/${prefix}`, proxy: ip(2), gateway: ip(3) };
}

/** How a secret reaches the gateway. */
export type SecretDelivery =
  | { readonly secret: string; readonly kind: 'file'; readonly path: string }
  | { readonly secret: string; readonly kind: 'env'; readonly variable: string };

/** Every secret the stack consumes and how: files under /run/secrets, or variables in the gateway's env file. */
export function secretDeliveries(spec: Spec): SecretDelivery[] {
  const { gateway, providers, integrations, memory } = spec.stack;
  const file = (secret: string): SecretDelivery => ({ secret, kind: 'file', path: `/run/secrets/${secret}` });
  const out: SecretDelivery[] = [file(gateway.tokenSecret)];
  if (providers.openrouter) out.push(file(providers.openrouter.apiKeySecret));
  if (integrations.telegram) out.push(file(integrations.telegram.botTokenSecret));
  if (integrations.googleOAuth) {
    out.push({
      secret: integrations.googleOAuth.clientSecretSecret,
      kind: 'env',
      variable: 'OPENCLAW_GOOGLE_MEET_CLIENT_SECRET',
    });
  }
  if (memory.embedder.apiKeySecret) {
    out.push({ secret: memory.embedder.apiKeySecret, kind: 'env', variable: 'STEWARD_MEM0_EMBEDDER_API_KEY' });
  }
  if (memory.llm.apiKeySecret) {
    out.push({ secret: memory.llm.apiKeySecret, kind: 'env', variable: 'STEWARD_MEM0_LLM_API_KEY' });
  }
  const seen = new Set<string>();
  return out.filter((d) => {
    const key = d.kind === 'file' ? `file:${d.secret}` : `env:${d.variable}`;
    return !seen.has(key) && (seen.add(key), true);
  });
}

/**
 * The file deliveries OpenClaw reads through a SecretRef (a file provider in `openclaw.json`): the gateway re-reads
 * them on `openclaw secrets reload`, without a restart. The Telegram bot token is read by the channel itself.
 */
export function secretRefDeliveries(spec: Spec): (SecretDelivery & { kind: 'file' })[] {
  const telegram = spec.stack.integrations.telegram?.botTokenSecret;
  return secretDeliveries(spec).filter(
    (d): d is SecretDelivery & { kind: 'file' } => d.kind === 'file' && d.secret !== telegram,
  );
}

/** Whether every delivery of `secret` is a SecretRef file, so a reload brings the gateway to a new value. */
export function reloadableSecret(spec: Spec, secret: string): boolean {
  const deliveries = secretDeliveries(spec).filter((d) => d.secret === secret);
  const refs = new Set(secretRefDeliveries(spec).map((d) => d.secret));
  return deliveries.length > 0 && deliveries.every((d) => d.kind === 'file' && refs.has(d.secret));
}

/** The OpenClaw SecretRef for a secret delivered as a file. */
function fileRef(secret: string): { source: 'file'; provider: string; id: 'value' } {
  return { source: 'file', provider: providerAlias(secret), id: 'value' };
}

function providerAlias(secret: string): string {
  return `steward-${secret}`;
}

/** The mem0 plugin's data paths inside the container: absolute, on the memory volume. */
export function memoryPaths(spec: Spec): { dir: string; history: string; vectors: string } {
  const volume = spec.stack.volumes.find((v) => v.name === spec.stack.memory.volume)!;
  const dir = mountOf(volume);
  return { dir, history: `${dir}/history.db`, vectors: `${dir}/vector_store.db` };
}

function mem0Provider(
  p: Spec['stack']['memory']['embedder'] | Spec['stack']['memory']['llm'],
  variable: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const config: Record<string, unknown> = { model: p.model, ...extra };
  if (p.baseUrl) config[p.provider === 'ollama' ? 'url' : 'baseURL'] = p.baseUrl;
  if (p.apiKeySecret) config.apiKey = `\${${variable}}`;
  return { provider: p.provider, config };
}

/** `openclaw.json` as an object: what steward manages, with `stack.settings` deep-merged over it. */
export function openclawConfig(spec: Spec): Record<string, unknown> {
  const { gateway, providers, mcp, integrations, memory } = spec.stack;
  const addresses = stackAddresses(spec);
  const workspace = spec.stack.volumes.find((v) => v.name === 'workspace');
  const paths = memoryPaths(spec);

  const secretProviders = Object.fromEntries(
    secretRefDeliveries(spec).map((d) => [
      providerAlias(d.secret),
      { source: 'file', path: d.path, mode: 'singleValue' },
    ]),
  );

  const model: Record<string, unknown> = {};
  if (providers.primary) model.primary = providers.primary;
  if (providers.fallbacks.length > 0) model.fallbacks = providers.fallbacks;

  const config: Record<string, unknown> = {
    gateway: {
      mode: 'local',
      bind: gateway.bind,
      port: gateway.port,
      auth: { mode: 'token', token: fileRef(gateway.tokenSecret), rateLimit: gateway.rateLimit },
      controlUi: { allowedOrigins: [`https://${spec.proxy.domain}`] },
      trustedProxies: [addresses.proxy],
    },
    secrets: { providers: secretProviders },
    update: { checkOnStart: false },
    models: {
      mode: providers.mode,
      catalogRefresh: { enabled: false },
      providers: providers.openrouter
        ? {
            openrouter: {
              baseUrl: providers.openrouter.baseUrl,
              api: 'openai-completions',
              apiKey: fileRef(providers.openrouter.apiKeySecret),
              models: providers.openrouter.models.map((m) => ({ ...m, name: m.name ?? m.id })),
            },
          }
        : {},
    },
    agents: {
      defaults: {
        ...(workspace ? { workspace: mountOf(workspace) } : {}),
        ...(Object.keys(model).length > 0 ? { model } : {}),
      },
    },
    // `verifyTool` is steward's (the verification's tool call), not OpenClaw's.
    mcp: {
      servers: Object.fromEntries(
        Object.entries(mcp.servers).map(([name, { verifyTool: _, ...server }]) => [name, server]),
      ),
    },
    plugins: {
      load: { paths: [MEM0_PLUGIN_PATH] },
      slots: { memory: 'openclaw-mem0' },
      entries: {
        'openclaw-mem0': {
          enabled: true,
          hooks: { allowConversationAccess: true },
          config: {
            mode: memory.mode,
            userId: memory.probeUser,
            oss: {
              embedder: mem0Provider(memory.embedder, 'STEWARD_MEM0_EMBEDDER_API_KEY', {
                embeddingDims: memory.embedder.dimension,
              }),
              vectorStore: {
                provider: 'memory',
                config: { dbPath: paths.vectors, dimension: memory.embedder.dimension },
              },
              llm: mem0Provider(memory.llm, 'STEWARD_MEM0_LLM_API_KEY'),
              historyDbPath: paths.history,
            },
          },
        },
        ...(integrations.googleOAuth
          ? { 'google-meet': { enabled: true, config: { oauth: { clientId: integrations.googleOAuth.clientId } } } }
          : {}),
      },
    },
  };
  if (integrations.telegram) {
    const t = integrations.telegram;
    config.channels = {
      telegram: {
        enabled: t.enabled,
        tokenFile: `/run/secrets/${t.botTokenSecret}`,
        dmPolicy: t.dmPolicy,
        ...(t.allowFrom.length > 0 ? { allowFrom: t.allowFrom } : {}),
        ...(t.apiRoot ? { apiRoot: t.apiRoot } : {}),
      },
    };
  }
  return deepMerge(config, spec.stack.settings);
}

/** Objects merge key by key; anything else in `over` replaces. */
export function deepMerge(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const b = out[k];
    out[k] = isPlainObject(b) && isPlainObject(v) ? deepMerge(b, v) : v;
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Strict JSON: the mem0 plugin reads this file itself with JSON.parse. */
export function renderOpenclawJson(spec: Spec): string {
  return `${JSON.stringify(openclawConfig(spec), null, 2)}\n`;
}

export function renderCaddyfile(spec: Spec): string {
  const { proxy, stack } = spec;
  const upstream = `${stackAddresses(spec).gateway}:${stack.gateway.port}`;
  const global =
    proxy.tls === 'internal'
      ? ['\tlocal_certs', '\tskip_install_trust']
      : [`\temail ${proxy.acmeEmail}`, ...(proxy.acmeCa ? [`\tacme_ca ${proxy.acmeCa}`] : [])];
  return [
    '# Rendered by steward from steward.yaml; changes here are drift.',
    '{',
    ...global,
    '}',
    '',
    `${proxy.domain} {`,
    ...(proxy.tls === 'internal' ? ['\ttls internal'] : []),
    '\theader Strict-Transport-Security "max-age=31536000"',
    `\t# HTTP, the WebSocket URL (${proxy.websocketPath}) and the canvas (${proxy.canvasPath}) all go to the gateway;`,
    '\t# Caddy replaces any X-Forwarded-For a client sends, which the gateway trusts from this address only.',
    '\t# While the gateway restarts, a request waits (retrying the dial every 250 ms, up to 30 s) instead of failing.',
    `\treverse_proxy ${upstream} {`,
    '\t\tlb_try_duration 30s',
    '\t\tlb_try_interval 250ms',
    '\t}',
    '}',
    '',
  ].join('\n');
}

/**
 * The compose project (docker-compose v1 file format 3.8). Config files are not part of it: both containers take a
 * changed config without being recreated (OpenClaw watches openclaw.json in its state volume; Caddy reads its
 * directory again on `caddy reload`), so only an image, mount, port or environment change recreates one. Each service
 * is labelled with `digestOf` its definition ({@link DEFINITION_LABEL}).
 */
export function composeProject(spec: Spec, digestOf: (definition: unknown) => string): Record<string, unknown> {
  const { stack, proxy } = spec;
  const layout = stackLayout(spec);
  const addresses = stackAddresses(spec);
  const deliveries = secretDeliveries(spec);
  const files = deliveries.filter((d) => d.kind === 'file').map((d) => d.secret);
  const hasEnv = deliveries.some((d) => d.kind === 'env');
  const hardening = {
    restart: 'unless-stopped',
    read_only: true,
    cap_drop: ['ALL'],
    security_opt: ['no-new-privileges:true'],
  };
  const tmpfs = (path: string) => `${path}:size=256m,uid=${stack.uid},gid=${stack.gid},mode=0700`;
  const labelled = (definition: Record<string, unknown>) => ({
    ...definition,
    labels: { [DEFINITION_LABEL]: digestOf(definition) },
  });
  return {
    version: '3.8',
    services: {
      [GATEWAY_SERVICE]: labelled({
        image: stack.image,
        // OpenClaw's state lease names its owner by hostname: a stable one lets a recreated container reclaim the
        // lease of one that was killed, instead of waiting out its five-minute expiry.
        hostname: `${COMPOSE_PROJECT}-${GATEWAY_SERVICE}`,
        user: `${stack.uid}:${stack.gid}`,
        ...hardening,
        tmpfs: [tmpfs('/tmp'), tmpfs('/home/node/.cache')],
        // The gateway drains and releases its state lock on SIGTERM; that takes longer than Docker's default 10 s.
        stop_grace_period: '60s',
        ports: [`127.0.0.1:${stack.gateway.hostPort}:${stack.gateway.port}`],
        volumes: stack.volumes.map((v) => `${v.path}:${mountOf(v)}`),
        ...(stack.gateway.port !== 18789 ? { environment: { OPENCLAW_GATEWAY_PORT: String(stack.gateway.port) } } : {}),
        ...(hasEnv ? { env_file: [layout.gatewayEnv] } : {}),
        secrets: files,
        networks: { edge: { ipv4_address: addresses.gateway } },
      }),
      [PROXY_SERVICE]: labelled({
        image: proxy.image,
        ...hardening,
        sysctls: { 'net.ipv4.ip_unprivileged_port_start': '0' },
        ports: ['80:80', '443:443'],
        // The directory, not the file: a Caddyfile replaced by rename is seen by the next `caddy reload`.
        volumes: [`${layout.proxyDir}:/etc/caddy:ro`, `${layout.proxyData}:/data`, `${layout.proxyConfig}:/config`],
        depends_on: [GATEWAY_SERVICE],
        networks: { edge: { ipv4_address: addresses.proxy, aliases: [proxy.domain] } },
      }),
    },
    networks: { edge: { ipam: { config: [{ subnet: addresses.subnet }] } } },
    secrets: Object.fromEntries(files.map((s) => [s, { file: `${layout.secretsDir}/${s}` }])),
  };
}

/** The images a deploy needs on the host. */
export function stackImages(spec: Spec): string[] {
  return [spec.stack.image, spec.proxy.image];
}
