/** Global CLI options and the Temporal client they describe. */
import type { Connection } from '@temporalio/client';
import { Client } from '@temporalio/client';
import { encryptingDataConverter } from '../codec/aes-gcm';
import type { KeyRing } from '../codec/keys';
import { loadCodecKeys } from '../common/codec-keys';
import { connectTemporal } from '../common/temporal-client';
import type { GlobalOptions } from './globals';
import { cliUser } from './user';

export { type GlobalOptions } from './globals';
export { cliUser } from './user';

/**
 * A client whose payloads are encrypted with the codec keys ({@link loadCodecKeys}, unless `keys` are given); its
 * identity is {@link cliUser}.
 * @throws CodecKeyError before connecting when there are no keys.
 */
export async function connectClient(
  opts: Pick<GlobalOptions, 'address' | 'namespace' | 'temporal'> & { readonly spec?: string; readonly keys?: KeyRing },
): Promise<Client> {
  const keys = opts.keys ?? (await loadCodecKeys(opts));
  return clientOn(await connectTemporal(opts.temporal), opts.namespace, keys, cliUser());
}

/** A client on an open `connection`, as {@link connectClient} makes it, for the user `identity`. */
export function clientOn(connection: Connection, namespace: string, keys: KeyRing, identity: string): Client {
  const client = new Client({ connection, namespace, dataConverter: encryptingDataConverter(keys), identity });
  listings.set(
    client,
    new Client({
      connection,
      namespace,
      dataConverter: encryptingDataConverter(keys, { readPlaintext: true }),
      identity,
    }),
  );
  return client;
}

const listings = new WeakMap<Client, Client>();

/**
 * The client for listings (runs, schedules) on the connection of `client` from {@link connectClient}. The SDK decodes
 * the memo of every listed item, and one that another application (or an attacker) wrote in plaintext must not fail
 * the whole listing; only ids, states and search attributes of a listing are used, never its payloads.
 */
export function listingClient(client: Client): Client {
  return listings.get(client) ?? client;
}

/** Where a run can be seen in the Temporal UI, when the UI's address is known. */
export function uiLink(
  base: string | undefined,
  namespace: string,
  workflowId: string,
  runId?: string,
): string | undefined {
  if (!base) return undefined;
  const id = encodeURIComponent(workflowId);
  return `${base.replace(/\/$/, '')}/namespaces/${namespace}/workflows/${id}${runId ? `/${runId}` : ''}`;
}
