/**
 * The audit export activity: writes the histories of steward's runs that closed since the last export into a chain
 * directory on the worker's machine (client/audit/exporter.ts), so they outlive the namespace's retention. Reads
 * histories through the worker's own Temporal client and writes them as stored: payloads stay encrypted.
 */
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { AuditChainError, chainHead } from '../common/audit/export-dir';
import { exportHistories } from '../common/audit/exporter';
import { auditExportInputSchema, type AuditExportInput, type AuditExportResult } from '../model/audit';
import { ValidationError, validate } from '../model/validate';

export function createAuditActivities() {
  return {
    /**
     * Adds one export to `input.directory` (nothing when no run closed since the last one) and returns it.
     * Safe to retry: a failed attempt leaves nothing behind, and an attempt that already wrote its export (but could
     * not report it) returns that export instead of writing another.
     * @throws a non-retryable failure for invalid input or a chain whose head cannot be read.
     */
    async exportAuditHistories(raw: AuditExportInput): Promise<AuditExportResult> {
      const ctx = Context.current();
      const self = ctx.info.workflowExecution;
      try {
        const input = validate(auditExportInputSchema, raw, 'auditExport input');
        const head = await chainHead(input.directory);
        if (head && self && head.manifest.producer.runId === self.runId) {
          const m = head.manifest;
          return {
            exportDir: `${input.directory.replace(/\/$/, '')}/${head.name}`,
            sequence: m.sequence,
            runs: m.files.length,
            manifestSha256: head.manifestSha256,
            chainHash: m.chainHash,
            previousManifestSha256: m.previous?.manifestSha256 ?? null,
            window: m.window,
          };
        }
        const { host, operation, outcome } = input;
        return await exportHistories({
          client: ctx.client,
          dir: input.directory,
          selection: {
            ...(host ? { host } : {}),
            ...(operation ? { operation } : {}),
            ...(outcome ? { outcome } : {}),
          },
          ...(input.since ? { since: new Date(input.since) } : {}),
          until: new Date(Date.now() - input.settleSeconds * 1000),
          ...(head ? { previous: head } : {}),
          producer: { kind: 'workflow', ...(self ? { workflowId: self.workflowId, runId: self.runId } : {}) },
          onProgress: (done, total) => ctx.heartbeat({ done, total }),
        });
      } catch (err) {
        if (err instanceof ValidationError || err instanceof AuditChainError) {
          throw ApplicationFailure.nonRetryable(err.message, err.name);
        }
        throw err;
      }
    },
  };
}
