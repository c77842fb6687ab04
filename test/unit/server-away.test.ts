/**
 * Which errors a waiting CLI rides out (client/operation.ts `serverAway`): a server that is away, never a refusal or
 * a run's own failure.
 */
import { ServiceError, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, RetryState } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { serverAway } from '../../client/operation';

function grpcError(code: number): Error {
  return Object.assign(new Error(`${code} grpc`), { code, details: 'grpc', metadata: {} });
}

describe('serverAway', () => {
  it('is true for a server that stopped answering, bare or wrapped by the SDK', () => {
    for (const code of [1, 2, 4, 13, 14]) {
      expect(serverAway(grpcError(code))).toBe(true);
      expect(serverAway(new ServiceError('Failed to get Workflow execution history', { cause: grpcError(code) }))).toBe(
        true,
      );
    }
  });

  it('is false for refusals, missing runs, a run that failed, and errors that are not gRPC', () => {
    for (const code of [3, 5, 6, 7, 9, 16]) {
      expect(serverAway(grpcError(code))).toBe(false);
      expect(serverAway(new ServiceError('refused', { cause: grpcError(code) }))).toBe(false);
    }
    const failed = new WorkflowFailedError(
      'failed',
      ApplicationFailure.create({ message: 'x' }),
      RetryState.NON_RETRYABLE_FAILURE,
    );
    expect(serverAway(failed)).toBe(false);
    expect(serverAway(new Error('socket hang up'))).toBe(false);
    expect(serverAway(new ServiceError('no cause'))).toBe(false);
  });
});
