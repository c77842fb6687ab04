/**
 * Which parts of the spec each operation applies. A drifted resource whose operation's section changed since that
 * operation last applied on the host is an intentional change (the spec moved); otherwise the host moved and the
 * drift is corrective. Pure.
 */
import type { Spec } from './schema';

export type AppliedOperation = 'provision' | 'harden' | 'deploy';

export const APPLIED_OPERATIONS: readonly AppliedOperation[] = ['provision', 'harden', 'deploy'];

/** The spec values `operation` turns into host state (hosts and connection details excluded). */
export function specSection(spec: Spec, operation: AppliedOperation): unknown {
  switch (operation) {
    case 'provision':
      return {
        provision: spec.provision,
        ops: { user: spec.ssh.opsUser, keys: spec.ssh.authorizedKeys },
        layout: {
          installDir: spec.stack.installDir,
          volumes: spec.stack.volumes,
          uid: spec.stack.uid,
          gid: spec.stack.gid,
        },
      };
    case 'harden':
      return { ssh: spec.ssh, firewall: spec.firewall, harden: spec.harden };
    case 'deploy':
      return { stack: spec.stack, proxy: spec.proxy, secrets: spec.secrets };
  }
}
