/**
 * A deploy's verification gate (activities/deploy/verify.ts `softened`): what the release did not change — a provider
 * outage, a tool call the model skipped, an integration the image cannot run — is a finding, not a failure that rolls
 * the release back; everything else still fails.
 */
import { describe, expect, it } from 'vitest';
import { softened } from '../../activities/deploy/verify';
import type { ControlResult } from '../../model/report';

const c = (control: string, status: ControlResult['status'], observed = 'x'): ControlResult => ({
  control,
  expected: 'y',
  observed,
  status,
});

describe('the deploy gate', () => {
  it('turns the soft controls that failed into findings and leaves every other control as it was', () => {
    const controls = [
      c('gateway.ws-token', 'fail', 'refused'),
      c('providers.agent-turn', 'fail', 'no model of the chain (a) answered: a: HTTP 503 (overloaded)'),
      c('mcp.servers.files.call', 'fail', 'not called (the turn ran: no tool)'),
      c('mcp.servers.files', 'fail', 'not connected: ENOENT'),
      c('integrations.google-oauth', 'pass'),
    ];
    const soft = new Set(['providers.agent-turn', 'mcp.servers.files.call', 'integrations.google-oauth']);
    const out = softened(controls, soft);
    expect(out.controls.map((x) => `${x.control} ${x.status}`)).toEqual([
      'gateway.ws-token fail',
      'providers.agent-turn not-applicable',
      'mcp.servers.files.call not-applicable',
      'mcp.servers.files fail',
      'integrations.google-oauth pass',
    ]);
    expect(out.findings).toEqual([
      {
        id: 'verify.providers.agent-turn',
        severity: 'high',
        message:
          'providers.agent-turn: no model of the chain (a) answered: a: HTTP 503 (overloaded) (not held against the release; `steward verify` fails on it)',
      },
      expect.objectContaining({ id: 'verify.mcp.servers.files.call', severity: 'medium' }),
    ]);
  });
});
