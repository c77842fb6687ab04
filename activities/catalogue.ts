/**
 * The catalogue: every resource provision, harden and deploy own on a host, in apply order, by the step that applies
 * it. A step activity converges its slice ({@link resourcesOf}); drift observes the union ({@link catalogue}). So a
 * resource added to a slice is applied, planned, drift-checked and repaired with no other change.
 *
 * A few slices are observed here but applied by their step's own procedure (secret files are generated or written
 * from their source, containers come up through compose, the effective sshd settings follow the config file); their
 * resources refuse `apply` and say which operation repairs them.
 */
import type { Change } from '../model/report';
import type { Spec } from '../model/schema';
import type { AppliedOperation } from '../model/sections';
import { consumedSecrets, sourceLabel } from './deploy/secrets';
import { containersResource, renderStack, stackDirectories as deployDirectories } from './deploy/stack';
import {
  auditingResources,
  auditingServiceResources,
  needrestartResources,
  securityUpdatesResource,
} from './harden/auditing';
import { firewallResources } from './harden/firewall';
import { secretPaths } from './rotate/host';
import { loggingResources, loggingServiceResources } from './harden/logging';
import { accountResources, kernelResources } from './harden/kernel';
import {
  integrityBaselineResources,
  intrusionResources,
  intrusionServiceResources,
  securityPackages,
  upgradeResources,
} from './harden/services';
import { compareSshd, parseSshdT, sshResources, SSHD_DROP_IN } from './harden/ssh';
import { CLEANUP_TIMERS, cleanupResources, cleanupTimerResources } from './harden/timers';
import type { ProbeResult } from './host/session';
import { run } from './host/shell';
import { dockerResources, opsUserResources, stackDirectories } from './provision/resources';
import { directoryResource, fileResource } from './resources/files';
import { packagesResource } from './resources/packages';
import type { Resource } from './resources/resource';

/** What building a slice needs: the spec and host, the ops user's keys, a heartbeat for long package runs. */
export interface CatalogueContext {
  readonly spec: Spec;
  readonly host: string;
  /** Keys authorised for the ops user (`opsUserKeys`); only the ops-user slice reads them. */
  readonly keys?: readonly string[];
  /**
   * SHA-256 of each external secret's value as its source gives it now, by name (read on the worker; drift compares
   * the host's file with it). A secret without one is compared by owner and mode only.
   */
  readonly secretDigests?: Readonly<Record<string, string>>;
  readonly onProgress?: () => void;
}

interface Slice {
  readonly operation: AppliedOperation;
  readonly build: (c: CatalogueContext) => Resource[];
  /** The drift row a resource reports under, when several describe one thing (a unit file and its timer). */
  readonly item?: (r: Resource) => string | undefined;
  /** Whether drift observes the slice for this spec (default: always). */
  readonly watched?: (spec: Spec) => boolean;
}

/** The stack rendered once per spec object: drift builds two slices from it on every run. */
const renders = new WeakMap<Spec, ReturnType<typeof renderStack>>();
export function rendered(spec: Spec): ReturnType<typeof renderStack> {
  let r = renders.get(spec);
  if (!r) renders.set(spec, (r = renderStack(spec)));
  return r;
}

const timerItem = (r: Resource) => {
  const t = CLEANUP_TIMERS.find((name) => r.id.includes(name));
  return t ? `timer:${t}` : undefined;
};

/** Every slice, in apply order. */
export const CATALOGUE = {
  'provision.packages': {
    operation: 'provision',
    build: (c) => [packagesResource(c.spec.provision.packages, c.onProgress)],
  },
  'provision.docker': { operation: 'provision', build: (c) => dockerResources(c.spec, c.host, c.onProgress) },
  'provision.ops-user': { operation: 'provision', build: (c) => opsUserResources(c.spec, c.host, c.keys ?? []) },
  'provision.layout': {
    operation: 'provision',
    build: (c) => stackDirectories(c.spec).map((d) => directoryResource(d, c.host)),
  },
  'harden.kernel': { operation: 'harden', build: (c) => kernelResources(c.spec, c.host) },
  'harden.accounts': { operation: 'harden', build: (c) => accountResources(c.spec, c.host) },
  'harden.restarts': { operation: 'harden', build: (c) => needrestartResources(c.spec, c.host) },
  'harden.security-packages': {
    operation: 'harden',
    build: (c) => [packagesResource(securityPackages(c.spec), c.onProgress)],
  },
  // Installed by harden, not drift-checked: a newly published update is not drift.
  'harden.security-updates': {
    operation: 'harden',
    build: (c) => (c.spec.harden.securityUpdates ? [securityUpdatesResource(c.host, c.onProgress)] : []),
    watched: () => false,
  },
  'harden.upgrades': { operation: 'harden', build: (c) => upgradeResources(c.spec, c.host) },
  'harden.intrusion': { operation: 'harden', build: (c) => intrusionResources(c.spec, c.host) },
  'harden.intrusion-services': { operation: 'harden', build: (c) => intrusionServiceResources(c.spec) },
  'harden.logging': { operation: 'harden', build: (c) => loggingResources(c.spec, c.host) },
  'harden.logging-services': { operation: 'harden', build: (c) => loggingServiceResources(c.spec) },
  'harden.auditing': { operation: 'harden', build: (c) => auditingResources(c.spec, c.host) },
  'harden.auditing-services': { operation: 'harden', build: (c) => auditingServiceResources(c.spec) },
  'harden.cleanup': { operation: 'harden', build: (c) => cleanupResources(c.spec, c.host), item: timerItem },
  'harden.cleanup-timers': { operation: 'harden', build: () => cleanupTimerResources(), item: timerItem },
  'harden.ssh': {
    operation: 'harden',
    build: (c) => sshResources(c.spec, c.host),
    item: (r) => (r.id === `file:${SSHD_DROP_IN}` ? 'sshd:config' : undefined),
  },
  'harden.sshd-effective': {
    operation: 'harden',
    build: (c) => [sshdEffectiveResource(c.spec, c.host)],
    item: () => 'sshd:config',
  },
  // The ruleset file, its unit and the live table are one thing to an operator: the firewall. Disabled, harden
  // still applies a ruleset that removes steward's table, and drift leaves the firewall alone.
  'harden.firewall': {
    operation: 'harden',
    build: (c) => firewallResources(c.spec, c.host),
    item: () => 'firewall:nftables',
    watched: (spec) => spec.firewall.enabled,
  },
  // Last in harden: the file integrity baseline is the hardened host.
  'harden.integrity-baseline': { operation: 'harden', build: (c) => integrityBaselineResources(c.spec) },
  'deploy.layout': { operation: 'deploy', build: (c) => deployDirectories(c.spec, c.host) },
  'deploy.secrets': {
    operation: 'deploy',
    build: (c) => consumedSecrets(c.spec).map((name) => secretFileResource(c.spec, name, c.secretDigests?.[name])),
  },
  'deploy.files': { operation: 'deploy', build: (c) => rendered(c.spec).files.map((f) => fileResource(f, c.host)) },
  'deploy.containers': {
    operation: 'deploy',
    build: (c) => [containersResource(c.spec, c.host, rendered(c.spec))],
  },
} as const satisfies Record<string, Slice>;

export type SliceName = keyof typeof CATALOGUE;

/** One slice's resources: what its step converges. */
export function resourcesOf(name: SliceName, c: CatalogueContext): Resource[] {
  return CATALOGUE[name].build(c);
}

/** A catalogue resource with the operation that owns it and the slice it came from. */
export interface CatalogueEntry {
  readonly resource: Resource;
  readonly operation: AppliedOperation;
  readonly slice: SliceName;
  readonly item?: string;
}

/**
 * Every resource of every slice drift watches for this spec, each id once (the first slice that names it owns it),
 * in apply order.
 */
export function catalogue(c: CatalogueContext): CatalogueEntry[] {
  const seen = new Set<string>();
  const entries: CatalogueEntry[] = [];
  for (const [slice, def] of Object.entries(CATALOGUE) as [SliceName, Slice][]) {
    if (def.watched && !def.watched(c.spec)) continue;
    for (const resource of def.build(c)) {
      if (seen.has(resource.id)) continue;
      seen.add(resource.id);
      const item = def.item?.(resource);
      entries.push({ resource, operation: def.operation, slice, ...(item ? { item } : {}) });
    }
  }
  return entries;
}

/** Effective sshd settings against the spec: the baseline as sshd itself reports it. */
function sshdEffectiveResource(spec: Spec, host: string): Resource {
  return {
    id: 'sshd:effective',
    probe: `e=$(mktemp) && { sshd -T 2>"$e"; c=$?; sed 's/^/! /' "$e"; rm -f "$e"; exit "$c"; }`,
    parse: (r: ProbeResult) => parseSshdT(host, r),
    diff: (o) => {
      const failing = compareSshd(spec, o as ReturnType<typeof parseSshdT>).filter((c) => c.status === 'fail');
      if (failing.length === 0) return [];
      return [
        {
          resource: 'sshd:effective',
          action: 'update',
          before: Object.fromEntries(failing.map((c) => [c.control.replace(/^ssh\./, ''), c.observed])),
          after: Object.fromEntries(failing.map((c) => [c.control.replace(/^ssh\./, ''), c.expected])),
        },
      ];
    },
    apply: async () => {
      throw new Error('sshd:effective is repaired by harden');
    },
  };
}

/**
 * A secret file: present, owned by the gateway's uid/gid, mode 0600; with `digest` (an external secret's source,
 * hashed on the worker), holding its source's value. Only SHA-256s leave the host, never a value. A secret steward
 * has rotated on the host must hold one of its versions there instead: which one is live is rotate's (a rotation
 * rolled back keeps the old value while the source already gives the new), and `steward rotate` moves it.
 */
function secretFileResource(spec: Spec, name: string, digest?: string): Resource {
  const { live: path, versionsDir } = secretPaths(spec, name);
  const id = `secret:${name}`;
  const want = { owner: `${spec.stack.uid}:${spec.stack.gid}`, mode: '0600' };
  const versions = `${run(versionsDir)}/*`;
  const hash = digest
    ? `; sha256sum < ${run(path)} | cut -c1-64; if [ -d ${run(versionsDir)} ]; then echo rotated; ` +
      `for f in ${versions}; do [ -f "$f" ] && sha256sum < "$f" | cut -c1-64; done; fi`
    : '';
  return {
    id,
    probe: `if [ -s ${run(path)} ]; then ${run('stat', '-c', '%u:%g 0%a', path)}${hash}; else echo absent; fi`,
    parse: (r) => r.out.trim(),
    diff: (o): Change[] => {
      const [observed = '', live = '', rotated, ...versions] = String(o)
        .split('\n')
        .map((l) => l.trim());
      if (observed === 'absent') return [{ resource: id, action: 'create', after: want }];
      const [owner, mode] = observed.split(' ');
      const m = (mode ?? '').replace(/^0+(?=\d{4})/, '');
      // Rotated: the live file must be one of its versions (which one is live is rotate's); else the source's value.
      const replaced = digest !== undefined && (rotated === 'rotated' ? !versions.includes(live) : live !== digest);
      if (owner === want.owner && m === want.mode && !replaced) return [];
      return [
        {
          resource: id,
          action: 'update',
          before: { owner, mode: m, ...(replaced ? { value: 'not the value of its source' } : {}) },
          after: { ...want, ...(replaced ? { value: `from ${sourceLabel(spec.secrets[name]!)}` } : {}) },
        },
      ];
    },
    apply: async () => {
      throw new Error(`${id} is repaired by deploy`);
    },
  };
}
