/** Workflows for test/unit/worker-loss.test.ts: one step retried by workflows/retry.ts under a profile from the test. */
import type { StepProfile } from '../../workflows/options';
import { proxySteps } from '../../workflows/retry';

/** The test's activity: behaves as the test scripted for `key`, call by call. */
export interface ScriptedActivities {
  scripted(key: string): Promise<string>;
}

export async function scriptedStep(input: { profile: StepProfile; key: string }): Promise<string> {
  return proxySteps<ScriptedActivities>(input.profile).scripted(input.key);
}
