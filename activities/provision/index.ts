/**
 * Provision: make a fresh Debian VPS ready for the stack — base packages, Docker engine and its daemon config,
 * the ops user steward uses afterwards, and the stack's directory layout with owner and mode.
 */
import type { Spec } from '../../model/schema';
import type { Change } from '../../model/report';
import { activityStep, heartbeat, targetOf, type ActivityDeps, type StepInput, type StepResult } from '../context';
import { CommandFailed, UnsupportedHost, VerificationFailed } from '../host/errors';
import { dockerOver } from '../host/docker';
import { openSession, type HostSession, type HostTarget } from '../host/session';
import { run } from '../host/shell';
import { converge } from '../resources/resource';
import { resourcesOf } from '../catalogue';
import { opsUserKeys } from './resources';

export interface HostFacts {
  /** Key the host presented (pin it when it was trusted on first use). */
  readonly hostKey: string;
  /** The user steward is logged in as: the ops user once it exists, else the first-login user. */
  readonly user: string;
  readonly os: string;
  readonly arch: string;
}

export function createProvisionActivities({ pool }: ActivityDeps) {
  const session = (input: StepInput) => pool.get(targetOf(input));

  return {
    /**
     * Connects (verifying or, where allowed, pinning the host key) and checks the host is one steward manages:
     * Debian-like with systemd and non-interactive sudo. Read-only.
     * @throws non-retryable HostKeyMismatch, HostKeyNotPinned, AuthenticationFailed, UnsupportedHost.
     */
    async inspectHost(input: StepInput): Promise<HostFacts> {
      return activityStep(async () => {
        const s = await session(input);
        const p = await s.probe({
          os: '. /etc/os-release && echo "$ID $VERSION_ID $ID_LIKE"',
          arch: 'uname -m',
          sudo: 'true',
          systemd: 'test -d /run/systemd/system',
        });
        if (p.sudo.code !== 0) throw new UnsupportedHost(input.host, `${s.user} cannot run sudo without a password`);
        const os = p.os.out.trim();
        if (!/^(debian|ubuntu)\b|\bdebian\b/.test(os)) {
          throw new UnsupportedHost(input.host, `unsupported OS "${os}": steward manages Debian and Ubuntu hosts`);
        }
        if (p.systemd.code !== 0) throw new UnsupportedHost(input.host, 'systemd is not running');
        return { hostKey: s.hostKey, user: s.user, os, arch: p.arch.out.trim() };
      });
    },

    /** Installs the spec's base packages. Safe to retry: resumes an interrupted dpkg run. */
    async ensureBasePackages(input: StepInput): Promise<StepResult> {
      return activityStep(async () => {
        const changes = await converge(
          await session(input),
          resourcesOf('provision.packages', { ...input, onProgress: heartbeat }),
          input.mode,
        );
        return { changes, findings: [] };
      });
    },

    /**
     * Installs Docker engine and compose, writes daemon.json (log rotation, live-restore), keeps the service
     * enabled and running, restarts it only when its config changed, and verifies the effective settings.
     */
    async ensureDockerEngine(input: StepInput): Promise<StepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const [packages, config, service] = resourcesOf('provision.docker', { ...input, onProgress: heartbeat });
        const changes: Change[] = await converge(s, [packages!], input.mode);
        const configChanges = await converge(s, [config!], input.mode);
        changes.push(...configChanges, ...(await converge(s, [service!], input.mode)));
        const contentChanged = configChanges.some(
          (c) => c.action === 'create' || (c.after as { sha256?: string })?.sha256,
        );
        if (contentChanged) {
          if (input.mode === 'apply') {
            await s.check(run('systemctl', 'restart', 'docker'), {
              label: 'systemctl restart docker',
              timeoutMs: 180_000,
            });
          }
          changes.push({ resource: 'service:docker', action: 'restart' });
        }
        if (input.mode === 'apply') await verifyDockerSettings(s, input.spec);
        return { changes, findings: [] };
      });
    },

    /**
     * Creates the ops user with sudo and docker access and authorises steward's key, then proves it with a new SSH
     * login as that user (`sudo -n true`, Docker API over SSH). Later steps log in as the ops user.
     */
    async ensureOpsUser(input: StepInput): Promise<StepResult> {
      return activityStep(async () => {
        const target = targetOf(input);
        const s = await pool.get(target);
        const ops = input.spec.ssh.opsUser;
        const keys = await opsUserKeys(input.spec, target);
        if (keys.length === 0) {
          throw new UnsupportedHost(
            input.host,
            'no key to authorise for the ops user: set hosts[].identityFile or ssh.authorizedKeys',
          );
        }
        const changes = await converge(s, resourcesOf('provision.ops-user', { ...input, keys }), input.mode);
        if (input.mode === 'apply' && (changes.length > 0 || s.user !== ops)) {
          await proveOpsLogin(target, s.hostKey);
          await pool.forget(target);
        }
        return { changes, findings: [] };
      });
    },

    /** Creates the install dir and volumes with the spec's owner and mode; corrects drifted owners and modes. */
    async ensureStackLayout(input: StepInput): Promise<StepResult> {
      return activityStep(async () => {
        const resources = resourcesOf('provision.layout', input);
        return { changes: await converge(await session(input), resources, input.mode), findings: [] };
      });
    },
  };
}

/** Effective daemon settings, read back from the running engine. */
async function verifyDockerSettings(s: HostSession, spec: Spec): Promise<void> {
  const r = await s.check(run('docker', 'info', '--format', '{{.LoggingDriver}} {{.LiveRestoreEnabled}}'), {
    label: 'docker info',
    timeoutMs: 60_000,
  });
  const [driver, liveRestore] = r.stdout.trim().split(' ');
  const ok = driver === 'json-file' && liveRestore === String(spec.provision.docker.liveRestore);
  if (!ok)
    throw new VerificationFailed(s.target.name, [`docker daemon (logging ${driver}, live-restore ${liveRestore})`]);
}

/** A fresh login as the ops user proves the key, sudo and Docker access (the API, without sudo) before steward relies on them. */
async function proveOpsLogin(target: HostTarget, hostKey: string): Promise<void> {
  const ops = await openSession({ ...target, hostKey }, target.opsUser);
  try {
    const r = await ops.script('true', { label: 'sudo -n true' });
    if (r.code !== 0) throw new CommandFailed(target.name, `sudo -n true as ${target.opsUser}`, r.code, r.stderr);
    const info = (await dockerOver(ops, false).info()) as { ServerVersion?: string };
    if (!info.ServerVersion) throw new VerificationFailed(target.name, [`docker API as ${target.opsUser}`]);
  } finally {
    await ops.close();
  }
}
