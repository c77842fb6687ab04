/**
 * steward's payload codec: AES-256-GCM over the whole payload. The plaintext is the original
 * `temporal.api.common.v1.Payload`, proto-encoded (its metadata too, so not even the encoding is left in the clear);
 * the encrypted payload carries `encoding: binary/encrypted` and `encryption-key-id: <id>` in its metadata, and
 * `iv (12 bytes) ‖ ciphertext ‖ tag (16 bytes)` as data, with a random IV per payload.
 *
 * Uses node:crypto: clients, workers and the codec server load it, never workflow code.
 */
import { fileURLToPath } from 'node:url';
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { DataConverter, Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import { PayloadDecryptionError } from './errors';
import type { KeyRing } from './keys';

export const ENCODING_ENCRYPTED = 'binary/encrypted';
export const METADATA_ENCODING = 'encoding';
export const METADATA_KEY_ID = 'encryption-key-id';

const CIPHER = 'aes-256-gcm';
const IV_BYTES = 12;
const TAG_BYTES = 16;

const ProtoPayload = proto.temporal.api.common.v1.Payload;

export interface CodecOptions {
  /**
   * Pass payloads this codec did not encrypt through unchanged instead of refusing them. Only for readers that show
   * a history to a person (the audit timeline, the codec server behind the Web UI): a plaintext payload there is
   * evidence of who wrote it, not an order. Workers and clients, which act on what they decode, refuse.
   */
  readonly readPlaintext?: boolean;
}

/**
 * Encrypts with the ring's current key, decrypts with whichever key a payload names. The encryption authenticates
 * too: a payload steward acts on must be ciphertext made with a key in the ring, so a client without the codec key
 * (the stock `temporal` CLI, say) cannot start a workflow, send a signal or answer an activity with data of its own.
 */
export class AesGcmPayloadCodec implements PayloadCodec {
  constructor(
    readonly ring: KeyRing,
    readonly options: CodecOptions = {},
  ) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.encrypt(p));
  }

  /**
   * Decrypts encrypted payloads; refuses any other (or, with `readPlaintext`, passes it through unchanged).
   * @throws PayloadDecryptionError naming the key id when the key is not in the ring or authentication fails, or
   *   naming the encoding of a payload that is not encrypted at all.
   */
  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => {
      if (isEncrypted(p)) return this.decrypt(p);
      if (this.options.readPlaintext) return p;
      throw new PayloadDecryptionError(
        `refused an unencrypted payload (encoding "${encodingOf(p)}"): steward accepts only payloads encrypted ` +
          `with a codec key in its ring, and this one was written by a client without the codec key`,
      );
    });
  }

  private encrypt(payload: Payload): Payload {
    const { id, key } = this.ring.current;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(CIPHER, key, iv);
    const plaintext = ProtoPayload.encode(payload).finish();
    const data = Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return {
      metadata: {
        [METADATA_ENCODING]: Buffer.from(ENCODING_ENCRYPTED),
        [METADATA_KEY_ID]: Buffer.from(id),
      },
      data,
    };
  }

  private decrypt(payload: Payload): Payload {
    const rawId = payload.metadata?.[METADATA_KEY_ID];
    if (!rawId) throw new PayloadDecryptionError(`encrypted payload has no ${METADATA_KEY_ID} in its metadata`);
    const id = Buffer.from(rawId).toString('utf8');
    const codecKey = this.ring.find(id);
    if (!codecKey) {
      throw new PayloadDecryptionError(
        `payload was encrypted with codec key "${id}", which is not in the key ring (${this.ring.ids.join(', ')}): ` +
          `add that key to the key file to read it`,
        id,
      );
    }
    const data = payload.data ?? new Uint8Array();
    const failed = () =>
      new PayloadDecryptionError(
        `payload encrypted with codec key "${id}" failed authentication: it was altered, or this key "${id}" is not ` +
          `the one that encrypted it`,
        id,
      );
    if (data.length < IV_BYTES + TAG_BYTES) throw failed();
    const iv = data.subarray(0, IV_BYTES);
    const tag = data.subarray(data.length - TAG_BYTES);
    const decipher = createDecipheriv(CIPHER, codecKey.key, iv);
    decipher.setAuthTag(tag);
    let plaintext: Buffer;
    try {
      plaintext = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw failed();
    }
    return ProtoPayload.decode(plaintext);
  }
}

/** A payload's `encoding` metadata, printable (bounded, control characters escaped), for error messages. */
function encodingOf(payload: Payload): string {
  const raw = payload.metadata?.[METADATA_ENCODING];
  if (!raw) return 'none';
  return JSON.stringify(Buffer.from(raw).toString('utf8').slice(0, 40)).slice(1, -1);
}

/** Whether a payload is one this codec encrypted. */
export function isEncrypted(payload: Payload): boolean {
  const encoding = payload.metadata?.[METADATA_ENCODING];
  return encoding !== undefined && encoding !== null && Buffer.from(encoding).toString() === ENCODING_ENCRYPTED;
}

/** The module of steward's failure converter (failure messages and stack traces in an encrypted payload). */
export const FAILURE_CONVERTER_PATH = fileURLToPath(new URL('./failure-converter.cjs', import.meta.url));

/**
 * The data converter every steward client and worker uses: default payload conversion, then encryption, and
 * failures whose message and stack trace are a payload too ({@link FAILURE_CONVERTER_PATH}). `readPlaintext` only for
 * readers of what other clients wrote (see {@link AesGcmPayloadCodec}).
 */
export function encryptingDataConverter(ring: KeyRing, opts: { readPlaintext?: boolean } = {}): DataConverter {
  return { payloadCodecs: [new AesGcmPayloadCodec(ring, opts)], failureConverterPath: FAILURE_CONVERTER_PATH };
}
