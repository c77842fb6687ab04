/** SSH key pairs steward creates: the operator's key (`steward init`) and throwaway keys for simulators. */
import ssh2 from 'ssh2';

/**
 * An ed25519 key pair in OpenSSH format. ssh2's generator strips leading zero bytes from the public key, so about
 * one pair in 256 cannot be read back (mscdex/ssh2#1390, #1513: "Malformed OpenSSH private key"); such a pair is
 * discarded and another generated.
 * @throws Error if 32 pairs in a row are unreadable (a broken generator, not bad luck).
 */
export function generateEd25519KeyPair(comment: string): { readonly private: string; readonly public: string } {
  for (let attempt = 0; attempt < 32; attempt++) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment });
    const readable = [pair.private, pair.public].every((k) => !(ssh2.utils.parseKey(k) instanceof Error));
    if (readable) return pair;
  }
  throw new Error('could not generate a readable ed25519 key pair');
}
