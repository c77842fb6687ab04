/**
 * Audit: the filters runs are selected by, and the input and result of the `auditExport` workflow that a schedule
 * runs to keep event histories beyond the namespace's retention. Pure: imported by the workflow, the activity and
 * the CLI alike.
 */
import { z } from 'zod';
import { resourceNameSchema } from './schema';

/** How a run ended, from its execution status (and steward's outcome attribute for a run that reported failure). */
export const auditOutcomes = ['running', 'completed', 'failed', 'canceled', 'terminated', 'timed-out'] as const;
export type AuditOutcome = (typeof auditOutcomes)[number];

/** An operation name as steward records it in `StewardOperation` (provision, drift, …). */
export const operationNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9-]{0,39}$/, 'must be an operation name such as provision, harden, deploy or drift');

/** Runs whose search attributes match every given filter. */
export const auditSelectionSchema = z.object({
  host: resourceNameSchema.optional().meta({ description: 'only runs on this host (StewardHost)' }),
  operation: operationNameSchema.optional().meta({ description: 'only this operation (StewardOperation)' }),
  outcome: z.enum(auditOutcomes).optional().meta({ description: 'only runs that ended this way' }),
});
export type AuditSelection = z.infer<typeof auditSelectionSchema>;

/** Input of the `auditExport` workflow. */
export const auditExportInputSchema = auditSelectionSchema
  .extend({
    directory: z
      .string()
      .regex(/^\//, 'must be an absolute path on the worker machine')
      .meta({ description: 'the export chain directory on the worker machine; each run adds one export to it' }),
    since: z.iso
      .datetime({ offset: true })
      .optional()
      .meta({
        description:
          'export runs that closed at or after this time; default: where the previous export in the directory ' +
          'ended (every run still in retention when there is none)',
      }),
    settleSeconds: z
      .number()
      .int()
      .min(0)
      .max(3600)
      .default(60)
      .meta({ description: 'runs that closed this recently wait for the next export (visibility settles)' }),
  })
  .strict()
  .meta({ title: 'auditExport input' });
export type AuditExportInput = z.input<typeof auditExportInputSchema>;

/** What one export wrote (or that there was nothing to write). */
export interface AuditExportResult {
  /** The export's directory (`<directory>/<sequence>`), absent when no run closed in the window. */
  readonly exportDir?: string;
  readonly sequence?: number;
  readonly runs: number;
  /** SHA-256 of the export's manifest.json: the chain's new head; the next export records it. */
  readonly manifestSha256?: string;
  readonly chainHash?: string;
  readonly previousManifestSha256?: string | null;
  /** Runs closed in [since, until) were selected. */
  readonly window: { readonly since: string | null; readonly until: string };
}
