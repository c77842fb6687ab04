/** Workflows for test/unit/progress.test.ts: one activity that reports progress and waits to be released. */
import { defineQuery, proxyActivities, setHandler } from '@temporalio/workflow';

export interface ProgressActivities {
  reportingStep(): Promise<void>;
}

const { reportingStep } = proxyActivities<ProgressActivities>({
  startToCloseTimeout: '1 minute',
  heartbeatTimeout: '15 seconds',
});

/** The host operations' `progress` query, as far as the CLI's follower reads it. */
const progress = defineQuery<{ steps: { step: string; status: string; changes: []; findings: [] }[] }>('progress');

export async function progressRun(): Promise<void> {
  let status = 'running';
  setHandler(progress, () => ({ steps: [{ step: 'reportingStep', status, changes: [], findings: [] }] }));
  await reportingStep();
  status = 'completed';
}
