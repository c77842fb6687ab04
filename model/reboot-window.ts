/**
 * The reboot window: when harden may reboot a host that has a reboot pending (a new kernel, libraries only a reboot
 * replaces). Written `"02:00-04:00"` (every day) or `"sat,sun 02:00-04:00"`, in UTC; a window may cross midnight
 * (`"23:30-00:30"` starts on the named day). Pure: the workflow decides with its own deterministic clock.
 */

const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
const DAY = `(?:${DAYS.join('|')})`;
const TIME = '(?:[01][0-9]|2[0-3]):[0-5][0-9]';

/** What the spec accepts. */
export const REBOOT_WINDOW_PATTERN = new RegExp(`^(?:${DAY}(?:,${DAY})* )?${TIME}-${TIME}$`);

export interface RebootWindow {
  /** Days (0 = Sunday) the window starts on. */
  readonly days: ReadonlySet<number>;
  /** Minutes after midnight UTC. */
  readonly start: number;
  readonly end: number;
}

/** @throws Error naming the text when it is not a window (the spec's schema refuses such text first). */
export function parseRebootWindow(text: string): RebootWindow {
  if (!REBOOT_WINDOW_PATTERN.test(text)) throw new Error(`not a reboot window: ${JSON.stringify(text)}`);
  const [dayPart, timePart] = text.includes(' ') ? text.split(' ') : [undefined, text];
  const [start, end] = timePart!.split('-').map((t) => Number(t.slice(0, 2)) * 60 + Number(t.slice(3, 5))) as [
    number,
    number,
  ];
  if (start === end) throw new Error(`reboot window ${JSON.stringify(text)} is empty: it starts when it ends`);
  const days = dayPart
    ? new Set(dayPart.split(',').map((d) => DAYS.indexOf(d as (typeof DAYS)[number])))
    : new Set([0, 1, 2, 3, 4, 5, 6]);
  return { days, start, end };
}

/** Whether `at` falls inside the window. */
export function inRebootWindow(w: RebootWindow, at: Date): boolean {
  const day = at.getUTCDay();
  const minute = at.getUTCHours() * 60 + at.getUTCMinutes();
  if (w.start < w.end) return w.days.has(day) && minute >= w.start && minute < w.end;
  // Crossing midnight: the evening part on a named day, the morning part on the day after one.
  return (w.days.has(day) && minute >= w.start) || (w.days.has((day + 6) % 7) && minute < w.end);
}

/** The next time the window opens after `at` (within a week), as an ISO string. */
export function nextRebootWindow(w: RebootWindow, at: Date): string {
  const midnight = Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), at.getUTCDate());
  for (let d = 0; d <= 7; d++) {
    const opens = midnight + d * 86_400_000 + w.start * 60_000;
    if (opens > at.getTime() && w.days.has(new Date(opens).getUTCDay())) return new Date(opens).toISOString();
  }
  throw new Error('a reboot window opens at least once a week');
}
