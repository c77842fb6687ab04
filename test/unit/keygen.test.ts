// steward's key pairs are always readable: ssh2's own generator yields an unreadable ed25519 pair about once in
// 256 (mscdex/ssh2#1390); 2000 pairs without the check would hold ~8 such pairs.
import ssh2 from 'ssh2';
import { describe, expect, it } from 'vitest';
import { generateEd25519KeyPair } from '../../common/keygen';

describe('generateEd25519KeyPair', () => {
  it('returns only pairs ssh2 reads back, private and public', () => {
    const unreadable: string[] = [];
    for (let i = 0; i < 2000; i++) {
      const pair = generateEd25519KeyPair('steward-test');
      for (const key of [pair.private, pair.public]) {
        if (ssh2.utils.parseKey(key) instanceof Error) unreadable.push(key);
      }
    }
    expect(unreadable).toEqual([]);
  });
});
