import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ensureSearchAttributes,
  findFreePort,
  isServerUp,
  startDevServer,
  stopProcess,
} from '../../client/dev/temporal';
import { type TestEnv, testEnv } from '../support/temporal';

// temporal.api.enums.v1.IndexedValueType
const KEYWORD = 2;
const INT = 3;

describe('the shared dev server', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await testEnv();
  });
  afterAll(() => env?.teardown());

  it('has steward search attributes registered with their types', async () => {
    const { customAttributes } = await env.connection.operatorService.listSearchAttributes({
      namespace: env.namespace,
    });
    expect(customAttributes).toMatchObject({
      StewardHost: KEYWORD,
      StewardOperation: KEYWORD,
      StewardOutcome: KEYWORD,
      StewardChanges: INT,
    });
  });

  it('takes ensureSearchAttributes again without complaint', async () => {
    await ensureSearchAttributes(env.connection, env.namespace);
    await ensureSearchAttributes(env.connection, env.namespace);
  });
});

describe('startDevServer with a dbFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'steward-temporal-db-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('keeps workflows across a restart', async () => {
    const options = { port: await findFreePort(), dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'server.log') };
    const workflowId = `persisted-${randomUUID()}`;

    const first = await startDevServer(options);
    try {
      const connection = await Connection.connect({ address: first.address });
      const handle = await new Client({ connection }).workflow.start('noop', {
        taskQueue: 'nobody-polls-this',
        workflowId,
      });
      await handle.terminate('only here to be remembered');
      await connection.close();
    } finally {
      await stopProcess(first.pid);
    }
    expect(await isServerUp(first.address)).toBe(false);

    const second = await startDevServer(options);
    try {
      const connection = await Connection.connect({ address: second.address });
      const description = await new Client({ connection }).workflow.getHandle(workflowId).describe();
      expect(description.type).toBe('noop');
      expect(description.status.name).toBe('TERMINATED');
      await connection.close();
    } finally {
      await stopProcess(second.pid);
    }
  });
});
