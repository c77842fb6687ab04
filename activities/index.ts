/** Every activity steward registers, built over injected clients so tests can point them at simulators. */
import type { ActivityDeps } from './context';
import { createHardenActivities } from './harden';
import { createProvisionActivities } from './provision';

export function createActivities(deps: ActivityDeps) {
  return {
    ...createProvisionActivities(deps),
    ...createHardenActivities(deps),
  };
}

export type Activities = ReturnType<typeof createActivities>;
export type { StepInput, StepResult } from './context';
export type { HostFacts } from './provision';
