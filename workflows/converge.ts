/**
 * converge: a host from whatever state to the spec, in order — provision, harden, deploy, then the memory check —
 * each as a child workflow with its own history and search attributes. Stops at the first failure.
 */
import { executeChild } from '@temporalio/workflow';
import type { HostReport, Operation } from '../model/report';
import { hostWorkflowId } from '../model/ids';
import { startAttributes } from '../model/search-attributes';
import { HostOperation, type HostOperationInput } from './host-operation';

const STAGES: readonly { step: string; operation: Operation; workflowType: string }[] = [
  { step: 'provision', operation: 'provision', workflowType: 'provisionHost' },
  { step: 'harden', operation: 'harden', workflowType: 'hardenHost' },
  { step: 'deploy', operation: 'deploy', workflowType: 'deployHost' },
  { step: 'memoryCheck', operation: 'memory', workflowType: 'memoryCheckHost' },
];

export const CONVERGE_STEPS = STAGES.map((s) => s.step);

export async function convergeHost(input: HostOperationInput): Promise<HostReport> {
  const op = new HostOperation('converge', input, CONVERGE_STEPS);
  return op.run(async () => {
    for (const stage of STAGES) {
      await op.step(stage.step, async () => {
        const report = await executeChild<(i: HostOperationInput) => Promise<HostReport>>(stage.workflowType, {
          workflowId: hostWorkflowId(stage.operation, input.host, new Date()),
          // The memory check proves; it repairs only when asked (memory check --repair).
          args: [
            {
              spec: input.spec,
              host: input.host,
              mode: stage.operation === 'memory' ? 'plan' : input.mode,
              // --require-approval: each stage that changes the host waits for its own plan's approval.
              ...(input.approval && stage.operation !== 'memory' ? { approval: input.approval } : {}),
            },
          ],
          typedSearchAttributes: startAttributes({ host: input.host, operation: stage.operation }),
        });
        return {
          changes: report.changes,
          findings: report.findings,
          ...(report.controls ? { controls: report.controls } : {}),
        };
      });
    }
  });
}
