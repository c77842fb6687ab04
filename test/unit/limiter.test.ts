/**
 * The session pool's handshake limit (activities/host/limiter.ts): at most `limit` tasks per key at once, the rest
 * in order, keys independent, a failing task freeing its place.
 */
import { describe, expect, it } from 'vitest';
import { KeyedLimiter } from '../../activities/host/limiter';

/** A task that runs until `finish()` is called, recording when it started. */
function gate(started: string[], name: string) {
  let finish!: (fail?: boolean) => void;
  const done = new Promise<void>(
    (resolve, reject) => (finish = (fail) => (fail ? reject(new Error(name)) : resolve())),
  );
  return {
    task: async () => {
      started.push(name);
      await done;
      return name;
    },
    finish,
  };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

describe('a keyed limiter', () => {
  it('runs at most limit tasks of a key at once, the others in the order they came; other keys are not held', async () => {
    const limiter = new KeyedLimiter(2);
    const started: string[] = [];
    const g = ['a1', 'a2', 'a3', 'a4'].map((n) => gate(started, n));
    const other = gate(started, 'b1');
    const results = g.map((x) => limiter.run('10.0.0.5:22', x.task));
    const b = limiter.run('10.0.0.6:22', other.task);
    await tick();
    expect(started).toEqual(['a1', 'a2', 'b1']);
    expect(limiter.active('10.0.0.5:22')).toBe(2);
    g[1]!.finish();
    await tick();
    expect(started).toEqual(['a1', 'a2', 'b1', 'a3']);
    // A failing task frees its place too.
    g[0]!.finish(true);
    await expect(results[0]).rejects.toThrow('a1');
    await tick();
    expect(started).toEqual(['a1', 'a2', 'b1', 'a3', 'a4']);
    expect(limiter.active('10.0.0.5:22')).toBe(2);
    g[2]!.finish();
    g[3]!.finish();
    other.finish();
    expect(await Promise.all([results[1], results[2], results[3], b])).toEqual(['a2', 'a3', 'a4', 'b1']);
    expect(limiter.active('10.0.0.5:22')).toBe(0);
  });

  it('refuses a limit that is not a positive integer', () => {
    expect(() => new KeyedLimiter(0)).toThrow(RangeError);
    expect(() => new KeyedLimiter(1.5)).toThrow(RangeError);
  });
});
