/**
 * At most `limit` tasks at once per key, the rest waiting in order: the session pool holds SSH handshakes to one
 * address under sshd's `MaxStartups` (by default sshd starts dropping unauthenticated connections at 10), so a fleet
 * of host entries on one address, or a cold worker, queues its handshakes instead of losing them to timeouts.
 */
export class KeyedLimiter {
  private readonly running = new Map<string, number>();
  private readonly waiting = new Map<string, (() => void)[]>();

  constructor(private readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer: ${limit}`);
  }

  /** Runs `task` once fewer than `limit` tasks of `key` run, and frees its place when it settles. */
  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    if ((this.running.get(key) ?? 0) >= this.limit) {
      await new Promise<void>((resolve) => {
        const queue = this.waiting.get(key) ?? [];
        queue.push(resolve);
        this.waiting.set(key, queue);
      });
    } else {
      this.running.set(key, (this.running.get(key) ?? 0) + 1);
    }
    try {
      return await task();
    } finally {
      this.release(key);
    }
  }

  /** Tasks of `key` running now (for tests and diagnostics). */
  active(key: string): number {
    return this.running.get(key) ?? 0;
  }

  /** Hands the place to the next waiting task of `key` (which then counts as running), or frees it. */
  private release(key: string): void {
    const queue = this.waiting.get(key);
    const next = queue?.shift();
    if (queue && queue.length === 0) this.waiting.delete(key);
    if (next) return next();
    const n = (this.running.get(key) ?? 1) - 1;
    if (n > 0) this.running.set(key, n);
    else this.running.delete(key);
  }
}
