/**
 * Search attributes steward sets on every run, so the Temporal UI and `steward status`/`audit` can filter by
 * host, operation and outcome. Pure: imported by workflows, the client and the dev-server setup alike.
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const StewardHost = defineSearchAttributeKey('StewardHost', SearchAttributeType.KEYWORD);
export const StewardOperation = defineSearchAttributeKey('StewardOperation', SearchAttributeType.KEYWORD);
export const StewardOutcome = defineSearchAttributeKey('StewardOutcome', SearchAttributeType.KEYWORD);
export const StewardChanges = defineSearchAttributeKey('StewardChanges', SearchAttributeType.INT);

/** Every key, for registering them on a server. */
export const stewardSearchAttributes = [StewardHost, StewardOperation, StewardOutcome, StewardChanges] as const;
