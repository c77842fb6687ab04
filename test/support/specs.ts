/** Specs for workflow tests whose activities are test doubles: valid, and never used to reach a host. */
import { expect } from 'vitest';
import { specSchema, type Spec } from '../../model/schema';
import { validate, ValidationError } from '../../model/validate';

/** The documentation address (TEST-NET-3) nothing is sent to; the workflow tests' activities never connect. */
export const DOC_HOST = { name: 'vps1', address: '203.0.113.10' } as const;
/** A host key pinned for {@link DOC_HOST}. */
export const DOC_HOST_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDuCjQ5yA2d2cxNEuJ7JxVfZ6cM8a2b0vQ0S1g0dJ2hQ';

/** One host, its key pinned, every section at its default. */
export function oneHostSpec(): Spec {
  return specSchema.parse({ version: 1, hosts: [{ ...DOC_HOST, hostKey: DOC_HOST_KEY }] });
}

/** The issues a spec is refused with (path and message each); fails the test when it is accepted. */
export function specIssues(data: unknown): { path: string; message: string }[] {
  try {
    validate(specSchema, data, 'steward.yaml');
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    return [...(err as ValidationError).issues];
  }
  throw new Error('expected the spec to be rejected');
}
