/** Errors of secret rotation. Each decides where it is made whether a retry can help. */
import { HostError } from '../host/errors';

/** The secret is not one the stack consumes (or not declared): there is nothing on the host to rotate. */
export class SecretNotRotatable extends HostError {
  override readonly name = 'SecretNotRotatable';
  readonly retryable = false;
}

/** The host has no live file for the secret: deploy the stack first. */
export class SecretMissingOnHost extends HostError {
  override readonly name = 'SecretMissingOnHost';
  readonly retryable = false;
}

/** An external secret's source still gives the current value: the operator has not supplied a new one. */
export class SecretUnchanged extends HostError {
  override readonly name = 'SecretUnchanged';
  readonly retryable = false;
}

/** The version store and the host disagree in a way a retry cannot mend (a version file is gone, ids differ). */
export class RotationStateInvalid extends HostError {
  override readonly name = 'RotationStateInvalid';
  readonly retryable = false;
}
