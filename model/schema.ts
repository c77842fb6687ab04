/**
 * The desired state of a steward fleet: `steward.yaml`. This zod schema is the single source of the spec's types,
 * its validation and its published JSON Schema. Pure: workflows import it.
 *
 * Values that end up in host commands are constrained here (names, paths, modes) and quoted again where commands
 * are built, so a spec value can never be executed by a shell.
 */
import { z } from 'zod';
import { policySchema } from './policy-schema';
import { REBOOT_WINDOW_PATTERN } from './reboot-window';
import { reloadableSecret } from './render/stack';
import { DEFAULT_MOUNTS, durationMs } from './units';
import { APPROVABLE_OPERATIONS } from './approval';

// ---------------------------------------------------------------------------------------------------------------
// Scalars

/** A POSIX login or group name as Debian's adduser accepts it. */
export const unixNameSchema = z
  .string()
  .regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'must be a lowercase user or group name (a-z, 0-9, _ and -, at most 32)')
  .meta({ title: 'Unix user or group name' });

/** An absolute, normalised path: no `..` or `.` segments, no doubled or trailing slash, no shell metacharacters. */
export const absolutePathSchema = z
  .string()
  .regex(/^\//, 'must be an absolute path')
  .regex(/^[A-Za-z0-9._/@+-]+$/, 'may contain only letters, digits and . _ / @ + -')
  .refine((p) => !p.split('/').some((s) => s === '..' || s === '.'), 'must not contain "." or ".." segments')
  .refine(
    (p) => p === '/' || (!p.endsWith('/') && !p.includes('//')),
    'must be normalised (no trailing or doubled "/")',
  )
  .meta({ title: 'Absolute path' });

/** An octal file mode such as "0750". Quoted in YAML so it is not read as a number. */
export const fileModeSchema = z
  .string()
  .regex(/^0?[0-7]{3,4}$/, 'must be an octal mode such as "0750" (quote it in YAML)')
  .transform((m) => m.replace(/^0*(?=[0-7]{3,4}$)/, '').padStart(4, '0'))
  .meta({ title: 'Octal file mode' });

const uidSchema = z.number().int().min(0).max(65534);

/** A name steward uses in resource and workflow ids: hosts, volumes, secrets. */
export const resourceNameSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'must be lowercase letters, digits and "-", starting with a letter or digit');

const portSchema = z.coerce
  .number({ error: 'must be a port number' })
  .int('must be a whole number')
  .min(1, 'must be between 1 and 65535')
  .max(65535, 'must be between 1 and 65535');

/** An OpenSSH public key line: `ssh-ed25519 AAAA… [comment]`. */
export const sshPublicKeySchema = z
  .string()
  .regex(
    /^(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)) [A-Za-z0-9+/]+={0,3}( [^\n]*)?$/,
    'must be an OpenSSH public key line such as "ssh-ed25519 AAAA…"',
  );

// ---------------------------------------------------------------------------------------------------------------
// Hosts

export const hostSchema = z
  .strictObject({
    name: resourceNameSchema.describe('Name used in ids, schedules and the Temporal UI'),
    address: z
      .string()
      .min(1, 'is required')
      .regex(/^[A-Za-z0-9.:-]+$/, 'must be a hostname, an IPv4 or an IPv6 address')
      .describe('Hostname or IP address steward connects to'),
    port: portSchema.default(22).describe('SSH port'),
    user: unixNameSchema
      .default('root')
      .describe("First-login user: root or a cloud image's sudo user. Used until the ops user exists"),
    identityFile: z
      .string()
      .min(1)
      .optional()
      .describe('Private key file (relative to the spec file); omit to use the SSH agent (SSH_AUTH_SOCK)'),
    hostKey: sshPublicKeySchema
      .optional()
      .describe("Pinned SSH host key ('ssh-ed25519 AAAA…'); a different key fails before any command runs"),
    trustOnFirstUse: z
      .boolean()
      .default(false)
      .describe('Accept and pin the first host key seen when hostKey is empty; otherwise an unpinned host is refused'),
  })
  .meta({ title: 'Host', description: 'A VPS steward manages over SSH' });

// ---------------------------------------------------------------------------------------------------------------
// Stack

export const volumeSchema = z
  .strictObject({
    name: resourceNameSchema,
    path: absolutePathSchema.describe('Directory on the host'),
    owner: z
      .enum(['container', 'ops', 'root'])
      .default('container')
      .describe("Who owns it: the stack's container uid/gid, the ops user, or root"),
    mode: fileModeSchema.default('0700'),
    mount: absolutePathSchema
      .optional()
      .describe('Where the gateway container sees it; state, memory and workspace have defaults'),
  })
  .meta({ title: 'Volume', description: 'A persistent directory on the host with controlled owner and mode' });

/** A model reference as OpenClaw writes it: `<provider>/<model id>`, e.g. `openrouter/anthropic/claude-sonnet-4.5`. */
const modelRefSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9_-]*\/[A-Za-z0-9._:/@-]+$/,
    'must be "<provider>/<model>", e.g. "openrouter/openai/gpt-5-mini"',
  );

/**
 * An http(s) URL as written. URL parsing drops tabs and newlines, so the text itself is checked too: it ends up in
 * rendered files (the Caddyfile's `acme_ca`, openclaw.json), where a line break or a brace would start new directives.
 */
const httpUrlSchema = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
  .refine(
    (u) => !/[\s\x00-\x1f\x7f{}"'`\\]/.test(u),
    'must not contain whitespace, control characters, quotes, braces or backslashes',
  );

/** A value written as one line of a host file (a sysctl value): no line breaks or other control characters. */
const lineValueSchema = z
  .string()
  .max(256)
  .regex(/^[^\x00-\x1f\x7f]*$/, 'must not contain line breaks or control characters');

/**
 * Host directories no volume may be, lie under or contain: a container that can write one of them (or a parent)
 * can reach the host's configuration, devices, runtime sockets, users' keys or Docker itself.
 */
export const PROTECTED_HOST_PATHS = [
  '/etc',
  '/proc',
  '/sys',
  '/dev',
  '/run',
  '/var/run',
  '/boot',
  '/root',
  '/home',
  '/usr',
  '/bin',
  '/sbin',
  '/lib',
  '/lib64',
  '/var/lib/docker',
];

/** Whether `path` is `dir` or lies under it. */
function within(path: string, dir: string): boolean {
  return path === dir || dir === '/' || path.startsWith(`${dir}/`);
}

/** Names of secrets (keys of `secrets`), as referenced from the stack. */
const secretRefSchema = resourceNameSchema.describe('Name of a secret under `secrets`');

export const gatewaySchema = z
  .strictObject({
    port: portSchema.default(18789).describe('Port the gateway listens on inside its container'),
    hostPort: portSchema.default(18789).describe('Port published on the host, bound to 127.0.0.1 only'),
    bind: z
      .enum(['lan', 'loopback'])
      .default('lan')
      .describe('Gateway bind inside its container: `lan` so the proxy can reach it (the host port stays loopback)'),
    tokenSecret: secretRefSchema.default('gateway-token').describe('Secret holding the gateway auth token'),
    rateLimit: z
      .strictObject({
        maxAttempts: z.number().int().min(1).max(1000).default(10),
        windowMs: z.number().int().min(1000).default(60_000),
        lockoutMs: z.number().int().min(0).default(300_000),
      })
      .prefault({})
      .describe('Failed-auth limiter per client address'),
  })
  .meta({ title: 'Gateway', description: 'The OpenClaw gateway: port, bind and token auth' });

export const providersSchema = z
  .strictObject({
    mode: z
      .enum(['merge', 'replace'])
      .default('merge')
      .describe("`models.mode`: merge the providers below into OpenClaw's catalog, or replace it"),
    openrouter: z
      .strictObject({
        baseUrl: httpUrlSchema.default('https://openrouter.ai/api/v1'),
        apiKeySecret: secretRefSchema.default('openrouter-api-key'),
        models: z
          .array(
            z.strictObject({
              id: z.string().regex(/^[A-Za-z0-9._:/@-]+$/, 'must be a model id such as "openai/gpt-5-mini"'),
              name: z.string().max(200).optional(),
              contextWindow: z.number().int().min(1).optional(),
              maxTokens: z.number().int().min(1).optional(),
            }),
          )
          .default([]),
      })
      .optional()
      .describe('OpenRouter (an OpenAI-compatible router): base URL, API key secret, extra models'),
    primary: modelRefSchema.optional().describe('Primary model of the default agent'),
    fallbacks: z.array(modelRefSchema).default([]).describe('Fallback chain, tried in order'),
    verifyTurn: z
      .boolean()
      .default(true)
      .describe(
        "With a primary model: deploy and `steward verify` send the default agent one short message through the gateway and report which model of the chain answered (one model call, with OpenClaw's system prompt some 18k input tokens); false skips it",
      ),
  })
  .meta({ title: 'Providers', description: 'Model providers and routing' });

/**
 * A harmless tool of an MCP server that verification has the agent call, through the gateway, to prove the server's
 * tools execute (steward cannot tell which of a server's tools change nothing: the spec names one).
 */
const verifyToolSchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/, 'must be a tool name as the server lists it'),
    arguments: z
      .record(z.string(), z.unknown())
      .default({})
      .refine((a) => JSON.stringify(a).length <= 1000, 'must be at most 1000 characters as JSON'),
  })
  .optional()
  .describe(
    "A harmless tool (read-only, no side effects) the verification's agent turn calls once, proving the server's tools execute",
  );

const mcpServerSchema = z.union([
  z.strictObject({
    command: z.string().min(1).max(200),
    args: z.array(z.string().max(1000)).default([]),
    enabled: z.boolean().default(true),
    verifyTool: verifyToolSchema,
  }),
  z.strictObject({
    url: httpUrlSchema,
    transport: z.enum(['streamable-http', 'sse']).default('streamable-http'),
    enabled: z.boolean().default(true),
    verifyTool: verifyToolSchema,
  }),
]);

export const integrationsSchema = z
  .strictObject({
    telegram: z
      .strictObject({
        enabled: z.boolean().default(true),
        botTokenSecret: secretRefSchema.default('telegram-bot-token'),
        dmPolicy: z.enum(['pairing', 'allowlist', 'disabled']).default('pairing'),
        allowFrom: z.array(z.string().regex(/^[0-9]+$/, 'must be a numeric Telegram user id')).default([]),
        apiRoot: httpUrlSchema
          .refine((u) => {
            if (!URL.canParse(u)) return true; // the URL check above names it
            const { protocol, hostname } = new URL(u);
            return protocol === 'https:' || !hostname.includes('.') || hostname === '127.0.0.1';
          }, 'must be https: the bot token is part of every request URL (plain http only to a container on the stack network or loopback)')
          .optional()
          .describe("Bot API root (a self-hosted Bot API server, a relay); default Telegram's own"),
      })
      .optional()
      .describe('Telegram bot; its token reaches the gateway as a file'),
    googleOAuth: z
      .strictObject({
        clientId: z.string().regex(/^[A-Za-z0-9._-]+$/, 'must be an OAuth client id'),
        clientSecretSecret: secretRefSchema.default('google-oauth-client-secret'),
      })
      .optional()
      .describe('Google OAuth client for the Google Meet plugin; the secret reaches the gateway in an env file'),
  })
  .meta({ title: 'Integrations' });

const mem0ProviderSchema = z.strictObject({
  provider: z.enum(['openai', 'ollama']).default('openai'),
  model: z.string().regex(/^[A-Za-z0-9._:/@-]+$/, 'must be a model name'),
  baseUrl: httpUrlSchema.optional().describe('OpenAI- or Ollama-compatible endpoint'),
  apiKeySecret: secretRefSchema.optional(),
});

export const memorySchema = z
  .strictObject({
    mode: z.literal('open-source').default('open-source').describe('mem0 open-source mode (no mem0 platform)'),
    embedder: mem0ProviderSchema
      .extend({
        model: mem0ProviderSchema.shape.model.default('text-embedding-3-small'),
        dimension: z.number().int().min(8).max(8192).default(1536).describe('Vector length the embedder returns'),
      })
      .prefault({}),
    llm: mem0ProviderSchema.extend({ model: mem0ProviderSchema.shape.model.default('gpt-4o-mini') }).prefault({}),
    volume: resourceNameSchema.default('memory').describe('Volume holding the history and vector databases'),
    probeUser: z
      .string()
      .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/)
      .default('steward-probe')
      .describe('mem0 user the memory check writes its canaries under'),
    check: z
      .strictObject({
        adapter: z
          .enum(['openclaw-plugin', 'rest'])
          .default('openclaw-plugin')
          .describe(
            "How `memory check` reaches mem0: the gateway's own mem0 plugin inside its container, or a standalone mem0 REST server",
          ),
        rest: z
          .strictObject({
            url: httpUrlSchema.describe('Base URL of the mem0 REST server as the host reaches it'),
            apiKeySecret: secretRefSchema
              .optional()
              .describe('Secret holding the API key, sent as X-API-Key (a declared secret; never in a command line)'),
            container: z
              .string()
              .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/, 'must be a Docker container name')
              .optional()
              .describe("The server's container: restarted for the persistence proof, its mounts checked"),
            databases: z
              .array(absolutePathSchema)
              .default([])
              .describe("Host paths of the server's SQLite databases (history, vector store)"),
            uid: uidSchema.optional().describe('Owner uid of its data (default stack.uid)'),
            gid: uidSchema.optional().describe('Owner gid of its data (default stack.gid)'),
          })
          .optional()
          .describe('The standalone mem0 REST server (adapter rest)'),
        minFreeMegabytes: z
          .number()
          .int()
          .min(0)
          .default(1024)
          .describe('Free space the state and memory volumes must keep'),
        fileMode: fileModeSchema
          .default('0644')
          .describe('Most permissive mode a database file (and its -wal, -shm, -journal) may have'),
        persistence: z
          .boolean()
          .default(true)
          .describe(
            'Prove a canary written through the gateway reads back in a fresh container with only its volumes (no restart; memory check --restart-proof restarts instead)',
          ),
      })
      .refine((c) => c.adapter !== 'rest' || c.rest !== undefined, {
        message: 'rest is required when adapter is rest',
        path: ['rest'],
      })
      .prefault({})
      .describe('What `steward memory check` proves and how'),
  })
  .meta({ title: 'Memory', description: 'The mem0 plugin in open-source mode, its providers and data paths' });

export const stackSchema = z
  .strictObject({
    profile: z.literal('openclaw').default('openclaw').describe('Stack profile; openclaw is the first and default'),
    installDir: absolutePathSchema.default('/opt/openclaw').describe('Compose project, config and secrets live here'),
    image: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._/:@-]*$/, 'must be an image reference such as "openclaw:2026.9.6"')
      .refine((i) => /[:@]/.test(i.split('/').pop() ?? ''), 'must pin a tag or digest')
      .default('steward/openclaw:2026.9.6')
      .describe('Pinned OpenClaw image'),
    uid: uidSchema.default(1000).describe('uid the gateway container runs as'),
    gid: uidSchema.default(1000).describe('gid the gateway container runs as'),
    volumes: z
      .array(volumeSchema)
      .default([
        { name: 'state', path: '/opt/openclaw/state', owner: 'container', mode: '0700' },
        { name: 'memory', path: '/opt/openclaw/memory', owner: 'container', mode: '0700' },
        { name: 'workspace', path: '/opt/openclaw/workspace', owner: 'container', mode: '0750' },
      ])
      .describe("Persistent directories; state holds OpenClaw's state, memory holds the mem0 databases"),
    gateway: gatewaySchema.prefault({}),
    providers: providersSchema.prefault({}),
    mcp: z
      .strictObject({ servers: z.record(resourceNameSchema, mcpServerSchema).default({}) })
      .prefault({})
      .describe('`mcp.servers`: stdio commands or remote URLs'),
    integrations: integrationsSchema.prefault({}),
    memory: memorySchema.prefault({}),
    settings: z
      .record(z.string(), z.unknown())
      .default({})
      .describe(
        'Further openclaw.json settings, deep-merged over what steward renders; OpenClaw validates them and the policy checks them',
      ),
    healthTimeoutSeconds: z
      .number()
      .int()
      .min(10)
      .max(900)
      .default(240)
      .describe('How long a deploy waits for the new gateway to turn healthy before rolling back'),
    compressImages: z
      .boolean()
      .default(true)
      .describe(
        'gzip image layers (level 1) on their way to the host: 60% fewer bytes, for links under ~200 Mbit/s; false sends them raw, faster on a fast LAN where CPU is the limit',
      ),
  })
  .meta({ title: 'Stack', description: 'The agent stack deployed with Docker Compose' });

// ---------------------------------------------------------------------------------------------------------------
// Provision, SSH

export const provisionSchema = z
  .strictObject({
    packages: z
      .array(z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/, 'must be a Debian package name'))
      .default(['ca-certificates', 'curl', 'sudo', 'nftables', 'sqlite3', 'acl'])
      .describe('Base packages installed on every host'),
    docker: z
      .strictObject({
        logMaxSize: z
          .string()
          .regex(/^[0-9]+[kmg]$/, 'must be a size such as "10m"')
          .default('10m'),
        logMaxFiles: z.number().int().min(1).max(100).default(3),
        liveRestore: z.boolean().default(true),
      })
      .prefault({})
      .describe('Docker daemon settings written to /etc/docker/daemon.json'),
  })
  .meta({ title: 'Provision', description: 'Base packages and Docker engine' });

/** OpenSSH algorithm names (kex, ciphers, MACs). */
const sshAlgorithmSchema = z.string().regex(/^[a-z0-9@.+-]+$/, 'must be an OpenSSH algorithm name');

export const sshSchema = z
  .strictObject({
    port: portSchema.default(22).describe('Port sshd listens on inside the host'),
    opsUser: unixNameSchema.default('steward').describe('The user provision creates and steward uses afterwards'),
    authorizedKeys: z
      .array(sshPublicKeySchema)
      .default([])
      .describe("Extra keys authorised for the ops user (the identity file's public key always is)"),
    allowUsers: z
      .array(unixNameSchema)
      .optional()
      .describe(
        'Users allowed to log in (default: the ops user only). Leaving out the ops user locks steward out: the change reverts itself',
      ),
    allowGroups: z.array(unixNameSchema).default([]),
    permitRootLogin: z.enum(['no', 'prohibit-password']).default('no'),
    maxAuthTries: z.number().int().min(1).max(3).default(3),
    loginGraceTime: z.number().int().min(5).max(120).default(30),
    clientAliveInterval: z.number().int().min(0).max(3600).default(300),
    clientAliveCountMax: z.number().int().min(0).max(10).default(2),
    allowTcpForwarding: z.boolean().default(false),
    allowAgentForwarding: z.boolean().default(false),
    x11Forwarding: z.boolean().default(false),
    kexAlgorithms: z
      .array(sshAlgorithmSchema)
      .min(1)
      .default(['sntrup761x25519-sha512@openssh.com', 'curve25519-sha256', 'curve25519-sha256@libssh.org']),
    ciphers: z
      .array(sshAlgorithmSchema)
      .min(1)
      .default([
        'chacha20-poly1305@openssh.com',
        'aes256-gcm@openssh.com',
        'aes128-gcm@openssh.com',
        'aes256-ctr',
        'aes192-ctr',
        'aes128-ctr',
      ]),
    macs: z
      .array(sshAlgorithmSchema)
      .min(1)
      .default(['hmac-sha2-512-etm@openssh.com', 'hmac-sha2-256-etm@openssh.com', 'umac-128-etm@openssh.com']),
    banner: z
      .string()
      .max(2000)
      .default(
        'Authorised access only. This system is private: all activity is monitored and logged, and evidence of ' +
          'unauthorised use may be passed to law enforcement.',
      )
      .describe('Pre-login banner (also /etc/issue.net); empty for none'),
  })
  .meta({ title: 'SSH', description: 'SSH access and the sshd baseline harden applies' });

/** Whether `s` is an IPv4 or IPv6 address with an optional prefix length in range. Pure (no Node modules). */
export function isIpOrCidr(s: string): boolean {
  const [addr = '', prefix, extra] = s.split('/');
  if (extra !== undefined || (prefix !== undefined && !/^\d{1,3}$/.test(prefix))) return false;
  const v4 = addr.split('.');
  if (v4.length === 4) {
    const ok = v4.every((o) => /^\d{1,3}$/.test(o) && Number(o) <= 255);
    return ok && (prefix === undefined || Number(prefix) <= 32);
  }
  if (!/^[0-9a-fA-F:]+$/.test(addr) || (addr.match(/::/g)?.length ?? 0) > 1) return false;
  const groups = addr.split(':');
  const compressed = addr.includes('::');
  const valid = groups.every((g) => g.length <= 4) && (compressed ? groups.length <= 8 : groups.length === 8);
  return valid && (prefix === undefined || Number(prefix) <= 128);
}

/** An IPv4 or IPv6 address or CIDR block. */
const sourceSchema = z
  .string()
  .refine(isIpOrCidr, 'must be an IP address or CIDR block such as "203.0.113.0/24" or "2001:db8::/32"');

export const ingressRuleSchema = z
  .strictObject({
    port: portSchema,
    protocol: z.enum(['tcp', 'udp']).default('tcp'),
    sources: z.array(sourceSchema).min(1, 'must list at least one source').default(['0.0.0.0/0', '::/0']),
    description: z.string().max(200).optional(),
  })
  .meta({ title: 'Ingress rule' });

export const firewallSchema = z
  .strictObject({
    enabled: z.boolean().default(true),
    ingress: z
      .array(ingressRuleSchema)
      .default([
        { port: 80, protocol: 'tcp', sources: ['0.0.0.0/0', '::/0'], description: 'HTTP (ACME, redirect to HTTPS)' },
        { port: 443, protocol: 'tcp', sources: ['0.0.0.0/0', '::/0'], description: 'HTTPS' },
      ])
      .describe('Inbound ports besides SSH; applies to ports Docker publishes too'),
    sshSources: z.array(sourceSchema).min(1).default(['0.0.0.0/0', '::/0']).describe('Who may reach SSH'),
    sshRateLimit: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(15)
      .describe('New SSH connections per minute per source before dropping'),
    ssh: z
      .boolean()
      .default(true)
      .describe('Allow SSH through the firewall; false cuts steward off and is reverted by commit-confirm'),
  })
  .meta({ title: 'Firewall', description: 'nftables: default-deny ingress, Docker-published ports included' });

const durationSchema = z.string().regex(/^[0-9]+(s|min|h|d|w)$/, 'must be a duration such as "30min", "12h" or "7d"');

export const hardenSchema = z
  .strictObject({
    confirmSeconds: z
      .number()
      .int()
      .min(30)
      .max(120)
      .default(90)
      .describe('Commit-confirm window: a risky change reverts itself unless steward reconnects within it'),
    sysctl: z
      .record(z.string().regex(/^[a-z0-9_.-]+$/, 'must be a sysctl key'), z.union([lineValueSchema, z.number()]))
      .default({})
      .describe('Extra or overriding kernel settings'),
    unattendedUpgrades: z.boolean().default(true),
    fail2ban: z
      .strictObject({
        enabled: z.boolean().default(true),
        maxRetry: z.number().int().min(1).max(20).default(5),
        banTime: durationSchema.default('1h'),
        findTime: durationSchema.default('10min'),
      })
      .prefault({}),
    integrity: z.boolean().default(true).describe('File integrity monitoring of system binaries and configs (AIDE)'),
    processAccounting: z.boolean().default(true),
    securityUpdates: z
      .boolean()
      .default(true)
      .describe('Install pending security updates during harden (unattended-upgrades installs later ones daily)'),
    logShipping: z
      .strictObject({
        collector: z
          .string()
          .regex(/^[A-Za-z0-9.:-]+$/, 'must be a hostname, an IPv4 or an IPv6 address')
          .describe('Syslog collector the host forwards its logs to'),
        port: portSchema.default(514),
        protocol: z
          .enum(['tcp', 'udp', 'tls'])
          .default('tcp')
          .describe("tls: syslog over TLS, the collector's certificate checked against caCertificate and its name"),
        caCertificate: z
          .string()
          .regex(
            /^\s*-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----\s*$/,
            'must be a PEM certificate',
          )
          .optional()
          .describe("CA certificate (PEM) the collector's certificate must chain to; required for tls"),
      })
      .refine((l) => l.protocol !== 'tls' || l.caCertificate !== undefined, {
        message: 'is required when protocol is tls',
        path: ['caCertificate'],
      })
      .optional()
      .describe(
        "Forward the host's logs (the journal, through rsyslog) to a collector; queued on disk while it is down",
      ),
    rebootWindow: z
      .string()
      .regex(REBOOT_WINDOW_PATTERN, 'must be a UTC window such as "02:00-04:00" or "sat,sun 02:00-04:00"')
      .refine((w) => w.slice(-11, -6) !== w.slice(-5), 'must not start when it ends')
      .optional()
      .describe(
        'When harden may reboot a host with a reboot pending (new kernel), then reconnect and verify the stack; unset: never, the pending reboot is reported',
      ),
    auditing: z
      .boolean()
      .default(true)
      .describe(
        'Host auditing: needrestart, debsums and rkhunter on timers, auditd with rules (where the kernel allows), sysstat, apt-show-versions, apt-listchanges',
      ),
    cleanup: z
      .strictObject({
        schedule: z
          .string()
          .regex(/^[A-Za-z0-9 *:,./-]+$/, 'must be a systemd OnCalendar expression')
          .default('daily'),
        dockerPruneAfter: durationSchema
          .default('7d')
          .describe('Prune stopped containers, dangling images and build cache older than this'),
        journalMaxSize: z
          .string()
          .regex(/^[0-9]+[KMG]$/, 'must be a size such as "500M"')
          .default('500M'),
        backupsKeep: z.number().int().min(1).max(365).default(14).describe('Newest steward backups kept per file'),
      })
      .prefault({}),
  })
  .meta({ title: 'Harden', description: 'Kernel, accounts, upgrades, intrusion controls and cleanup timers' });

// ---------------------------------------------------------------------------------------------------------------
// Proxy, secrets

const domainSchema = z
  .string()
  .regex(
    /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$/,
    'must be a lowercase DNS name such as "agent.example.com"',
  );

export const proxySchema = z
  .strictObject({
    image: z
      .string()
      .regex(/^[a-z0-9][a-z0-9._/:@-]*$/, 'must be an image reference')
      .refine((i) => /[:@]/.test(i.split('/').pop() ?? ''), 'must pin a tag or digest')
      .default('steward/caddy:2.6')
      .describe('Pinned Caddy image'),
    domain: domainSchema
      .default('openclaw.home.arpa')
      .describe('Public name of the gateway; the Control UI origin and the certificate name'),
    tls: z
      .enum(['internal', 'acme'])
      .default('internal')
      .describe("`internal`: Caddy's own CA (LANs, tests); `acme`: a public CA such as Let's Encrypt"),
    acmeEmail: z.email().optional().describe('Contact for the ACME account (acme only)'),
    acmeCa: httpUrlSchema.optional().describe("ACME directory URL (default: Let's Encrypt production)"),
    websocketPath: z
      .string()
      .regex(/^\/[A-Za-z0-9._~/-]*$/, 'must be a URL path')
      .default('/')
      .describe('Path of the public WebSocket URL (wss://<domain><path>)'),
    canvasPath: z
      .string()
      .regex(/^\/[A-Za-z0-9._~/-]*$/, 'must be a URL path')
      .default('/__openclaw__/canvas')
      .describe('Path of the hosted canvas documents'),
    subnet: z
      .string()
      .regex(/^(\d{1,3}\.){3}\d{1,3}\/(2[4-9]|30)$/, 'must be an IPv4 /24 to /30 block such as "172.31.250.0/28"')
      .refine(isIpOrCidr, 'must be an IPv4 block')
      .default('172.31.250.0/28')
      .describe("The stack's Docker network; the proxy takes its 2nd address, which the gateway trusts"),
  })
  .meta({ title: 'Proxy', description: 'Caddy terminating TLS in front of the gateway' });

const envNameSchema = z.string().regex(/^[A-Z_][A-Z0-9_]{0,127}$/, 'must be an environment variable name');

export const secretSchema = z
  .strictObject({
    generate: z
      .strictObject({
        length: z.number().int().min(16).max(512).default(48),
        alphabet: z.enum(['base62', 'hex']).default('base62'),
      })
      .optional()
      .describe('Generated on the host; the value never leaves it'),
    external: z
      .union([
        z.strictObject({ env: envNameSchema }),
        z.strictObject({ file: z.string().min(1) }),
        z.strictObject({ command: z.array(z.string().min(1)).min(1) }),
      ])
      .optional()
      .describe("Supplied by the operator: read by steward's worker from an env var, a file or a command's output"),
    minLength: z
      .number()
      .int()
      .min(8)
      .max(512)
      .optional()
      .describe(
        'Shortest value an external source may give (default 16): a shorter one is refused before it reaches a host (a short value is weak, and too common to be scrubbed from messages reliably)',
      ),
    rotateEvery: durationSchema
      .optional()
      .describe(
        'Rotation interval: `steward rotate --due` (and the rotation schedule) rotates it once this has passed',
      ),
    consumers: z
      .array(
        z.strictObject({
          service: z.literal('gateway').describe('Compose service that reads the secret'),
          apply: z
            .enum(['reload', 'restart', 'recreate'])
            .describe(
              '`reload`: the running gateway re-reads the file (`openclaw secrets reload`; only for a secret it reads through a SecretRef: the gateway token, the OpenRouter key); `restart`: the container restarts and reads the new file; `recreate`: it is recreated (re-reads env files too)',
            ),
        }),
      )
      .min(1)
      .optional()
      .describe(
        'Who reads the secret and how a new value reaches them on rotation. Default: the gateway, reloaded for a SecretRef file, restarted for another file, recreated for an env variable',
      ),
  })
  .refine((s) => (s.generate ? 1 : 0) + (s.external ? 1 : 0) === 1, 'must set exactly one of generate or external')
  .meta({ title: 'Secret' });

/** Built-in secrets: the gateway token, generated. External ones are declared by the operator. */
const DEFAULT_SECRETS = { 'gateway-token': { generate: { length: 48, alphabet: 'base62' as const } } };

// ---------------------------------------------------------------------------------------------------------------
// Backups

/**
 * Where restic keeps the snapshots, as restic names it: an absolute path on the worker's machine, `sftp:` to another
 * host, or `s3:` (credentials from the worker's environment, as restic reads them). restic gets it as one argument,
 * never through a shell.
 */
export const repositorySchema = z
  .string()
  .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
  .refine(
    (r) => /^\/[^\0]*$/.test(r) || /^sftp:[^/]+:.+/.test(r) || /^s3:https?:\/\/[^/]+\/.+/.test(r),
    'must be an absolute path on the worker, sftp:USER@HOST:/PATH or s3:https://HOST/BUCKET[/PATH]',
  )
  .refine((r) => !/^\//.test(r) || !r.split('/').includes('..'), 'must not contain ".." segments');

const keepSchema = z.number().int().min(0).max(1000);

export const backupSchema = z
  .strictObject({
    repository: repositorySchema
      .optional()
      .describe('restic repository for `steward backup`; without it, backups and restores are refused'),
    passwordSecret: resourceNameSchema
      .optional()
      .describe(
        "Secret under `secrets` holding the repository's password: external (the worker reads it), never generated on a host",
      ),
    keep: z
      .strictObject({
        daily: keepSchema.default(7).describe('Newest snapshot of each of the last N days'),
        weekly: keepSchema.default(4).describe('... of the last N weeks'),
        monthly: keepSchema.default(6).describe('... of the last N months'),
      })
      .prefault({})
      .describe('Retention per host, applied after each backup (restic forget --prune); the newest is always kept'),
  })
  .refine((b) => !b.repository || b.passwordSecret !== undefined, {
    message: 'is required with a repository',
    path: ['passwordSecret'],
  })
  .meta({
    title: 'Backup',
    description:
      "Snapshots of each host's volumes (SQLite through its online backup), encrypted and deduplicated by restic, off the host",
  });

// ---------------------------------------------------------------------------------------------------------------
// Schedules

/** A refinement: the duration is at least `ms` (a malformed one is left to the format check). */
const atLeast = (ms: number) => (d: string) => !/^[0-9]+(s|min|h|d|w)$/.test(d) || durationMs(d) >= ms;

/** The shortest interval a schedule may have: every run opens SSH sessions to its host and observes it. */
export const MIN_SCHEDULE_INTERVAL_MS = 30_000;

const intervalSchema = durationSchema.refine(
  atLeast(MIN_SCHEDULE_INTERVAL_MS),
  'must be at least 30s: each run logs in to the host and observes it',
);

const schedulePauseSchema = z
  .boolean()
  .optional()
  .describe('Pause this schedule when a run it started fails (default schedules.pauseOnFailure)');

export const schedulesSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .describe('false: `steward schedule apply` removes every schedule it made for this task queue'),
    hosts: z
      .array(resourceNameSchema)
      .optional()
      .describe('Only these hosts get schedules (default: every host of the spec)'),
    catchupWindow: durationSchema
      .refine(atLeast(10_000), 'must be at least 10s')
      .default('10min')
      .describe('A run missed while the Temporal server was unavailable still starts if it is at most this late'),
    pauseOnFailure: z
      .boolean()
      .default(false)
      .describe('Pause a schedule when a run it started fails, until `steward schedule resume`'),
    drift: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Schedule drift on every host'),
        every: intervalSchema.default('15min').describe('How often'),
        repair: z
          .boolean()
          .default(true)
          .describe('Repair what drifted (`drift --repair`); false only plans, the plan kept in the run'),
        audit: z.boolean().default(true).describe("Include OpenClaw's security audit (about 10 s per host)"),
        auditEvery: durationSchema
          .default('24h')
          .describe(
            "Run the audit again at least this often; in between, a run reuses the host's last audit while the " +
              'gateway, openclaw.json and the state permissions are unchanged',
          ),
        pauseOnFailure: schedulePauseSchema,
      })
      .prefault({})
      .describe('Drift repair per host'),
    memory: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Schedule the memory check on every host'),
        every: intervalSchema.default('1h').describe('How often'),
        repair: z.boolean().default(false).describe('Repair what can be repaired safely (`memory check --repair`)'),
        pauseOnFailure: schedulePauseSchema,
      })
      .prefault({})
      .describe('mem0 memory check per host'),
    verify: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe(
            'Schedule `steward verify` on every host: off unless asked for, since its agent turn is a model call',
          ),
        every: intervalSchema.default('6h').describe('How often'),
        pauseOnFailure: schedulePauseSchema,
      })
      .prefault({})
      .describe('Verification of the deployed stack per host, as a deploy verifies it'),
    rotation: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Schedule rotation of every secret with a rotateEvery'),
        checkEvery: intervalSchema
          .default('1d')
          .describe("How often `rotate --due` runs per host and secret (at most the secret's rotateEvery)"),
        pauseOnFailure: schedulePauseSchema,
      })
      .prefault({})
      .describe('Secret rotation: one schedule per host and secret with `secrets.<name>.rotateEvery`'),
    backup: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Back up every host daily (only with a backup.repository)'),
        every: intervalSchema.default('1d').describe('How often'),
        pauseOnFailure: schedulePauseSchema,
      })
      .prefault({})
      .describe('`steward backup` per host, when the spec names a backup repository'),
    drill: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe('Drill a restore of every host weekly (only with a backup.repository)'),
        every: intervalSchema.default('7d').describe('How often'),
        pauseOnFailure: schedulePauseSchema,
      })
      .prefault({})
      .describe('`steward restore --drill` per host: the newest snapshot proven restorable, RPO and RTO recorded'),
    audit: z
      .strictObject({
        enabled: z.boolean().default(false).describe('Export audit histories on a schedule'),
        every: intervalSchema.default('1d').describe('How often'),
        directory: z
          .string()
          .regex(/^\//, 'must be an absolute path')
          .optional()
          .describe("Export chain directory on the worker's machine (`auditExport`); required when enabled"),
        pauseOnFailure: schedulePauseSchema,
      })
      .refine((a) => !a.enabled || a.directory !== undefined, {
        message: 'is required when audit is enabled',
        path: ['directory'],
      })
      .prefault({})
      .describe('Audit export, so histories outlive the namespace retention'),
    watchdog: z
      .strictObject({
        enabled: z
          .boolean()
          .default(true)
          .describe('Look for overdue checks (only when a webhook subscribes to check.overdue)'),
        every: intervalSchema.default('15min').describe('How often'),
        pauseOnFailure: schedulePauseSchema,
      })
      .prefault({})
      .describe(
        "The watchdog: tells webhooks of each of this task queue's schedules that has had no run end for twice its " +
          'interval (paused, failing to start, or its worker gone)',
      ),
  })
  .meta({
    title: 'Schedules',
    description: 'Temporal Schedules `steward schedule apply` keeps in line with this section',
  });

export type Schedules = z.infer<typeof schedulesSchema>;

// ---------------------------------------------------------------------------------------------------------------
// Rollouts

export const rolloutSchema = z
  .strictObject({
    waves: z
      .array(
        z.union([
          z.number().int().min(1, 'a count must be 1 or more'),
          z.string().regex(/^([1-9][0-9]?|100)%$/, 'must be a count or a percentage from 1% to 100%'),
        ]),
      )
      .min(1)
      .optional()
      .describe(
        'Fleet operations go in waves of these sizes (host counts or shares of the fleet, e.g. [1, "25%", "100%"]; ' +
          'the last takes the rest); a wave with a failed host halts the rollout until `steward resume` or `abort`',
      ),
    bake: durationSchema.optional().describe('Pause between two waves'),
    verify: z
      .boolean()
      .default(false)
      .describe(
        "Before the next wave (after the bake), prove the wave's hosts again: a deployed stack verified as " +
          '`steward verify` does, anything else planned again and found unchanged; a host that fails halts the rollout',
      ),
  })
  .refine((r) => r.bake === undefined || r.waves !== undefined, { message: 'needs waves', path: ['bake'] })
  .refine((r) => !r.verify || r.waves !== undefined, { message: 'needs waves', path: ['verify'] })
  .meta({ title: 'Rollout', description: 'How fleet operations roll out when no --waves is given' });

// ---------------------------------------------------------------------------------------------------------------
// Approval

export const approvalSchema = z
  .strictObject({
    operations: z
      .array(z.enum(APPROVABLE_OPERATIONS))
      .default([])
      .describe(
        'Operations that always wait for approval before they apply (as with --require-approval): the run plans, ' +
          'publishes the plan and its digest, and applies only what `steward approve RUN` approved',
      ),
    window: durationSchema
      .default('24h')
      .describe('How long a published plan waits for a decision; then the run ends with nothing applied'),
  })
  .meta({ title: 'Approval', description: 'Changes that need a person to approve their plan first' });

// ---------------------------------------------------------------------------------------------------------------
// Notifications

/** What steward tells webhooks about. */
export const NOTIFICATION_EVENTS = ['run.failed', 'drift.found', 'approval.waiting', 'check.overdue'] as const;
export type NotificationEvent = (typeof NOTIFICATION_EVENTS)[number];

/** Hosts a plaintext webhook may name: this machine only. Anything else must be https. */
const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

const webhookSchema = z
  .strictObject({
    name: resourceNameSchema.describe('Name in reports and logs'),
    url: httpUrlSchema
      .refine((u) => {
        const url = new URL(u);
        return url.protocol === 'https:' || LOOPBACK_HOSTS.has(url.hostname);
      }, 'must be https (plain http only to 127.0.0.1 or localhost)')
      .refine((u) => {
        const url = new URL(u);
        return url.username === '' && url.password === '';
      }, 'must not carry credentials (the signing key authenticates steward)')
      .describe('Where the worker POSTs each notification'),
    format: z
      .enum(['json', 'text'])
      .default('json')
      .describe('json: the event as a JSON document; text: {"text": "…"}, the form chat webhooks accept'),
    signingKeyEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name')
      .describe(
        "The variable in the worker's environment holding the HMAC-SHA256 key (never in the spec): the " +
          'X-Steward-Signature header is sha256=HMAC(key, "<X-Steward-Timestamp>.<body>")',
      ),
    events: z
      .array(z.enum(NOTIFICATION_EVENTS))
      .min(1)
      .default([...NOTIFICATION_EVENTS])
      .describe(
        'run.failed: a run a schedule started failed; drift.found: a scheduled drift run found drift; ' +
          'approval.waiting: a run published its plan and waits for a decision; check.overdue: a schedule had no ' +
          'run end for twice its interval (the watchdog)',
      ),
  })
  .meta({ title: 'Webhook', description: 'A receiver of signed notifications' });

export const notificationsSchema = z
  .strictObject({
    webhooks: z.array(webhookSchema).default([]).describe('Receivers of every notification they subscribe to'),
  })
  .superRefine((n, ctx) => {
    const seen = new Set<string>();
    n.webhooks.forEach((w, i) => {
      if (seen.has(w.name)) ctx.addIssue({ code: 'custom', path: ['webhooks', i, 'name'], message: 'is used twice' });
      seen.add(w.name);
    });
  })
  .meta({
    title: 'Notifications',
    description: 'Webhooks told about trouble found without anyone watching: failed scheduled runs, drift',
  });

export type Webhook = z.infer<typeof webhookSchema>;

// ---------------------------------------------------------------------------------------------------------------
// The spec

export const specSchema = z
  .strictObject({
    version: z.literal(1).describe('Spec format version'),
    hosts: z.array(hostSchema).min(1, 'must list at least one host'),
    stack: stackSchema.prefault({}),
    provision: provisionSchema.prefault({}),
    ssh: sshSchema.prefault({}),
    firewall: firewallSchema.prefault({}),
    harden: hardenSchema.prefault({}),
    proxy: proxySchema.prefault({}),
    secrets: z
      .record(resourceNameSchema, secretSchema)
      .default(DEFAULT_SECRETS)
      .describe('Secrets by name: generated on the host or supplied from outside; they reach hosts only as files'),
    backup: backupSchema.prefault({}),
    policy: policySchema
      .prefault({})
      .describe('Governance: built-in rules (on by default) and your own; a violating spec is refused'),
    schedules: schedulesSchema
      .prefault({})
      .describe(
        'Unattended runs: drift repair, memory checks, secret rotation and audit export, as Temporal Schedules',
      ),
    rollout: rolloutSchema.prefault({}).describe('Fleet operations in waves, unless --waves says otherwise'),
    approval: approvalSchema.prefault({}).describe('Operations that wait for an approved plan before they apply'),
    notifications: notificationsSchema
      .prefault({})
      .describe(
        'Webhooks outside the stack, told when a scheduled run fails or finds drift, or a plan waits for approval',
      ),
  })
  .superRefine((spec, ctx) => {
    const seen = new Map<string, number>();
    spec.hosts.forEach((h, i) => {
      if (seen.has(h.name)) {
        ctx.addIssue({ code: 'custom', path: ['hosts', i, 'name'], message: `duplicates hosts[${seen.get(h.name)}]` });
      }
      seen.set(h.name, i);
    });
    const volumeNames = new Set<string>();
    spec.stack.volumes.forEach((v, i) => {
      if (volumeNames.has(v.name)) {
        ctx.addIssue({ code: 'custom', path: ['stack', 'volumes', i, 'name'], message: 'is used twice' });
      }
      volumeNames.add(v.name);
      if (v.path === spec.stack.installDir) {
        ctx.addIssue({
          code: 'custom',
          path: ['stack', 'volumes', i, 'path'],
          message: 'must be a directory of its own',
        });
      }
      // The container writes its volumes: none may hold, or be held by, what the host or steward keeps apart.
      const dir = spec.stack.installDir;
      const guarded = [...PROTECTED_HOST_PATHS, `${dir}/secrets`, `${dir}/.steward`];
      const clash =
        guarded.find((g) => within(v.path, g) || within(g, v.path)) ?? (within(dir, v.path) ? dir : undefined);
      if (v.path !== dir && (v.path === '/' || clash)) {
        ctx.addIssue({
          code: 'custom',
          path: ['stack', 'volumes', i, 'path'],
          message: `must not be, lie under or contain ${v.path === '/' ? 'the host root' : clash} (the container writes it)`,
        });
      }
      const mount = v.mount ?? DEFAULT_MOUNTS[v.name];
      if (!mount) {
        ctx.addIssue({
          code: 'custom',
          path: ['stack', 'volumes', i, 'mount'],
          message: 'is required for this volume',
        });
      }
    });
    if (!volumeNames.has('state')) {
      ctx.addIssue({ code: 'custom', path: ['stack', 'volumes'], message: 'must include the "state" volume' });
    }
    if (!volumeNames.has(spec.stack.memory.volume)) {
      ctx.addIssue({ code: 'custom', path: ['stack', 'memory', 'volume'], message: 'must name a volume' });
    }
    for (const { path, secret } of secretReferences(spec)) {
      if (!spec.secrets[secret]) {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `names secret "${secret}", which is not declared under secrets`,
        });
      }
    }
    for (const [name, secret] of Object.entries(spec.secrets)) {
      secret.consumers?.forEach((c, i) => {
        if (c.apply === 'reload' && !reloadableSecret(spec, name)) {
          ctx.addIssue({
            code: 'custom',
            path: ['secrets', name, 'consumers', i, 'apply'],
            message:
              'reload needs a secret the gateway reads only through a SecretRef file (the gateway token, the OpenRouter key)',
          });
        }
      });
    }
    if (spec.proxy.tls === 'acme' && !spec.proxy.acmeEmail) {
      ctx.addIssue({ code: 'custom', path: ['proxy', 'acmeEmail'], message: 'is required when tls is acme' });
    }
    const passwordSecret = spec.backup.passwordSecret;
    if (passwordSecret !== undefined) {
      const declared = spec.secrets[passwordSecret];
      if (!declared) {
        ctx.addIssue({
          code: 'custom',
          path: ['backup', 'passwordSecret'],
          message: `names secret "${passwordSecret}", which is not declared under secrets`,
        });
      } else if (!declared.external) {
        ctx.addIssue({
          code: 'custom',
          path: ['backup', 'passwordSecret'],
          message: `names secret "${passwordSecret}", which is generated on the hosts: the repository's password must be external`,
        });
      }
    }
    spec.schedules.hosts?.forEach((name, i) => {
      if (!seen.has(name)) {
        ctx.addIssue({ code: 'custom', path: ['schedules', 'hosts', i], message: `is not a host of the spec` });
      }
    });
  })
  .meta({ title: 'steward.yaml', description: 'Desired state of the hosts and agent stacks steward manages' });

export type Spec = z.infer<typeof specSchema>;
export type SpecInput = z.input<typeof specSchema>;
export type Host = z.infer<typeof hostSchema>;
export type Stack = z.infer<typeof stackSchema>;
export type Volume = z.infer<typeof volumeSchema>;
export type Provision = z.infer<typeof provisionSchema>;
export type Ssh = z.infer<typeof sshSchema>;
export type Firewall = z.infer<typeof firewallSchema>;
export type Harden = z.infer<typeof hardenSchema>;
export type Proxy = z.infer<typeof proxySchema>;
export type Secret = z.infer<typeof secretSchema>;
export type Backup = z.infer<typeof backupSchema>;

/** Every place the stack or its memory check uses a secret, with the spec path that names it. Pure. */
export function secretReferences(spec: Pick<Spec, 'stack'>): { path: (string | number)[]; secret: string }[] {
  const { gateway, providers, integrations, memory } = spec.stack;
  const refs: { path: (string | number)[]; secret: string }[] = [
    { path: ['stack', 'gateway', 'tokenSecret'], secret: gateway.tokenSecret },
  ];
  if (providers.openrouter) {
    refs.push({
      path: ['stack', 'providers', 'openrouter', 'apiKeySecret'],
      secret: providers.openrouter.apiKeySecret,
    });
  }
  if (integrations.telegram) {
    refs.push({
      path: ['stack', 'integrations', 'telegram', 'botTokenSecret'],
      secret: integrations.telegram.botTokenSecret,
    });
  }
  if (integrations.googleOAuth) {
    refs.push({
      path: ['stack', 'integrations', 'googleOAuth', 'clientSecretSecret'],
      secret: integrations.googleOAuth.clientSecretSecret,
    });
  }
  for (const part of ['embedder', 'llm'] as const) {
    const secret = memory[part].apiKeySecret;
    if (secret) refs.push({ path: ['stack', 'memory', part, 'apiKeySecret'], secret });
  }
  const restKey = memory.check.rest?.apiKeySecret;
  if (restKey) refs.push({ path: ['stack', 'memory', 'check', 'rest', 'apiKeySecret'], secret: restKey });
  return refs;
}
