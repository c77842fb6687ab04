/** Debian packages, installed together with one apt run. */
import type { Change } from '../../model/report';
import type { HostSession } from '../host/session';
import { run } from '../host/shell';
import type { Resource } from './resource';

/** Installed package names among those asked for. */
export type InstalledPackages = ReadonlySet<string>;

const INSTALL_TIMEOUT_MS = 20 * 60_000;

/** Finishes a dpkg run that was interrupted (e.g. a worker killed mid-install), then updates and installs. */
function installScript(names: readonly string[]): string {
  const apt = ['apt-get', '-q', '-o', 'DPkg::Lock::Timeout=600'];
  return [
    'set -e',
    'export DEBIAN_FRONTEND=noninteractive',
    'if [ -n "$(dpkg --audit 2>/dev/null)" ]; then dpkg --configure -a --force-confold; fi',
    run(...apt, 'update'),
    run(...apt, 'install', '-y', '--no-install-recommends', '-o', 'Dpkg::Options::=--force-confold', ...names),
  ].join('\n');
}

/**
 * Packages that must be installed. Does not remove anything.
 * @param onProgress called while apt prints, so the activity can heartbeat.
 */
export function packagesResource(names: readonly string[], onProgress?: () => void): Resource<InstalledPackages> {
  return {
    id: `packages:${names.join(',')}`,
    desired: { kind: 'packages', names },
    probe: `${run('dpkg-query', '-W', '-f=${Package}\\t${db:Status-Abbrev}\\n', ...names)} 2>/dev/null; true`,
    parse: ({ out }) =>
      new Set(
        out
          .split('\n')
          .map((l) => l.split('\t'))
          .filter(([, status]) => status?.startsWith('ii'))
          .map(([name]) => name ?? ''),
      ),
    diff: (installed) =>
      names.filter((n) => !installed.has(n)).map((n): Change => ({ resource: `package:${n}`, action: 'install' })),
    apply: async (session: HostSession, installed) => {
      const missing = names.filter((n) => !installed.has(n));
      await session.check(installScript(missing), {
        label: `apt-get install ${missing.join(' ')}`,
        timeoutMs: INSTALL_TIMEOUT_MS,
        ...(onProgress ? { onOutput: onProgress } : {}),
      });
    },
  };
}
