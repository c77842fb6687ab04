/**
 * Keeps an SDK-managed Temporal dev server alive until SIGTERM or SIGINT, for machines without a `temporal` CLI:
 * the SDK downloads the server (needs internet). `startDevServer` runs it as
 * `node --import tsx client/dev/temporal-host.ts '<HostConfig as JSON>'` and waits for the port itself.
 */
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { stewardSearchAttributes } from '../../model/search-attributes';

interface HostConfig {
  port: number;
  uiPort?: number;
  uiCodecEndpoint?: string;
  dbFile?: string;
  namespace: string;
  /** Use this CLI instead of downloading one (lets the host be tried on a machine without internet). */
  executable?: string;
}

const config = JSON.parse(process.argv[2] ?? '') as HostConfig;
const env = await TestWorkflowEnvironment.createLocal({
  server: {
    ...(config.executable ? { executable: { type: 'existing-path', path: config.executable } } : {}),
    ip: '127.0.0.1',
    port: config.port,
    ui: config.uiPort !== undefined,
    ...(config.uiPort === undefined ? {} : { uiPort: config.uiPort }),
    ...(config.dbFile ? { dbFilename: config.dbFile } : {}),
    ...(config.uiCodecEndpoint ? { extraArgs: ['--ui-codec-endpoint', config.uiCodecEndpoint] } : {}),
    namespace: config.namespace,
    searchAttributes: [...stewardSearchAttributes],
    log: { format: 'pretty', level: 'warn' },
  },
});
console.log(`temporal-host: dev server on ${env.address}, host pid ${process.pid}`);

const keepAlive = setInterval(() => undefined, 60_000);
const shutdown = (sig: NodeJS.Signals): void => {
  console.log(`temporal-host: ${sig}, stopping the dev server`);
  clearInterval(keepAlive);
  env.teardown().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error('temporal-host: teardown failed', err);
      process.exit(1);
    },
  );
};
process.once('SIGTERM', shutdown);
process.once('SIGINT', shutdown);
