/**
 * deploy: the OpenClaw stack behind Caddy, as a saga. Images, secrets and a validated config come first and change
 * nothing live; then the release is applied, waited on and verified from the outside. A release that does not turn
 * healthy or fails verification is rolled back to the previous one (or taken down on a first deploy), and the run
 * fails saying why.
 */
import { ApplicationFailure } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { HostReport } from '../model/report';
import { describeFailure, HostOperation, type HostOperationInput } from './host-operation';
import { HOST_INSPECT, HOST_STEP } from './options';
import { proxySteps } from './retry';

const { inspectHost } = proxySteps<Activities>(HOST_INSPECT);
const { transferStackImages, ensureStackSecrets, prepareStack, applyStack, verifyStack, commitStack, rollbackStack } =
  proxySteps<Activities>(HOST_STEP);

export const DEPLOY_STEPS = [
  'inspectHost',
  'transferStackImages',
  'ensureStackSecrets',
  'prepareStack',
  'applyStack',
  'verifyStack',
  'commitStack',
  'rollbackStack',
];

export async function deployHost(input: HostOperationInput): Promise<HostReport> {
  const op = new HostOperation('deploy', input, DEPLOY_STEPS);
  return op.run(async () => {
    const facts = await op.step('inspectHost', inspectHost);
    if (!input.spec.hosts.find((h) => h.name === input.host)?.hostKey) op.pinHostKey(facts.hostKey);
    await op.step('transferStackImages', transferStackImages);
    await op.step('ensureStackSecrets', ensureStackSecrets);
    await op.step('prepareStack', prepareStack);
    if (input.mode === 'plan') {
      await op.step('applyStack', applyStack);
      op.skip('verifyStack', 'commitStack', 'rollbackStack');
      return;
    }
    try {
      await op.step('applyStack', applyStack);
      const { controls } = await op.step('verifyStack', verifyStack);
      const failed = controls.filter((c) => c.status === 'fail');
      if (failed.length > 0) {
        throw ApplicationFailure.nonRetryable(
          `verification failed: ${failed.map((c) => `${c.control} (expected ${c.expected}, observed ${c.observed})`).join('; ')}`,
          'VerificationFailed',
        );
      }
    } catch (err) {
      op.skip('verifyStack', 'commitStack');
      await op.step('rollbackStack', rollbackStack);
      throw ApplicationFailure.nonRetryable(
        `${describeFailure(err)}; rolled back to the previous release`,
        'DeployRolledBack',
      );
    }
    await op.step('commitStack', commitStack);
    op.skip('rollbackStack');
  });
}
