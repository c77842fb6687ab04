import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import proto from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureSearchAttributes, SearchAttributeError } from '../../common/search-attributes';
import { findFreePort, isServerUp, startDevServer, stopProcess } from '../../client/dev/temporal';
import { stewardSearchAttributes } from '../../model/search-attributes';
import { type TestEnv, testEnv } from '../support/temporal';

const { IndexedValueType } = proto.temporal.api.enums.v1;
const KEYWORD = IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD;
const INT = IndexedValueType.INDEXED_VALUE_TYPE_INT;
const BOOL = IndexedValueType.INDEXED_VALUE_TYPE_BOOL;

async function customAttributes(connection: Connection, namespace: string): Promise<Record<string, number>> {
  const r = await connection.operatorService.listSearchAttributes({ namespace });
  return { ...(r.customAttributes as Record<string, number>) };
}

describe('the shared dev server', () => {
  let env: TestEnv;
  beforeAll(async () => {
    env = await testEnv();
  });
  afterAll(() => env?.teardown());

  it('has steward search attributes registered with their types', async () => {
    // Every attribute steward sets (README: StewardHost, StewardOperation, StewardOutcome, StewardChanges,
    // StewardTrigger), with the type the server indexes it as.
    expect(stewardSearchAttributes.map((k) => k.name)).toEqual([
      'StewardHost',
      'StewardOperation',
      'StewardOutcome',
      'StewardChanges',
      'StewardTrigger',
    ]);
    expect(await customAttributes(env.connection, env.namespace)).toMatchObject({
      StewardHost: KEYWORD,
      StewardOperation: KEYWORD,
      StewardOutcome: KEYWORD,
      StewardChanges: INT,
      StewardTrigger: KEYWORD,
    });
  });

  it('takes ensureSearchAttributes again without complaint: nothing is added or changed, one at a time or at once', async () => {
    const before = await customAttributes(env.connection, env.namespace);
    await ensureSearchAttributes(env.connection, env.namespace);
    await Promise.all([
      ensureSearchAttributes(env.connection, env.namespace),
      ensureSearchAttributes(env.connection, env.namespace),
    ]);
    expect(await customAttributes(env.connection, env.namespace)).toEqual(before);
  });

  it('refuses an attribute that exists with another type, naming it, and changes nothing', async () => {
    const before = await customAttributes(env.connection, env.namespace);
    const wrong = defineSearchAttributeKey('StewardChanges', SearchAttributeType.KEYWORD);
    const refused = ensureSearchAttributes(env.connection, env.namespace, [wrong]);
    await expect(refused).rejects.toBeInstanceOf(SearchAttributeError);
    await expect(refused).rejects.toThrow(
      `search attribute StewardChanges in namespace ${env.namespace} has IndexedValueType ${INT}, steward needs KEYWORD`,
    );
    expect(await customAttributes(env.connection, env.namespace)).toEqual(before);
  });
});

describe('startDevServer with a dbFile', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'steward-temporal-db-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('keeps workflows, and search attributes ensureSearchAttributes added, across a restart', async () => {
    const options = { port: await findFreePort(), dbFile: join(dir, 'temporal.db'), logFile: join(dir, 'server.log') };
    const workflowId = `persisted-${randomUUID()}`;
    // Not steward's (the server starts with those): ones only ensureSearchAttributes can have registered.
    const added = [
      defineSearchAttributeKey('StewardTestProbe', SearchAttributeType.KEYWORD),
      defineSearchAttributeKey('StewardTestFlag', SearchAttributeType.BOOL),
    ];

    const first = await startDevServer(options);
    try {
      const connection = await Connection.connect({ address: first.address });
      const handle = await new Client({ connection }).workflow.start('noop', {
        taskQueue: 'nobody-polls-this',
        workflowId,
      });
      await handle.terminate('only here to be remembered');
      const fresh = await customAttributes(connection, 'default');
      expect(fresh).toMatchObject({ StewardHost: KEYWORD, StewardChanges: INT, StewardTrigger: KEYWORD });
      expect(fresh).not.toHaveProperty('StewardTestProbe');
      expect(fresh).not.toHaveProperty('StewardTestFlag');
      // Two callers at once (a worker and a CLI starting together): both succeed, each attribute is there once.
      await Promise.all([
        ensureSearchAttributes(connection, 'default', added),
        ensureSearchAttributes(connection, 'default', added),
      ]);
      expect(await customAttributes(connection, 'default')).toEqual({
        ...fresh,
        StewardTestProbe: KEYWORD,
        StewardTestFlag: BOOL,
      });
      await connection.close();
    } finally {
      await stopProcess(first.pid);
    }
    expect(await isServerUp(first.address)).toBe(false);

    const second = await startDevServer(options);
    try {
      expect(second.pid).not.toBe(first.pid);
      const connection = await Connection.connect({ address: second.address });
      const description = await new Client({ connection }).workflow.getHandle(workflowId).describe();
      expect(description.type).toBe('noop');
      expect(description.status.name).toBe('TERMINATED');
      expect(await customAttributes(connection, 'default')).toMatchObject({
        StewardTestProbe: KEYWORD,
        StewardTestFlag: BOOL,
      });
      await connection.close();
    } finally {
      await stopProcess(second.pid);
    }
  });
});
