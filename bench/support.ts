/** Shared bench setup: a simulator with a key made at run time, and figures printed as a table. */
import { ensureSimulatorImage, removeSimulator, startSimulator, type Simulator } from '../client/dev/simulator';
import { makeKeyPair, type KeyPair } from '../test/support/fixtures';

export async function withSimulators<T>(
  count: number,
  body: (sims: Simulator[], keys: KeyPair) => Promise<T>,
): Promise<T> {
  const keys = makeKeyPair();
  await ensureSimulatorImage();
  const sims = await Promise.all(
    Array.from({ length: count }, () => startSimulator({ authorizedKey: keys.publicKey })),
  );
  try {
    return await body(sims, keys);
  } finally {
    await Promise.all(sims.map((s) => removeSimulator(s.container)));
  }
}

export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

/** Prints `name  value unit  (target …, ratio …)`. */
export function report(name: string, value: number, unit: string, target?: number): void {
  const t =
    target === undefined
      ? ''
      : `  target ≤ ${target} ${unit}, ${(value / target).toFixed(2)}× of target ${value <= target ? 'MET' : 'MISSED'}`;
  console.log(`${name.padEnd(44)} ${value.toFixed(unit === 'ms' ? 2 : 3).padStart(9)} ${unit}${t}`);
}
