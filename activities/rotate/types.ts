/** What the rotation steps take and return: only version ids, never values (they travel through the history). */
import type { ControlResult } from '../../model/report';
import type { ActivityDeps, StepInput, StepResult } from '../context';
import type { SecretStore } from '../secrets-store';

/** Input of a rotation step: the host step input, the secret, and the version the step works on. */
export interface RotateStepInput extends StepInput {
  readonly secret: string;
  readonly versionId?: string;
  /** `rotate --due`: inspect reports whether the interval has passed. */
  readonly due?: boolean;
  /** Why a rollback happens (a failure message, already scrubbed). */
  readonly reason?: string;
}

/** Where a secret stands, by version ids. */
export interface SecretState {
  readonly current?: string;
  readonly previous?: string;
  /** A pending version, and whether the host's live file already is it (an interrupted run switched it). */
  readonly pending?: { readonly id: string; readonly live: boolean };
  readonly rotatedAt?: string;
  /** When the next rotation is due (`rotateEvery`); absent without an interval. */
  readonly nextDue?: string;
  /** False only for `rotate --due` when the interval has not passed. */
  readonly due: boolean;
}

export interface InspectSecretResult extends StepResult {
  readonly state: SecretState;
}

export interface CreateSecretResult extends StepResult {
  readonly versionId: string;
  /** The current version the new one replaces. */
  readonly replaces: string;
}

export interface TestSecretResult extends StepResult {
  readonly controls: ControlResult[];
}

export interface RollbackSecretResult extends StepResult {
  /** Whether the live file had to be switched back. */
  readonly restored: boolean;
  /** For the gateway token, once it went live: the restored value authenticates again. */
  readonly controls: ControlResult[];
  readonly current?: string;
}

export interface RotateDeps extends ActivityDeps {
  /** Opens the version store: the one handle every activity shares. */
  readonly store: () => Promise<SecretStore>;
}
