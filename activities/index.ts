/** Every activity steward registers, built over injected clients so tests can point them at simulators. */
import { createAuditActivities } from './audit-export';
import { createBackupActivities } from './backup';
import type { DeployDeps } from './deploy';
import { createDeployActivities } from './deploy';
import { createDriftActivities } from './drift';
import { createHardenActivities } from './harden';
import { createMemoryActivities } from './memory';
import { createNotifyActivities } from './notify';
import { createProvisionActivities } from './provision';
import { redactingActivities } from './redact';
import { createRotateActivities, type RotateDeps } from './rotate';
import { createRunActivities } from './runs';
import { lazyStore, type SecretStore } from './secrets-store';
import { createWatchdogActivities } from './watchdog';

export interface Deps extends Omit<DeployDeps & RotateDeps, 'store'> {
  /** The secret version store; default {@link SecretStore.fromEnv}, opened on first use. */
  readonly secretStore?: SecretStore;
}

export function createActivities({ secretStore, ...rest }: Deps) {
  // One store handle for every activity: its per-record locks only serialise writers that share it.
  const deps = { ...rest, store: lazyStore(secretStore) };
  // Whatever an activity throws passes the redactor first: no secret value reaches a failure, the history or a log.
  return redactingActivities({
    ...createProvisionActivities(deps),
    ...createHardenActivities(deps),
    ...createDeployActivities(deps),
    ...createMemoryActivities(deps),
    ...createRotateActivities(deps),
    ...createDriftActivities(deps),
    ...createRunActivities(),
    ...createAuditActivities(),
    ...createBackupActivities(deps),
    ...createNotifyActivities(),
    ...createWatchdogActivities(),
  });
}

export type Activities = ReturnType<typeof createActivities>;
export type { StepInput, StepResult } from './context';
export type { HostFacts } from './provision';
