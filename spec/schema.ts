/**
 * The desired state of a steward fleet: `steward.yaml`. This zod schema is the single source of the spec's types,
 * its validation and its published JSON Schema. Pure: workflows import it.
 *
 * Values that end up in host commands are constrained here (names, paths, modes) and quoted again where commands
 * are built, so a spec value can never be executed by a shell.
 */
import { z } from 'zod';

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
  })
  .meta({ title: 'Volume', description: 'A persistent directory on the host with controlled owner and mode' });

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
      .describe('Persistent directories; state holds openclaw.json, memory holds the mem0 databases'),
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

export const sshSchema = z
  .strictObject({
    port: portSchema.default(22),
    opsUser: unixNameSchema.default('steward').describe('The user provision creates and steward uses afterwards'),
    authorizedKeys: z
      .array(sshPublicKeySchema)
      .default([])
      .describe("Extra keys authorised for the ops user (the identity file's public key always is)"),
  })
  .meta({ title: 'SSH', description: 'SSH access and baseline' });

// ---------------------------------------------------------------------------------------------------------------
// The spec

export const specSchema = z
  .strictObject({
    version: z.literal(1).describe('Spec format version'),
    hosts: z.array(hostSchema).min(1, 'must list at least one host'),
    stack: stackSchema.prefault({}),
    provision: provisionSchema.prefault({}),
    ssh: sshSchema.prefault({}),
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
