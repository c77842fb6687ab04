/**
 * `auditExport`: one export of steward's run histories into a hash-chained directory on the worker's machine, for
 * a schedule to run (say daily) so nothing is lost when the namespace's retention expires. Each run continues the
 * chain where the previous export's window ended. Input: {@link AuditExportInput}; result: {@link AuditExportResult}.
 */
import { proxyActivities, upsertSearchAttributes, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { AuditExportInput, AuditExportResult } from '../spec/audit';
import { StewardOutcome } from '../spec/search-attributes';

/** Reading and writing every history closed in a day can take a while; progress heartbeats after each one. */
export const AUDIT_EXPORT: ActivityOptions = {
  startToCloseTimeout: '2 hours',
  heartbeatTimeout: '2 minutes',
  retry: {
    initialInterval: '10 seconds',
    backoffCoefficient: 2,
    maximumInterval: '5 minutes',
    maximumAttempts: 5,
    nonRetryableErrorTypes: ['ValidationError', 'AuditChainError'],
  },
};

const { exportAuditHistories } = proxyActivities<Activities>(AUDIT_EXPORT);

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

/** Sets StewardOutcome when the run was started with steward's attributes (a schedule's runs are). */
function recordOutcome(outcome: 'completed' | 'failed'): void {
  const attributes = workflowInfo().typedSearchAttributes.getAll();
  if (attributes.some((p) => p.key.name === StewardOutcome.name)) {
    upsertSearchAttributes([{ key: StewardOutcome, value: outcome }]);
  }
}
