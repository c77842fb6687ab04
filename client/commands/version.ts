/**
 * `steward --version`: steward's own version, the Temporal SDK's it runs on, and the Temporal server's when the
 * frontend answers within a few seconds (it is asked for its system info only: no payload, no codec key needed).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Connection } from '@temporalio/client';
import { connectTemporal } from '../../common/temporal-client';
import { describeTarget, type TemporalTarget } from '../../common/temporal-connection';

export interface Versions {
  readonly steward: string;
  readonly sdk: string;
  /** The server's version, or why it could not be had. */
  readonly server: { readonly version: string } | { readonly unreachable: string };
}

const require = createRequire(import.meta.url);

function packageVersion(file: string): string {
  const { version } = JSON.parse(readFileSync(file, 'utf8')) as { version?: unknown };
  return typeof version === 'string' ? version : 'unknown';
}

/** The versions; `target` is the Temporal target, or why it could not be resolved (the server then unreachable). */
export async function versions(target: TemporalTarget | { error: string }, timeoutMs = 3000): Promise<Versions> {
  const steward = packageVersion(new URL('../../package.json', import.meta.url).pathname);
  const sdk = packageVersion(require.resolve('@temporalio/client/package.json'));
  const server = 'error' in target ? { unreachable: target.error } : await serverVersion(target, timeoutMs);
  return { steward, sdk, server };
}

async function serverVersion(target: TemporalTarget, timeoutMs: number): Promise<Versions['server']> {
  const address = describeTarget(target);
  let connection: Connection | undefined;
  try {
    connection = await connectTemporal(target, timeoutMs);
    const info = await connection.withDeadline(Date.now() + timeoutMs, () =>
      connection!.workflowService.getSystemInfo({}),
    );
    return info.serverVersion ? { version: info.serverVersion } : { unreachable: `${address} gave no version` };
  } catch (err) {
    const why = err instanceof Error ? err.message.split('\n')[0] : String(err);
    return { unreachable: `${address}: ${why}` };
  } finally {
    await connection?.close().catch(() => {});
  }
}

export function formatVersions(v: Versions): string {
  const server = 'version' in v.server ? v.server.version : `unreachable (${v.server.unreachable})`;
  return [`steward ${v.steward}`, `Temporal SDK ${v.sdk}`, `Temporal server ${server}`].join('\n');
}
