/**
 * The outcome of a run that is no host operation (the audit export, the watchdog): such a workflow records it itself,
 * where host operations have workflows/host-operation.ts record theirs.
 */
import { upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import { StewardOutcome } from '../model/search-attributes';

/** Sets StewardOutcome when the run was started with steward's attributes (a schedule's runs are). */
export function recordOutcome(outcome: 'completed' | 'failed'): void {
  const attributes = workflowInfo().typedSearchAttributes.getAll();
  if (attributes.some((p) => p.key.name === StewardOutcome.name)) {
    upsertSearchAttributes([{ key: StewardOutcome, value: outcome }]);
  }
}
