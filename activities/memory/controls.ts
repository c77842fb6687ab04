/** Control results of the memory check: pass/fail (or not applicable) with the evidence and the time it took. */
import type { ControlResult } from '../../model/report';

/**
 * One control. `na` marks a control the host cannot take right now (a database not created yet, a proof the spec
 * turned off): reported, not a failure.
 */
export function control(
  id: string,
  expected: string,
  observed: string,
  pass: boolean,
  note?: string,
  na?: 'na',
  durationMs?: number,
): ControlResult {
  return {
    control: id,
    expected,
    observed,
    status: na ? 'not-applicable' : pass ? 'pass' : 'fail',
    ...(note ? { note } : {}),
    ...(durationMs !== undefined ? { durationMs: Math.round(durationMs) } : {}),
  };
}

/** The same control with its time. */
export function timed(c: ControlResult, durationMs: number): ControlResult {
  return { ...c, durationMs: Math.round(durationMs) };
}
