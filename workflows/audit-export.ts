/**
 * `auditExport`: one export of steward's run histories into a hash-chained directory on the worker's machine, for
 * a schedule to run (say daily) so nothing is lost when the namespace's retention expires. Each run continues the
 * chain where the previous export's window ended. Input: {@link AuditExportInput}; result: {@link AuditExportResult}.
 */
import type { Activities } from '../activities';
import type { AuditExportInput, AuditExportResult } from '../model/audit';
import type { StepProfile } from './options';
import { recordOutcome } from './outcome';
import { proxySteps } from './retry';

/**
 * Reading and writing every history closed in a day can take a while; progress heartbeats after each one. A lost
 * worker restarts the export without spending one of its five attempts (workflows/retry.ts).
 */
export const AUDIT_EXPORT: StepProfile = {
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '2 minutes',
  retry: {
    initialInterval: '10 seconds',
    backoffCoefficient: 2,
    maximumInterval: '5 minutes',
    maximumAttempts: 5,
    nonRetryableErrorTypes: ['ValidationError', 'AuditChainError'],
  },
  maximumWorkerLosses: 20,
};

const { exportAuditHistories } = proxySteps<Activities>(AUDIT_EXPORT);

export async function auditExport(input: AuditExportInput): Promise<AuditExportResult> {
  try {
    const result = await exportAuditHistories(input);
    recordOutcome('completed');
    return result;
  } catch (err) {
    recordOutcome('failed');
    throw err;
  }
}
