/** Processes steward started or records, by PID. */
import { readFileSync } from 'node:fs';

/**
 * Whether process `pid` is still running: it exists (also when it is not ours to signal) and is not a zombie
 * waiting to be reaped.
 */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (process.platform !== 'linux') return true;
  try {
    return !/^\d+ \(.*\) Z/s.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}
