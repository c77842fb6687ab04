/**
 * harden: kernel, accounts, security services and cleanup timers, then the SSH baseline and the firewall, each
 * commit-confirmed so a change that cuts access reverts itself on the host. The result carries the hardening report.
 */
import type { Activities } from '../activities';
import type { HostReport } from '../model/report';
import { HostOperation, type HostOperationInput } from './host-operation';
import { HOST_INSPECT, HOST_STEP, RISKY_STEP } from './options';
import { proxySteps } from './retry';

const { inspectHost } = proxySteps<Activities>(HOST_INSPECT);
const { hardenKernel, hardenAccounts, ensureSecurityServices, ensureCleanupTimers } = proxySteps<Activities>(HOST_STEP);
const { hardenSsh, applyFirewall } = proxySteps<Activities>(RISKY_STEP);

export const HARDEN_STEPS = [
  'inspectHost',
  'hardenKernel',
  'ensureSecurityServices',
  'hardenAccounts',
  'ensureCleanupTimers',
  'hardenSsh',
  'applyFirewall',
];

export async function hardenHost(input: HostOperationInput): Promise<HostReport> {
  const op = new HostOperation('harden', input, HARDEN_STEPS);
  return op.run(async () => {
    const facts = await op.step('inspectHost', inspectHost);
    if (!input.spec.hosts.find((h) => h.name === input.host)?.hostKey) op.pinHostKey(facts.hostKey);
    await op.step('hardenKernel', hardenKernel);
    // Packages may create directories (cron.*) that the account step then restricts.
    await op.step('ensureSecurityServices', ensureSecurityServices);
    await op.step('hardenAccounts', hardenAccounts);
    await op.step('ensureCleanupTimers', ensureCleanupTimers);
    await op.step('hardenSsh', hardenSsh);
    await op.step('applyFirewall', applyFirewall);
  });
}
