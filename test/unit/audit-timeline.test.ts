/**
 * `steward audit <id>` without a server: a timeline built from a history whose payloads are really encrypted —
 * steps, attempts, the failure behind each retry, child workflows, changes, failures, who started the run — with
 * and without the codec key, and after a round trip through Temporal's JSON history format.
 */
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import proto from '@temporalio/proto';
import { describe, expect, it } from 'vitest';
import { historyFromJson, historyToJson, type History, type HistoryEvent } from '../../common/audit/history';
import { buildTimeline, payloadDecoder, startedByOf, type RunContext } from '../../client/audit/timeline';
import { AesGcmPayloadCodec, isEncrypted } from '../../codec/aes-gcm';
import { generateKey, KeyRing } from '../../codec/keys';

const codec = new AesGcmPayloadCodec(KeyRing.of([generateKey()]));
const T0 = Date.parse('2026-03-01T10:00:00Z') / 1000;
const SECRET_MARK = 'spec-value-that-must-stay-encrypted';

async function sealed(value: unknown): Promise<{ payloads: Payload[] }> {
  return { payloads: await codec.encode([defaultPayloadConverter.toPayload(value)]) };
}

function attr(value: string): Payload {
  return defaultPayloadConverter.toPayload(value);
}

let nextId = 0;
/** An event as the server sends it: id, time, type (from the attributes' name) and attributes. */
function ev(atSeconds: number, attributes: Record<string, unknown>): HistoryEvent {
  nextId += 1;
  const key = Object.keys(attributes)[0] as string;
  const constant = key
    .replace(/EventAttributes$/, '')
    .replace(/[A-Z]/g, (c) => `_${c}`)
    .toUpperCase();
  const eventType = proto.temporal.api.enums.v1.EventType[`EVENT_TYPE_${constant}` as 'EVENT_TYPE_UNSPECIFIED'];
  return { eventId: nextId, eventTime: { seconds: T0 + atSeconds, nanos: 0 }, eventType, ...attributes } as never;
}

const change = { resource: 'package:docker.io', action: 'install' };

async function provisionHistory(): Promise<History> {
  nextId = 0;
  return {
    events: [
      ev(0, {
        workflowExecutionStartedEventAttributes: {
          workflowType: { name: 'provisionHost' },
          identity: 'alice@laptop',
          input: await sealed({ spec: { note: SECRET_MARK }, host: 'web1', mode: 'apply' }),
          searchAttributes: { indexedFields: { StewardTrigger: attr('cli:alice@laptop') } },
        },
      }),
      ev(1, {
        activityTaskScheduledEventAttributes: {
          activityId: '1',
          activityType: { name: 'inspectHost' },
          input: await sealed({ spec: { note: SECRET_MARK } }),
        },
      }), // 2
      ev(1, { activityTaskStartedEventAttributes: { scheduledEventId: 2, attempt: 1 } }),
      ev(2, { activityTaskCompletedEventAttributes: { scheduledEventId: 2, result: await sealed({ os: 'debian' }) } }),
      ev(2, {
        activityTaskScheduledEventAttributes: { activityId: '2', activityType: { name: 'ensureDockerEngine' } },
      }), // 5
      ev(9, {
        activityTaskStartedEventAttributes: {
          scheduledEventId: 5,
          attempt: 3,
          lastFailure: {
            message: 'apt lock held by another process',
            applicationFailureInfo: { type: 'CommandFailed' },
          },
        },
      }),
      ev(14, {
        activityTaskCompletedEventAttributes: {
          scheduledEventId: 5,
          result: await sealed({ changes: [change], findings: [] }),
        },
      }),
      ev(14, {
        startChildWorkflowExecutionInitiatedEventAttributes: {
          workflowId: 'harden/web1/2026-03-01T10:00:14Z',
          workflowType: { name: 'hardenHost' },
        },
      }), // 8
      ev(15, {
        childWorkflowExecutionStartedEventAttributes: {
          initiatedEventId: 8,
          workflowExecution: { workflowId: 'harden/web1/2026-03-01T10:00:14Z', runId: 'child-run' },
        },
      }),
      ev(20, {
        childWorkflowExecutionFailedEventAttributes: {
          initiatedEventId: 8,
          failure: {
            message: 'harden of web1 failed: sshd -t rejected the drop-in',
            applicationFailureInfo: { type: 'OperationFailed', nonRetryable: true },
          },
        },
      }),
      ev(20, {
        activityTaskScheduledEventAttributes: { activityId: '3', activityType: { name: 'ensureStackLayout' } },
      }), // 11
      ev(21, { activityTaskStartedEventAttributes: { scheduledEventId: 11, attempt: 1 } }),
      ev(22, {
        activityTaskFailedEventAttributes: {
          scheduledEventId: 11,
          failure: {
            message: 'chown: invalid user',
            applicationFailureInfo: { type: 'CommandFailed', nonRetryable: true },
          },
        },
      }),
      ev(22, {
        workflowExecutionFailedEventAttributes: {
          failure: {
            message: 'provision of web1 failed: chown: invalid user',
            applicationFailureInfo: {
              type: 'OperationFailed',
              nonRetryable: true,
              details: await sealed({ host: 'web1', status: 'failed', changes: [change], steps: [] }),
            },
          },
        },
      }),
    ],
  };
}

const run: RunContext = {
  workflowId: 'provision/web1/2026-03-01T10:00:00Z',
  runId: 'run-1',
  status: 'Failed',
  searchAttributes: { StewardHost: 'web1', StewardOperation: 'provision', StewardOutcome: 'failed' },
};

describe('buildTimeline', () => {
  it('shows steps with attempts, the failure behind each retry, children, changes, failures and the starter', async () => {
    const t = await buildTimeline(await provisionHistory(), run, payloadDecoder(codec));
    expect(t).toMatchObject({
      workflowId: run.workflowId,
      type: 'provisionHost',
      outcome: 'failed',
      host: 'web1',
      operation: 'provision',
      mode: 'apply',
      startedBy: { kind: 'cli', name: 'alice@laptop', identity: 'alice@laptop' },
      startTime: '2026-03-01T10:00:00.000Z',
      durationMs: 22_000,
      events: 14,
      changes: [change],
      error: 'provision of web1 failed: chown: invalid user [OperationFailed]',
    });
    expect(t.undecoded).toBeUndefined();
    expect(t.steps.map((s) => [s.kind, s.name, s.state, s.offsetMs, s.durationMs, s.attempts])).toEqual([
      ['activity', 'inspectHost', 'completed', 1000, 1000, 1],
      ['activity', 'ensureDockerEngine', 'completed', 2000, 12_000, 3],
      ['child', 'hardenHost', 'failed', 14_000, 6000, undefined],
      ['activity', 'ensureStackLayout', 'failed', 20_000, 2000, 1],
    ]);
    expect(t.steps[1]).toMatchObject({
      retriedAfter: 'apt lock held by another process [CommandFailed]',
      changes: [change],
    });
    expect(t.steps[2]).toMatchObject({ id: 'harden/web1/2026-03-01T10:00:14Z', childRunId: 'child-run' });
    expect(t.retries).toEqual([
      { step: 'ensureDockerEngine', id: '2', attempts: 3, after: 'apt lock held by another process [CommandFailed]' },
    ]);
    expect(t.failures.map((f) => [f.source, f.offsetMs, f.type, f.nonRetryable])).toEqual([
      ['hardenHost (harden/web1/2026-03-01T10:00:14Z)', 20_000, 'OperationFailed', true],
      ['ensureStackLayout (3)', 22_000, 'CommandFailed', true],
      ['workflow', 22_000, 'OperationFailed', true],
    ]);
    expect(JSON.stringify(t)).not.toContain(SECRET_MARK);
  });

  it('shows everything that is not a payload without the key, and says what it could not decode', async () => {
    const t = await buildTimeline(await provisionHistory(), run, payloadDecoder());
    expect(t.steps.map((s) => s.name)).toEqual([
      'inspectHost',
      'ensureDockerEngine',
      'hardenHost',
      'ensureStackLayout',
    ]);
    expect(t.retries).toHaveLength(1);
    expect(t.changes).toEqual([]);
    expect(t.mode).toBeUndefined();
    expect(t.undecoded).toEqual(['payloads are encrypted and no codec key is set']);
  });

  it('reads the same timeline from Temporal JSON history, whose payloads stay encrypted', async () => {
    const history = await provisionHistory();
    const json = historyToJson(history);
    expect(json).not.toContain(SECRET_MARK);
    const parsed = JSON.parse(json) as { events: { eventType: string }[] };
    expect(parsed.events[0]?.eventType).toBe('EVENT_TYPE_WORKFLOW_EXECUTION_STARTED');
    const back = historyFromJson(json);
    const started = back.events?.[0]?.workflowExecutionStartedEventAttributes;
    expect(isEncrypted(started?.input?.payloads?.[0] as Payload)).toBe(true);
    expect(await buildTimeline(back, run, payloadDecoder(codec))).toEqual(
      await buildTimeline(history, run, payloadDecoder(codec)),
    );
  });

  it('adds the attempt and last failure of an activity still pending', async () => {
    const history = await provisionHistory();
    const events = (history.events ?? []).slice(0, 5); // ensureDockerEngine scheduled, not started yet
    const t = await buildTimeline(
      { events },
      {
        ...run,
        status: 'Running',
        pending: [{ activityId: '2', attempt: 2, lastFailure: { message: 'connection reset' } }],
      },
      payloadDecoder(codec),
    );
    expect(t.outcome).toBe('running');
    expect(t.closeTime).toBeUndefined();
    expect(t.steps[1]).toMatchObject({ name: 'ensureDockerEngine', state: 'scheduled', attempts: 2 });
    expect(t.retries).toEqual([{ step: 'ensureDockerEngine', id: '2', attempts: 2, after: 'connection reset' }]);
  });
});

describe('encoded failures', () => {
  /** A failure as steward's failure converter writes it: the text only inside an encrypted payload. */
  async function encoded(message: string): Promise<Record<string, unknown>> {
    const [encodedAttributes] = (await sealed({ message, stack_trace: `Error: ${message}\n    at step` })).payloads;
    return { message: 'Encoded failure', encodedAttributes };
  }

  it('shows the decoded text of encoded failures with the key, and "Encoded failure" without it', async () => {
    const history = await provisionHistory();
    const events = history.events ?? [];
    const failed = events.find((e) => e.activityTaskFailedEventAttributes)!.activityTaskFailedEventAttributes!;
    failed.failure = {
      ...(await encoded('chown: invalid user')),
      applicationFailureInfo: { type: 'CommandFailed', nonRetryable: true },
    };
    const pending = [{ activityId: '2', attempt: 2, lastFailure: await encoded('connection reset') }];
    const t = await buildTimeline(
      { events: events.slice(0, 5) },
      { ...run, status: 'Running', pending },
      payloadDecoder(codec),
    );
    expect(t.retries).toEqual([{ step: 'ensureDockerEngine', id: '2', attempts: 2, after: 'connection reset' }]);
    const whole = await buildTimeline(await withFailure(failed.failure), run, payloadDecoder(codec));
    expect(whole.steps.find((st) => st.name === 'ensureStackLayout')?.failure).toMatch(/^chown: invalid user/);
    const keyless = await buildTimeline(await withFailure(failed.failure), run, payloadDecoder());
    expect(keyless.steps.find((st) => st.name === 'ensureStackLayout')?.failure).toMatch(/^Encoded failure/);
    expect(keyless.failures.find((f) => f.source.startsWith('ensureStackLayout'))?.message).toBe(
      'Encoded failure [CommandFailed]',
    );
    expect(keyless.undecoded).toEqual(['payloads are encrypted and no codec key is set']);
  });

  async function withFailure(failure: unknown): Promise<History> {
    const history = await provisionHistory();
    const e = (history.events ?? []).find((x) => x.activityTaskFailedEventAttributes)!;
    e.activityTaskFailedEventAttributes!.failure = structuredClone(failure) as never;
    return history;
  }
});

describe('startedByOf', () => {
  it("prefers steward's trigger, then the schedule, then the parent, then the client identity", () => {
    expect(startedByOf({ searchAttributes: { StewardTrigger: ['schedule:steward/web1/drift'] } })).toEqual({
      kind: 'schedule',
      name: 'schedule:steward/web1/drift',
    });
    expect(startedByOf({ searchAttributes: { StewardTrigger: 'cli:bob@ops' }, identity: '42@ops' })).toEqual({
      kind: 'cli',
      name: 'bob@ops',
      identity: '42@ops',
    });
    expect(
      startedByOf({ searchAttributes: { TemporalScheduledById: 'nightly' }, identity: 'temporal-scheduler' }),
    ).toEqual({ kind: 'schedule', name: 'schedule:nightly', identity: 'temporal-scheduler' });
    expect(startedByOf({ searchAttributes: {}, parentWorkflowId: 'drift/web1', identity: '7@w' })).toMatchObject({
      kind: 'workflow',
      name: 'workflow:drift/web1',
    });
    expect(startedByOf({ searchAttributes: {}, identity: '4204@vm' })).toEqual({
      kind: 'client',
      name: '4204@vm',
      identity: '4204@vm',
    });
    expect(startedByOf({ searchAttributes: {}, memo: { trigger: 'cli:carol@box' } })).toEqual({
      kind: 'cli',
      name: 'carol@box',
    });
  });
});
