/** Errors of payload encryption: key material, and payloads that cannot be decrypted. */

/**
 * Codec keys are missing, unreadable, malformed, or in a file that others may read. A configuration fault:
 * retrying without changing the keys or the file does not help.
 */
export class CodecKeyError extends Error {
  override readonly name = 'CodecKeyError';
  constructor(
    message: string,
    /** The key file concerned, when there is one. */
    readonly path?: string,
  ) {
    super(message);
  }
}

/**
 * An encrypted payload could not be decrypted: its key is not in the key ring, or it failed authentication
 * (altered, or encrypted with another key of the same id). Workflow tasks that hit this fail and are retried, so a
 * worker restarted with the right key picks the run up again.
 */
export class PayloadDecryptionError extends Error {
  override readonly name = 'PayloadDecryptionError';
  constructor(
    message: string,
    /** The `encryption-key-id` the payload names, when it names one. */
    readonly keyId?: string,
  ) {
    super(message);
  }
}
