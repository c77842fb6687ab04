/**
 * `steward --version`: steward's own version, the Temporal SDK's it runs on, and the Temporal server's when the
 * frontend answers within a few seconds (it is asked for its system info only: no payload, no codec key needed).
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { Connection } from '@temporalio/client';

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

export async function versions(address: string, timeoutMs = 3000): Promise<Versions> {
  const steward = packageVersion(new URL('../../package.json', import.meta.url).pathname);
  const sdk = packageVersion(require.resolve('@temporalio/client/package.json'));
  return { steward, sdk, server: await serverVersion(address, timeoutMs) };
}

async function serverVersion(address: string, timeoutMs: number): Promise<Versions['server']> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: timeoutMs });
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
