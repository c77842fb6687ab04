// Starts VPS simulators for a test and removes them afterwards.
import {
  ensureSimulatorImage,
  removeSimulator,
  startSimulator,
  type Simulator,
  type StartSimulatorOptions,
} from '../../client/dev/simulator';

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
  opts: Omit<StartSimulatorOptions, 'port'>,
): Promise<SimulatorFleet> {
  await ensureSimulatorImage();
  const results = await Promise.allSettled(
    Array.from({ length: count }, (_, i) =>
      startSimulator({ ...opts, name: opts.name === undefined ? undefined : `${opts.name}-${i + 1}` }),
    ),
  );
  const simulators = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const cleanup = async (): Promise<void> => {
    await Promise.all(simulators.map((s) => removeSimulator(s.container)));
  };
  const failure = results.find((r) => r.status === 'rejected');
  if (failure) {
    await cleanup();
    throw failure.reason;
  }
  return { simulators, cleanup };
}
