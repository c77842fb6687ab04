/**
 * What provision owns on a host, as resources: the Docker engine and its daemon config, the ops user with its keys
 * and sudoers file, the stack's directory layout. The catalogue (activities/catalogue.ts) hands them to the steps.
 */
import { readFile } from 'node:fs/promises';
import ssh2 from 'ssh2';
import type { Spec } from '../../model/schema';
import { directoryResource, fileResource, type DirectorySpec } from '../resources/files';
import { packagesResource } from '../resources/packages';
import type { Resource } from '../resources/resource';
import { serviceResource, userResource } from '../resources/system';

/** Debian packages of the Docker engine and compose. */
export const DOCKER_PACKAGES = ['docker.io', 'docker-compose'] as const;

/** The daemon.json steward owns: bounded json-file logs and live-restore. */
export function dockerDaemonConfig(spec: Spec): string {
  const d = spec.provision.docker;
  const config = {
    'log-driver': 'json-file',
    'log-opts': { 'max-size': d.logMaxSize, 'max-file': String(d.logMaxFiles) },
    'live-restore': d.liveRestore,
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** The install dir and every volume, with owners resolved to the ops user or the container's ids. */
export function stackDirectories(spec: Spec): DirectorySpec[] {
  const ops = spec.ssh.opsUser;
  const { installDir, uid, gid } = spec.stack;
  return [
    { path: installDir, owner: 'root', group: ops, mode: '0750' },
    ...spec.stack.volumes.map((v): DirectorySpec => {
      const [owner, group] = v.owner === 'container' ? [uid, gid] : v.owner === 'ops' ? [ops, ops] : ['root', 'root'];
      return { path: v.path, owner, group, mode: v.mode };
    }),
  ];
}

/** Docker engine and compose packages, daemon.json, the service: in apply order. */
export function dockerResources(spec: Spec, host: string, onProgress?: () => void): Resource[] {
  return [
    packagesResource(DOCKER_PACKAGES, onProgress),
    fileResource(
      {
        path: '/etc/docker/daemon.json',
        content: dockerDaemonConfig(spec),
        owner: 'root',
        group: 'root',
        mode: '0644',
      },
      host,
    ),
    serviceResource('docker'),
  ];
}

/** Keys authorised for the ops user: the identity file's public key and `ssh.authorizedKeys`. */
export async function opsUserKeys(spec: Spec, target: { identityFile?: string }): Promise<string[]> {
  return [...(target.identityFile ? [await publicKeyOf(target.identityFile)] : []), ...spec.ssh.authorizedKeys];
}

/** The ops user with sudo and docker groups, its authorised keys and a `visudo`-checked sudoers file. */
export function opsUserResources(spec: Spec, host: string, keys: readonly string[]): Resource[] {
  const ops = spec.ssh.opsUser;
  const home = `/home/${ops}`;
  return [
    userResource({ name: ops, groups: ['sudo', 'docker'], shell: '/bin/bash' }, host),
    directoryResource({ path: `${home}/.ssh`, owner: ops, group: ops, mode: '0700' }, host),
    fileResource(
      { path: `${home}/.ssh/authorized_keys`, content: `${keys.join('\n')}\n`, owner: ops, group: ops, mode: '0600' },
      host,
    ),
    fileResource(
      {
        path: `/etc/sudoers.d/steward-${ops}`,
        content: `# Managed by steward: the ops user runs privileged steps non-interactively.\n${ops} ALL=(ALL:ALL) NOPASSWD: ALL\n`,
        owner: 'root',
        group: 'root',
        mode: '0440',
        validate: ['visudo', '-cf'],
      },
      host,
    ),
  ];
}

/** The OpenSSH public key line provision authorises for the ops user, from a private key file. */
export async function publicKeyOf(identityFile: string): Promise<string> {
  const parsed = ssh2.utils.parseKey(await readFile(identityFile, 'utf8'));
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error)
    throw new Error(`cannot read ${identityFile}: ${key instanceof Error ? key.message : 'no key'}`);
  return `${key.type} ${key.getPublicSSH().toString('base64')} steward`;
}
