/** provision: base packages, Docker engine, the ops user and the stack's directories on one host. */
import type { Activities } from '../activities';
import type { HostReport } from '../model/report';
import { HostOperation, type HostOperationInput } from './host-operation';
import { HOST_INSPECT, HOST_STEP } from './options';
import { proxySteps } from './retry';

const { inspectHost } = proxySteps<Activities>(HOST_INSPECT);
const { ensureBasePackages, ensureDockerEngine, ensureOpsUser, ensureStackLayout } = proxySteps<Activities>(HOST_STEP);

export const PROVISION_STEPS = [
  'inspectHost',
  'ensureBasePackages',
  'ensureDockerEngine',
  'ensureOpsUser',
  'ensureStackLayout',
];

export async function provisionHost(input: HostOperationInput): Promise<HostReport> {
  const op = new HostOperation('provision', input, PROVISION_STEPS);
  return op.run(async () => {
    const facts = await op.step('inspectHost', inspectHost);
    if (!input.spec.hosts.find((h) => h.name === input.host)?.hostKey) op.pinHostKey(facts.hostKey);
    await op.step('ensureBasePackages', ensureBasePackages);
    await op.step('ensureDockerEngine', ensureDockerEngine);
    await op.step('ensureOpsUser', ensureOpsUser);
    await op.step('ensureStackLayout', ensureStackLayout);
  });
}
