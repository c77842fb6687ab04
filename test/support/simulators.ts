// Starts VPS simulators for a test and removes them afterwards.
import {
  ensureSimulatorImage,
  removeSimulator,
  startSimulator,
  type Simulator,
  type StartSimulatorOptions,
} from '../../client/dev/simulator';
import { aptCacheFor, harvestAptCache, testRunOwner } from './golden';

export interface SimulatorFleet {
  simulators: Simulator[];
  /** Removes every simulator this helper started; safe to call twice. */
  cleanup: () => Promise<void>;
}

/**
 * Builds the image if needed, then starts `count` simulators in parallel with the same options (names get a
 * running number when `name` is given). If any fails to start, the others are removed before the error is thrown.
 */
export async function startSimulators(
  count: number,
  opts: Omit<StartSimulatorOptions, 'port' | 'aptCacheDir'> & {
    /** Give each simulator a copy of the run's shared package cache (see golden.ts), harvested at cleanup. */
    aptCache?: boolean;
  },
): Promise<SimulatorFleet> {
  const { aptCache, ...options } = opts;
  await ensureSimulatorImage();
  const caches = Array.from({ length: count }, () => (aptCache ? aptCacheFor() : undefined));
  const results = await Promise.allSettled(
    Array.from({ length: count }, (_, i) =>
      startSimulator({
        ...options,
        labels: { ...testRunOwner(), ...options.labels },
        name: options.name === undefined ? undefined : `${options.name}-${i + 1}`,
        ...(caches[i] ? { aptCacheDir: caches[i] } : {}),
      }),
    ),
  );
  const simulators = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  let cleaned = false;
  const cleanup = async (): Promise<void> => {
    await Promise.all(simulators.map((s) => removeSimulator(s.container)));
    if (cleaned) return;
    cleaned = true;
    for (const dir of caches) if (dir) harvestAptCache(dir);
  };
  const failure = results.find((r) => r.status === 'rejected');
  if (failure) {
    await cleanup();
    throw failure.reason;
  }
  return { simulators, cleanup };
}
