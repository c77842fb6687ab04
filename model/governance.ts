/**
 * The policy gate every operation passes first: the spec and the openclaw.json it renders are checked against the
 * built-in and the operator's rules, and a violating spec is refused before anything is applied. Pure.
 */
import { evaluatePolicy, refusalMessage, type PolicyFinding } from './policy';
import { openclawConfig } from './render/stack';
import type { Spec } from './schema';

export class PolicyViolation extends Error {
  override readonly name = 'PolicyViolation';
  constructor(readonly findings: readonly PolicyFinding[]) {
    super(refusalMessage(findings));
  }
}

/** Violations of `spec`, judged on the spec itself and on the config steward would render from it. */
export function specViolations(spec: Spec): PolicyFinding[] {
  return evaluatePolicy({ spec, openclaw: openclawConfig(spec) }, spec.policy);
}

/** @throws PolicyViolation listing every violated rule. */
export function assertPolicy(spec: Spec): void {
  const findings = specViolations(spec);
  if (findings.length > 0) throw new PolicyViolation(findings);
}
