/** inLanes: bounded concurrency for the fleet and rotation workflows. */
import { describe, expect, it } from 'vitest';
import { inLanes } from '../../workflows/lanes';

describe('inLanes', () => {
  it('starts items in order, never more than the limit at once, and returns results in the items order', async () => {
    const started: number[] = [];
    let running = 0;
    let most = 0;
    const delays = [30, 5, 20, 1, 10, 2];
    const results = await inLanes(delays, 2, async (ms) => {
      started.push(ms);
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, ms));
      running--;
      return ms * 10;
    });
    expect(results).toEqual([300, 50, 200, 10, 100, 20]);
    expect(started).toEqual(delays);
    expect(most).toBe(2);
  });

  it('runs at least one lane, and none for no items', async () => {
    expect(await inLanes([1, 2], 0, async (n) => n + 1)).toEqual([2, 3]);
    expect(await inLanes([], 4, async () => 1)).toEqual([]);
  });
});
