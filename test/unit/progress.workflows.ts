/** Workflows for test/unit/progress.test.ts: one activity that reports progress and waits to be released. */
import { proxyActivities } from '@temporalio/workflow';

export interface ProgressActivities {
  reportingStep(): Promise<void>;
}

const { reportingStep } = proxyActivities<ProgressActivities>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: '15 seconds',
});

export async function progressRun(): Promise<void> {
  await reportingStep();
}
