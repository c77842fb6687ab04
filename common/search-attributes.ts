/**
 * steward's search attributes in a namespace: registered by the worker at start, by `steward dev up` and by the
 * tests, on any Temporal server.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { isGrpcServiceError, type Connection } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
import { stewardSearchAttributes } from '../model/search-attributes';

const SEARCH_ATTRIBUTES_TIMEOUT_MS = 30_000;
const POLL_INTERVAL_MS = 200;
const GRPC_ALREADY_EXISTS = 6;

/** A search attribute exists with another type (types cannot change), or did not become visible in time. */
export class SearchAttributeError extends Error {
  override readonly name = 'SearchAttributeError';
}

/** A search attribute to register: name and SDK type (what `defineSearchAttributeKey` returns). */
export interface SearchAttributeDefinition {
  readonly name: string;
  readonly type: SearchAttributeType;
}

/** `temporal.api.enums.v1.IndexedValueType`, the numbers the operator service speaks. */
const indexedValueType: Record<SearchAttributeType, number> = {
  TEXT: 1,
  KEYWORD: 2,
  INT: 3,
  DOUBLE: 4,
  BOOL: 5,
  DATETIME: 6,
  KEYWORD_LIST: 7,
};

/**
 * Registers search attributes (default: steward's) in a namespace on any Temporal server, skipping those already
 * there, and waits until all are listed. Safe to retry and to call concurrently. Throws {@link SearchAttributeError} if one
 * exists with another type (types cannot change), or when they are not visible within 30 s.
 */
export async function ensureSearchAttributes(
  connection: Connection,
  namespace: string,
  keys: readonly SearchAttributeDefinition[] = stewardSearchAttributes,
): Promise<void> {
  const missing = async (): Promise<Record<string, number>> => {
    const { customAttributes } = await connection.operatorService.listSearchAttributes({ namespace });
    const result: Record<string, number> = {};
    for (const { name, type } of keys) {
      const registered = customAttributes?.[name];
      if (registered === undefined) result[name] = indexedValueType[type];
      else if (registered !== indexedValueType[type]) {
        throw new SearchAttributeError(
          `search attribute ${name} in namespace ${namespace} has IndexedValueType ${registered}, steward needs ${type}`,
        );
      }
    }
    return result;
  };

  const toAdd = await missing();
  if (Object.keys(toAdd).length === 0) return;
  try {
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: toAdd });
  } catch (err) {
    if (!(isGrpcServiceError(err) && err.code === GRPC_ALREADY_EXISTS)) throw err; // someone else was quicker
  }
  const deadline = Date.now() + SEARCH_ATTRIBUTES_TIMEOUT_MS;
  while (Object.keys(await missing()).length > 0) {
    if (Date.now() > deadline) {
      throw new SearchAttributeError(`search attributes ${Object.keys(toAdd).join(', ')} not visible in ${namespace}`);
    }
    await sleep(POLL_INTERVAL_MS);
  }
}
