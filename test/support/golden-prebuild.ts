/**
 * Golden hosts built ahead, while the unit tests run: the sequencer (which sees the run's files) says which kinds the
 * integration files ask for, the global setup says where the run's server and bundle are, and whichever comes second
 * starts `test/support/golden.ts` as a child process for those kinds. The files then find the images ready, or wait
 * for the child's lock. The run's teardown waits for the child before it removes the images, so nothing is left.
 * State lives on globalThis: vitest loads the setup and the sequencer as separate module instances in one process.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
// Types only: the vitest config loads this module (through the sequencer), and golden.ts loads the Temporal worker.
import type { GoldenKind, GoldenRun } from './golden';

/** In build order: a hardened host is built from the provisioned one. */
const KINDS: readonly GoldenKind[] = ['provisioned', 'hardened'];

interface Prebuild {
  kinds?: Set<GoldenKind>;
  run?: GoldenRun;
  child?: Promise<void>;
}

const state = ((globalThis as { stewardGoldenPrebuild?: Prebuild }).stewardGoldenPrebuild ??= {});

const GOLDEN_SCRIPT = fileURLToPath(new URL('./golden.ts', import.meta.url));
/**
 * How a test file asks for a golden host: `stage({ golden: 'hardened' })`, `goldenHostImage('provisioned')` or
 * `goldenSimulators(keys, 'hardened')`.
 */
const ASKS = /(?:golden:\s*|goldenHostImage\(|goldenSimulators\([^,()]+,\s*)'(provisioned|hardened)'/g;

/** The golden kinds the given test files ask for, read from their sources. */
export function goldenKindsIn(files: readonly string[]): Set<GoldenKind> {
  const kinds = new Set<GoldenKind>();
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    for (const m of text.matchAll(ASKS)) kinds.add(m[1] as GoldenKind);
  }
  return kinds;
}

/** The sequencer's half: the kinds this run's files ask for. */
export function wantGolden(kinds: Set<GoldenKind>): void {
  state.kinds = new Set([...(state.kinds ?? []), ...kinds]);
  start();
}

/** The global setup's half: the run's server and bundle. */
export function goldenRunReady(run: GoldenRun): void {
  state.run = run;
  start();
}

/** Resolves when the prebuild (if one started) has ended, successfully or not. */
export async function goldenPrebuildSettled(): Promise<void> {
  await state.child;
}

function start(): void {
  if (state.child || !state.run || !state.kinds || state.kinds.size === 0) return;
  // A hardened host is built from the provisioned one: provisioned first, always.
  const kinds = KINDS.filter((k) => state.kinds!.has(k) || (k === 'provisioned' && state.kinds!.has('hardened')));
  const started = Date.now();
  // The build pins its host keys in its spec; a known-hosts file of its own keeps the developer's untouched anyway.
  const knownHostsDir = mkdtempSync(join(tmpdir(), 'steward-golden-known-hosts-'));
  const child = spawn(process.execPath, ['--import', 'tsx', GOLDEN_SCRIPT, ...kinds], {
    env: {
      ...process.env,
      STEWARD_TEST_GOLDEN_RUN: JSON.stringify(state.run),
      STEWARD_KNOWN_HOSTS: join(knownHostsDir, 'known_hosts'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  state.child = new Promise<void>((resolve) => {
    child.on('close', () => rmSync(knownHostsDir, { recursive: true, force: true }));
    child.on('error', (err) => {
      console.log(`golden hosts: prebuild did not start (${err.message}); the files build them`);
      resolve();
    });
    child.on('close', (code) => {
      const took = `${((Date.now() - started) / 1000).toFixed(1)} s`;
      if (code === 0) console.log(`golden hosts (${kinds.join(', ')}) built ahead in ${took}:\n${output.trim()}`);
      else console.log(`golden hosts: prebuild failed after ${took} (the files build them):\n${output.trim()}`);
      resolve();
    });
  });
}
