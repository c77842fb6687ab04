/**
 * steward's workflows with two changes made the way an upgrade might make them, for test/unit/replay.test.ts to
 * show what its replay catches. Each wraps today's workflow and adds a timer before the first step:
 * - `driftHost` adds it outright: its first command is no longer the one its recorded history holds;
 * - `memoryCheckHost` adds it behind `patched`: a run recorded before the change takes the old path on replay.
 */
import { patched, sleep } from '@temporalio/workflow';
import { driftHost as currentDriftHost, memoryCheckHost as currentMemoryCheckHost } from '../../workflows/index';

export * from '../../workflows/index';

export async function driftHost(...args: Parameters<typeof currentDriftHost>): ReturnType<typeof currentDriftHost> {
  await sleep('1 second');
  return currentDriftHost(...args);
}

export async function memoryCheckHost(
  ...args: Parameters<typeof currentMemoryCheckHost>
): ReturnType<typeof currentMemoryCheckHost> {
  if (patched('replay-demo-pause')) await sleep('1 second');
  return currentMemoryCheckHost(...args);
}
