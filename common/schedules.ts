/**
 * steward's schedules in a namespace, described: for `steward schedule` (client/commands/schedule.ts) and the
 * watchdog's activity (activities/watchdog.ts).
 */
import { ScheduleNotFoundError, type Client, type ScheduleDescription } from '@temporalio/client';
import { SCHEDULE_PREFIX } from '../model/schedules';

/** A schedule's description, or undefined when there is no schedule with that id. */
export async function describeSchedule(client: Client, id: string): Promise<ScheduleDescription | undefined> {
  try {
    return await client.schedule.getHandle(id).describe();
  } catch (err) {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  }
}

/**
 * Schedules with steward's id prefix, described (listing is eventually consistent and carries no action memo), plus
 * those with the ids in `also`, described directly; undefined for one that is gone. `listing` lists (default
 * `client`); `tick` is called as each description arrives (an activity's heartbeat).
 */
export async function stewardSchedules(
  client: Client,
  opts: { also?: readonly string[]; listing?: Client; tick?: () => void } = {},
): Promise<Map<string, ScheduleDescription | undefined>> {
  const ids = new Set(opts.also ?? []);
  for await (const s of (opts.listing ?? client).schedule.list())
    if (s.scheduleId.startsWith(SCHEDULE_PREFIX)) ids.add(s.scheduleId);
  const found = new Map<string, ScheduleDescription | undefined>();
  await Promise.all(
    [...ids].sort().map(async (id) => {
      found.set(id, await describeSchedule(client, id));
      opts.tick?.();
    }),
  );
  return found;
}
