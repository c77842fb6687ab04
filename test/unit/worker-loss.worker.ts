/**
 * A worker process for test/unit/worker-loss.test.ts to kill with SIGKILL: its `scripted` activity heartbeats
 * every 200 ms and never ends, so only the process dying can stop its heartbeats. Prints `started <key>` when an
 * attempt starts.
 *   node --import tsx test/unit/worker-loss.worker.ts ADDRESS NAMESPACE TASK_QUEUE
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { heartbeat } from '@temporalio/activity';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { encryptingDataConverter } from '../../codec/aes-gcm';
import { keyRingFromEnv } from '../../codec/keys';

const [address, namespace, taskQueue] = process.argv.slice(2);
if (!address || !namespace || !taskQueue) {
  console.error('usage: worker-loss.worker.ts ADDRESS NAMESPACE TASK_QUEUE');
  process.exit(64);
}
const keys = await keyRingFromEnv();
if (!keys) throw new Error('no codec keys in the environment');
Runtime.install({ logger: new DefaultLogger('WARN') });
const worker = await Worker.create({
  connection: await NativeConnection.connect({ address }),
  namespace,
  taskQueue,
  dataConverter: encryptingDataConverter(keys),
  // Every heartbeat goes out: only the kill, never throttling, may time this attempt out.
  maxHeartbeatThrottleInterval: '200 milliseconds',
  activities: {
    async scripted(key: string): Promise<string> {
      console.log(`started ${key}`);
      for (;;) {
        heartbeat();
        await sleep(200);
      }
    },
  },
});
await worker.run();
