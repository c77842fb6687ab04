/**
 * What a memory proof reports, whichever adapter ran it (the plugin inside the gateway, or the REST server): the
 * steps it took, each timed, with evidence or the error. Parsed with zod, since it is output from the host.
 */
import { z } from 'zod';
import { validate } from '../../model/validate';

/** Canary texts start with this; stale canaries of an interrupted run are recognised by it and removed. */
export const CANARY_PREFIX = 'steward memory canary';

export type ProofOp = 'canary' | 'write' | 'readback' | 'recall';

export interface ProofRequest {
  readonly op: ProofOp;
  readonly userId: string;
  readonly prefix: string;
  readonly text: string;
  /** The memory to read back (readback, recall). */
  readonly id?: string;
}

const stepSchema = z.object({
  step: z.enum(['init', 'cleanup', 'write', 'read', 'search', 'history', 'delete', 'gone', 'embed']),
  ok: z.boolean(),
  ms: z.number(),
  detail: z.record(z.string(), z.unknown()).optional(),
  error: z.string().optional(),
});

export const proofReportSchema = z.object({
  warnings: z.array(z.string()).default([]),
  steps: z.array(stepSchema),
  history: z.object({ enabled: z.boolean() }).default({ enabled: false }),
  /** The mem0 configuration the proof ran with (paths, dimension, threshold), as far as the adapter knows it. */
  config: z.record(z.string(), z.unknown()).default({}),
});

export type ProofStep = z.infer<typeof stepSchema>;
export type ProofReport = z.infer<typeof proofReportSchema>;

/** @throws ValidationError when the host printed something else. */
export function parseProofReport(data: unknown, host: string): ProofReport {
  return validate(proofReportSchema, data, `memory proof output on ${host}`);
}

/** A unique canary text: the prefix, a random id, and what it is for. */
export function canaryText(nonce: string, purpose: 'canary' | 'persistence'): string {
  return `${CANARY_PREFIX} ${nonce} ${purpose} written by steward to prove memory works`;
}

/**
 * Backup canaries start with this: one lives in the probe user's memories (each backup replaces the last), so every
 * snapshot holds one, and a restore proves the memories came back by reading and searching for it.
 */
export const BACKUP_CANARY_PREFIX = 'steward backup canary';

export function backupCanaryText(nonce: string): string {
  return `${BACKUP_CANARY_PREFIX} ${nonce} kept by steward so a restore can prove memories came back`;
}
