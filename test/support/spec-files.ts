/**
 * Key pairs and spec files for simulators: what the fixtures (fixtures.ts) and the golden host build (golden.ts, also
 * run outside vitest) share. Imports nothing from vitest.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { Simulator } from '../../client/dev/simulator';
import { generateEd25519KeyPair } from '../../common/keygen';
import type { SpecInput } from '../../model/schema';

export interface KeyPair {
  readonly dir: string;
  readonly privateKeyPath: string;
  readonly publicKey: string;
}

/** An ed25519 key pair in a fresh temp dir. */
export function makeKeyPair(): KeyPair {
  const dir = mkdtempSync(join(tmpdir(), 'steward-test-'));
  const pair = generateEd25519KeyPair('steward-test');
  const privateKeyPath = join(dir, 'id_ed25519');
  writeFileSync(privateKeyPath, pair.private, { mode: 0o600 });
  return { dir, privateKeyPath, publicKey: pair.public };
}

/** A spec for the given simulators (host keys pinned out of band), merged with `extra`, written to a file. */
export function writeSpec(
  keys: KeyPair,
  sims: readonly Simulator[],
  extra: Partial<SpecInput> = {},
  name = 'steward.yaml',
): string {
  const spec: SpecInput = {
    version: 1,
    hosts: sims.map((s) => ({
      name: s.name.replace(/^steward-vps-/, ''),
      address: s.address,
      port: s.port,
      user: s.user,
      identityFile: keys.privateKeyPath,
      hostKey: s.hostKey,
    })),
    ...extra,
  };
  const path = join(keys.dir, name);
  writeFileSync(path, stringify(spec));
  return path;
}

/** Host name in the spec for a simulator. */
export function hostName(sim: Simulator): string {
  return sim.name.replace(/^steward-vps-/, '');
}
