/**
 * Search attributes steward sets on every run, so the Temporal UI and `steward status`/`audit` can filter by host,
 * operation, outcome and who started the run. Pure: imported by workflows, the client and the dev-server setup alike.
 */
import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';

export const StewardHost = defineSearchAttributeKey('StewardHost', SearchAttributeType.KEYWORD);
export const StewardOperation = defineSearchAttributeKey('StewardOperation', SearchAttributeType.KEYWORD);
export const StewardOutcome = defineSearchAttributeKey('StewardOutcome', SearchAttributeType.KEYWORD);
export const StewardChanges = defineSearchAttributeKey('StewardChanges', SearchAttributeType.INT);
/** Who started the run: `cli:<user>@<hostname>` or `schedule:<schedule id>`; children carry their parent's. */
export const StewardTrigger = defineSearchAttributeKey('StewardTrigger', SearchAttributeType.KEYWORD);

/** Every key, for registering them on a server. */
export const stewardSearchAttributes = [
  StewardHost,
  StewardOperation,
  StewardOutcome,
  StewardChanges,
  StewardTrigger,
] as const;

/**
 * The search attributes a run starts with: its host (`fleet` for a run over several), its operation, outcome
 * `running`, and who started it when that is known.
 */
export function startAttributes(run: {
  readonly host?: string;
  readonly operation: string;
  readonly trigger?: string;
}): SearchAttributePair[] {
  return [
    ...(run.host ? [{ key: StewardHost, value: run.host }] : []),
    { key: StewardOperation, value: run.operation },
    { key: StewardOutcome, value: 'running' },
    ...(run.trigger ? [{ key: StewardTrigger, value: run.trigger }] : []),
  ];
}
