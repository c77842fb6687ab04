/**
 * What a memory check looks at: the consumer container (the gateway for the plugin adapter, the REST server's
 * container otherwise) with its mounts, the mem0 data paths it uses (from the live openclaw.json, since that is what
 * the plugin reads), and where each path lives on the host — on a volume, on a tmpfs lost at restart, or in the
 * container's own filesystem. Resolution is pure; observing is two commands.
 */
import { COMPOSE_PROJECT, GATEWAY_SERVICE, memoryPaths, stackLayout } from '../../model/render/stack';
import type { Spec, Volume } from '../../model/schema';
import { mountOf } from '../../model/units';
import { UnexpectedHostOutput } from '../host/errors';
import type { HostSession } from '../host/session';
import { run } from '../host/shell';

export interface Mount {
  readonly type: string;
  readonly source: string;
  readonly destination: string;
  readonly rw: boolean;
}

/** The container that reads and writes mem0's data. */
export interface Consumer {
  readonly id: string;
  readonly name: string;
  readonly status: string;
  readonly health?: string;
  readonly mounts: readonly Mount[];
  /** Destinations of tmpfs mounts (HostConfig.Tmpfs): empty at every start. */
  readonly tmpfs: readonly string[];
  /** Seconds Docker waits after SIGTERM (compose's stop_grace_period); undefined: Docker's default. */
  readonly stopTimeout?: number;
  /** The image it runs, by ID (`sha256:…`); undefined when the host printed none of that form. */
  readonly image?: string;
}

/** Where a path inside the consumer lives. */
export type Location =
  | { readonly kind: 'mount'; readonly mount: Mount; readonly hostPath: string }
  | { readonly kind: 'tmpfs'; readonly destination: string }
  | { readonly kind: 'container'; readonly note: string };

/** Which role a database plays; the control ids use it. */
export type DatabaseRole = 'history-db' | 'vector-db' | 'db';

export interface DatabaseTarget {
  readonly role: DatabaseRole;
  /** Path as the consumer sees it (plugin adapter), when known. */
  readonly containerPath?: string;
  /** Where it lives, when the path is inside the consumer. */
  readonly location?: Location;
  /** Host path, when the database is on a bind mount (or given as such). */
  readonly hostPath?: string;
}

export interface DirectoryTarget {
  readonly role: 'state-dir' | 'data-dir';
  readonly volume: Volume;
  readonly containerPath: string;
  /** The spec's owner of the volume: the container's ids, the ops user's name, or root. */
  readonly owner: number | string;
  readonly group: number | string;
}

/** A problem of the configuration itself, found before touching any data. */
export interface ConfigIssue {
  readonly control: string;
  readonly expected: string;
  readonly observed: string;
}

export interface MemoryTargets {
  readonly adapter: 'openclaw-plugin' | 'rest';
  readonly consumer?: Consumer;
  readonly directories: readonly DirectoryTarget[];
  readonly databases: readonly DatabaseTarget[];
  readonly configIssues: readonly ConfigIssue[];
  /** Owner the data must have: the container's uid/gid. */
  readonly uid: number;
  readonly gid: number;
  /** The live plugin configuration (plugin adapter), for the plugin's load path. */
  readonly live?: Record<string, unknown>;
}

/** The gateway's working directory: where mem0 puts a relative history path (mem0 #4290). */
const CONTAINER_CWD = '/home/node';
/** mem0's default SQLite vector store when `dbPath` is not set. */
const DEFAULT_VECTOR_DB = '/home/node/.mem0/vector_store.db';
/** mem0's default history path when none is set: relative, so it lands in the working directory. */
const DEFAULT_HISTORY_DB = 'memory.db';

// ---------------------------------------------------------------------------------------------------------------
// Pure resolution

function isUnder(path: string, dir: string): boolean {
  const d = dir.replace(/\/+$/, '');
  return d === '' || path === d || path.startsWith(`${d}/`);
}

/** Normalises `p` against `cwd`: resolves `.`/`..` segments, collapses slashes. */
export function resolvePath(p: string, cwd = CONTAINER_CWD): string {
  const parts: string[] = [];
  for (const seg of (p.startsWith('/') ? p : `${cwd}/${p}`).split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return `/${parts.join('/')}`;
}

/** Where `containerPath` lives: the mount (or tmpfs) with the longest destination that contains it. */
export function locate(containerPath: string, consumer: Pick<Consumer, 'mounts' | 'tmpfs'>): Location {
  const mount = [...consumer.mounts]
    .filter((m) => isUnder(containerPath, m.destination))
    .sort((a, b) => b.destination.length - a.destination.length)[0];
  const tmpfs = consumer.tmpfs.filter((t) => isUnder(containerPath, t)).sort((a, b) => b.length - a.length)[0];
  if (tmpfs !== undefined && (!mount || tmpfs.length >= mount.destination.length)) {
    return { kind: 'tmpfs', destination: tmpfs };
  }
  if (!mount) return { kind: 'container', note: "the container's own filesystem (gone when it is recreated)" };
  if (mount.type === 'tmpfs') return { kind: 'tmpfs', destination: mount.destination };
  const rest = containerPath.slice(mount.destination.replace(/\/+$/, '').length);
  return { kind: 'mount', mount, hostPath: `${mount.source.replace(/\/+$/, '')}${rest}` || '/' };
}

/** Describes a location for evidence: `bind /opt/openclaw/memory → /home/node/memory`. */
export function describeLocation(l: Location): string {
  if (l.kind === 'tmpfs') return `tmpfs ${l.destination} (emptied at every restart)`;
  if (l.kind === 'container') return l.note;
  return `${l.mount.type} ${l.mount.source} → ${l.mount.destination}${l.mount.rw ? '' : ' (read-only)'}`;
}

/** The owner a volume must have, as deploy creates it. */
function volumeOwner(spec: Spec, v: Volume): { owner: number | string; group: number | string } {
  if (v.owner === 'container') return { owner: spec.stack.uid, group: spec.stack.gid };
  if (v.owner === 'ops') return { owner: spec.ssh.opsUser, group: spec.ssh.opsUser };
  return { owner: 0, group: 0 };
}

/** The mem0 plugin's entry in a live openclaw.json, or undefined. */
function pluginConfig(live: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  const entries = (live?.plugins as { entries?: Record<string, unknown> } | undefined)?.entries;
  const entry = entries?.['openclaw-mem0'] as { config?: Record<string, unknown> } | undefined;
  return entry?.config;
}

/**
 * Everything the check looks at, from the spec, the live config (plugin adapter) and the consumer's mounts. Pure.
 * Config issues name what is wrong with the paths themselves: relative, unset, outside the memory volume.
 */
export function resolveTargets(
  spec: Spec,
  live: Record<string, unknown> | undefined,
  consumer: Consumer | undefined,
): MemoryTargets {
  const check = spec.stack.memory.check;
  const state = spec.stack.volumes.find((v) => v.name === 'state')!;
  const memory = spec.stack.volumes.find((v) => v.name === spec.stack.memory.volume)!;
  const dirs: DirectoryTarget[] = [
    { role: 'state-dir', volume: state, containerPath: mountOf(state), ...volumeOwner(spec, state) },
    { role: 'data-dir', volume: memory, containerPath: mountOf(memory), ...volumeOwner(spec, memory) },
  ];
  const issues: ConfigIssue[] = [];
  const databases: DatabaseTarget[] = [];

  if (check.adapter === 'rest') {
    const rest = check.rest!;
    for (const hostPath of rest.databases) {
      const role: DatabaseRole = /history/.test(hostPath) ? 'history-db' : /vector/.test(hostPath) ? 'vector-db' : 'db';
      databases.push({ role, hostPath });
    }
    return {
      adapter: 'rest',
      ...(consumer ? { consumer } : {}),
      directories: dirs,
      databases,
      configIssues: issues,
      uid: rest.uid ?? spec.stack.uid,
      gid: rest.gid ?? spec.stack.gid,
    };
  }

  const cfg = pluginConfig(live);
  const want = memoryPaths(spec);
  const oss = (cfg?.oss ?? {}) as {
    historyDbPath?: unknown;
    vectorStore?: { provider?: unknown; config?: { dbPath?: unknown } };
  };
  if (!cfg) {
    issues.push({
      control: 'memory.config.plugin',
      expected: 'plugins.entries["openclaw-mem0"] in openclaw.json',
      observed: live ? 'absent' : 'openclaw.json unreadable',
    });
  } else if (cfg.mode !== 'open-source') {
    issues.push({
      control: 'memory.config.plugin',
      expected: 'mode open-source',
      observed: `mode ${String(cfg.mode)}`,
    });
  }
  const paths: { role: DatabaseRole; raw: unknown; fallback: string; key: string; wanted: string }[] = [
    {
      role: 'history-db',
      raw: oss.historyDbPath,
      fallback: DEFAULT_HISTORY_DB,
      key: 'oss.historyDbPath',
      wanted: want.history,
    },
  ];
  const vectorProvider = String(oss.vectorStore?.provider ?? 'memory');
  if (vectorProvider === 'memory') {
    paths.push({
      role: 'vector-db',
      raw: oss.vectorStore?.config?.dbPath,
      fallback: DEFAULT_VECTOR_DB,
      key: 'oss.vectorStore.config.dbPath',
      wanted: want.vectors,
    });
  }
  for (const p of paths) {
    const given = typeof p.raw === 'string' && p.raw !== '' ? p.raw : undefined;
    const containerPath = resolvePath(given ?? p.fallback);
    if (!given || !given.startsWith('/')) {
      issues.push({
        control: `memory.config.${p.role}`,
        expected: `absolute path on the memory volume (${p.wanted})`,
        observed: given
          ? `relative "${given}": mem0 resolves it against the working directory (${containerPath})`
          : `${p.key} unset: mem0 defaults to ${containerPath}`,
      });
    } else if (!isUnder(containerPath, want.dir)) {
      issues.push({
        control: `memory.config.${p.role}`,
        expected: `on the memory volume (${want.dir})`,
        observed: containerPath,
      });
    }
    const location = consumer ? locate(containerPath, consumer) : undefined;
    databases.push({
      role: p.role,
      containerPath,
      ...(location ? { location } : {}),
      ...(location?.kind === 'mount' ? { hostPath: location.hostPath } : {}),
    });
  }
  return {
    adapter: 'openclaw-plugin',
    ...(consumer ? { consumer } : {}),
    directories: dirs,
    databases,
    configIssues: issues,
    uid: spec.stack.uid,
    gid: spec.stack.gid,
    ...(live ? { live } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Observing

interface Inspected {
  Id?: string;
  Image?: string;
  Name?: string;
  Config?: { StopTimeout?: number };
  State?: { Status?: string; Health?: { Status?: string } };
  Mounts?: { Type?: string; Source?: string; Destination?: string; RW?: boolean }[];
  HostConfig?: { Tmpfs?: Record<string, string> | null };
}

/** Parses `docker inspect` of one container. */
export function parseConsumer(raw: Inspected): Consumer {
  return {
    id: String(raw.Id ?? ''),
    name: String(raw.Name ?? '').replace(/^\//, ''),
    status: String(raw.State?.Status ?? 'unknown'),
    ...(raw.State?.Health?.Status ? { health: raw.State.Health.Status } : {}),
    mounts: (raw.Mounts ?? []).map((m) => ({
      type: String(m.Type ?? 'bind'),
      source: String(m.Source ?? ''),
      destination: String(m.Destination ?? ''),
      rw: m.RW !== false,
    })),
    tmpfs: Object.keys(raw.HostConfig?.Tmpfs ?? {}),
    ...(typeof raw.Config?.StopTimeout === 'number' ? { stopTimeout: raw.Config.StopTimeout } : {}),
    ...(typeof raw.Image === 'string' && /^sha256:[0-9a-f]{64}$/.test(raw.Image) ? { image: raw.Image } : {}),
  };
}

/** A shell fragment printing `docker inspect` of the consumer, or `[]` when there is none. */
export function consumerStateProbe(spec: Spec): string {
  const check = spec.stack.memory.check;
  if (check.adapter === 'rest') {
    const name = check.rest?.container;
    return name ? `docker inspect ${run(name)} 2>/dev/null || echo '[]'` : `echo '[]'`;
  }
  const filters = [
    '--filter',
    `label=com.docker.compose.project=${COMPOSE_PROJECT}`,
    '--filter',
    `label=com.docker.compose.service=${GATEWAY_SERVICE}`,
  ];
  return `ids=$(docker ps -aq ${run(...filters)}); if [ -n "$ids" ]; then docker inspect $ids; else echo '[]'; fi`;
}

/**
 * Observes the consumer container and the live openclaw.json (plugin adapter) in one round trip and resolves the
 * targets. A missing container or config is not an error: the controls report it.
 */
export async function observeTargets(session: HostSession, spec: Spec): Promise<MemoryTargets> {
  const layout = stackLayout(spec);
  const r = await session.probe({
    consumer: consumerStateProbe(spec),
    config: `cat ${run(layout.openclawJson)} 2>/dev/null || true`,
  });
  let inspected: Inspected[];
  try {
    inspected = JSON.parse(r.consumer.out.trim() || '[]') as Inspected[];
  } catch {
    throw new UnexpectedHostOutput(session.target.name, 'docker inspect of the memory consumer printed no JSON');
  }
  let live: Record<string, unknown> | undefined;
  try {
    live = r.config.out.trim() ? (JSON.parse(r.config.out) as Record<string, unknown>) : undefined;
  } catch {
    live = undefined;
  }
  const first = inspected[0];
  return resolveTargets(spec, live, first ? parseConsumer(first) : undefined);
}
