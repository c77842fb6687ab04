/** Specs for workflow tests whose activities are test doubles: valid, and never used to reach a host. */
import { specSchema, type Spec } from '../../model/schema';

/** The documentation address (TEST-NET-3) nothing is sent to; the workflow tests' activities never connect. */
export const DOC_HOST = { name: 'vps1', address: '203.0.113.10' } as const;
/** A host key pinned for {@link DOC_HOST}. */
export const DOC_HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDuCjQ5yA2d2cxNEuJ7JxVfZ6cM8a2b0vQ0S1g0dJ2hQ';

/** One host, its key pinned, every section at its default. */
export function oneHostSpec(): Spec {
  return specSchema.parse({ version: 1, hosts: [{ ...DOC_HOST, hostKey: DOC_HOST_KEY }] });
}
