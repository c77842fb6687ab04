/** Who runs the CLI: no Temporal import, so the CLI's short path (client/local-worker.ts) can name its user. */
import { hostname, userInfo } from 'node:os';

/**
 * Who runs this CLI, as the runs it starts record it (`StewardTrigger`, and the client identity in each start
 * event): `$USER@hostname`, characters outside `[A-Za-z0-9._-]` replaced by `_`.
 */
export function cliUser(env: NodeJS.ProcessEnv = process.env): string {
  const clean = (s: string) => s.replace(/[^A-Za-z0-9._-]/g, '_') || 'unknown';
  return `${clean(env.USER || env.LOGNAME || userInfo().username)}@${clean(hostname())}`;
}
