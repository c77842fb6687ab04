/** Bounded concurrency for workflows that run one child per host (fleet, rotations over several hosts). */

/**
 * Runs `work` for each item, at most `limit` at a time, starting them in the items' order (each lane takes the next
 * item when its last one ends), and returns the results in the items' order.
 */
export async function inLanes<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      results[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, lane));
  return results;
}
