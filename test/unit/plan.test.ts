/** Host plans: a run carries its own host, and a fleet run the spec once. */
import { describe, expect, it } from 'vitest';
import { fleetInput } from '../../client/operation';
import { hostPlan } from '../../model/plan';
import { specSchema, type Spec } from '../../model/schema';
import { fleetHostInputs } from '../../workflows/fleet';
import type { HostOperationInput } from '../../workflows/host-operation';
import { DOC_HOST_KEY } from '../support/specs';

function fleetSpec(n: number): Spec {
  const hosts = Array.from({ length: n }, (_, i) => ({
    name: `web${i}`,
    address: `203.0.113.${i + 1}`,
    hostKey: DOC_HOST_KEY,
    identityFile: '/home/operator/.ssh/steward_ed25519',
  }));
  return specSchema.parse({ version: 1, hosts });
}

describe('host plans', () => {
  it("a host's plan holds its own entry and every section, and no other host", () => {
    const spec = fleetSpec(3);
    const plan = hostPlan(spec, 'web1');
    expect(plan.hosts).toEqual([spec.hosts[1]]);
    expect({ ...plan, hosts: [] }).toEqual({ ...spec, hosts: [] });
    // A host the spec lacks leaves the spec as it is: the run fails where it always did, naming the host.
    expect(hostPlan(spec, 'nope')).toBe(spec);
  });

  it('a 50-host fleet sends the spec once: at least 10x less input than a whole spec per host', () => {
    const spec = fleetSpec(50);
    const req = {
      operation: 'drift' as const,
      workflowType: 'driftHost',
      spec,
      hosts: spec.hosts.map((h) => h.name),
      mode: 'plan' as const,
      extra: { audit: true },
    };
    const startedAt = new Date('2026-12-05T12:00:00Z');
    const input = fleetInput(req, startedAt);
    // Before host plans: every host's input carried the whole spec.
    const before = {
      ...input,
      spec: undefined,
      hosts: req.hosts.map((host) => ({ audit: true, spec, host, mode: 'plan' })),
    };
    const [now, then] = [JSON.stringify(input).length, JSON.stringify(before).length];
    expect(then / now).toBeGreaterThanOrEqual(10);

    // The workflow cuts each host's plan from it; a run started before plans keeps its own inputs.
    const children = fleetHostInputs(input);
    expect(children.map((c) => c.host)).toEqual(req.hosts);
    expect(children[7]).toEqual({ audit: true, spec: hostPlan(spec, 'web7'), host: 'web7', mode: 'plan' });
    const old = before.hosts as HostOperationInput[];
    expect(fleetHostInputs({ operation: 'drift', workflowType: 'driftHost', hosts: old })).toEqual(old);
    expect(() => fleetHostInputs({ ...input, hosts: ['elsewhere'] })).toThrow(/names host elsewhere/);
  });
});
