/**
 * memory check: proves mem0 works on a host — databases intact, data paths owned and on a volume, a canary written,
 * read by id, found, in history, deleted and gone, and one read back outside the serving container (or, with
 * --restart-proof, across its restart) — and with --repair (mode apply)
 * backs up damaged databases, fixes ownership and mode drift, restarts the consumer and proves again. The run fails
 * when any control fails; the report carries every control with its evidence and time.
 */
import { ApplicationFailure } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ControlResult, HostReport } from '../model/report';
import { HostOperation, type HostOperationInput } from './host-operation';
import { HOST_INSPECT, HOST_STEP } from './options';
import { proxySteps } from './retry';

const { inspectHost } = proxySteps<Activities>(HOST_INSPECT);
const { checkMemoryDatabases, checkMemoryPaths, restartMemoryConsumer, proveMemoryCanary, proveMemoryPersistence } =
  proxySteps<Activities>(HOST_STEP);

export const MEMORY_STEPS = [
  'inspectHost',
  'checkMemoryDatabases',
  'checkMemoryPaths',
  'restartMemoryConsumer',
  'proveMemoryCanary',
  'proveMemoryPersistence',
];

/** One line per failed control: id, what was observed, and where. */
export function describeFailedControls(controls: readonly ControlResult[]): string {
  return controls
    .filter((c) => c.status === 'fail')
    .map((c) => `${c.control}: ${c.observed}${c.note ? ` (${c.note})` : ''}`)
    .join('; ');
}

export interface MemoryCheckInput extends HostOperationInput {
  /** Prove persistence across a restart of the consumer (`--restart-proof`) instead of without one. */
  readonly restartProof?: boolean;
}

export async function memoryCheckHost(input: MemoryCheckInput): Promise<HostReport> {
  const op = new HostOperation('memory', input, MEMORY_STEPS);
  return op.run(async () => {
    const facts = await op.step('inspectHost', inspectHost);
    if (!input.spec.hosts.find((h) => h.name === input.host)?.hostKey) op.pinHostKey(facts.hostKey);
    // Databases first: a damaged one is backed up before anything else touches the data.
    const databases = await op.step('checkMemoryDatabases', checkMemoryDatabases);
    const paths = await op.step('checkMemoryPaths', checkMemoryPaths);
    if (input.mode === 'apply' && paths.changes.length > 0) {
      await op.step('restartMemoryConsumer', restartMemoryConsumer);
    } else {
      op.skip('restartMemoryConsumer');
    }
    const canary = await op.step('proveMemoryCanary', proveMemoryCanary);
    const restartProof = input.restartProof === true;
    const persistence = await op.step('proveMemoryPersistence', (i) =>
      proveMemoryPersistence(restartProof ? { ...i, restartProof } : i),
    );
    const controls = [databases, paths, canary, persistence].flatMap((r) => r.controls);
    const failed = describeFailedControls(controls);
    if (failed) throw ApplicationFailure.nonRetryable(`memory check failed: ${failed}`, 'MemoryCheckFailed');
  });
}
