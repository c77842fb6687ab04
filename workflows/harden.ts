/**
 * harden: kernel, accounts, security services and cleanup timers, then the SSH baseline and the firewall, each
 * commit-confirmed so a change that cuts access reverts itself on the host; then the file integrity baseline of the
 * hardened host, and, when updates left a reboot pending and the spec's reboot window is open, a reboot and the
 * stack verified after it. The result carries the hardening report.
 */
import type { Activities } from '../activities';
import type { HostReport } from '../model/report';
import { patched } from '@temporalio/workflow';
import { inRebootWindow, nextRebootWindow, parseRebootWindow } from '../model/reboot-window';
import { HostOperation, type HostOperationInput } from './host-operation';
import { HOST_INSPECT, HOST_STEP, REBOOT_STEP, RISKY_STEP } from './options';
import { proxySteps } from './retry';

const { inspectHost } = proxySteps<Activities>(HOST_INSPECT);
const { hardenKernel, hardenAccounts, ensureSecurityServices, ensureCleanupTimers, baselineIntegrity } =
  proxySteps<Activities>(HOST_STEP);
const { hardenSsh, applyFirewall } = proxySteps<Activities>(RISKY_STEP);
const { rebootHost } = proxySteps<Activities>(REBOOT_STEP);
const { verifyAfterReboot } = proxySteps<Activities>(HOST_STEP);

/**
 * Marks runs that take the file integrity baseline as their last step and may reboot inside the spec's reboot
 * window; runs started before do neither.
 */
export const HARDEN_TAIL_PATCH = 'steward-harden-integrity-baseline-and-reboot';

export const HARDEN_STEPS = [
  'inspectHost',
  'hardenKernel',
  'ensureSecurityServices',
  'hardenAccounts',
  'ensureCleanupTimers',
  'hardenSsh',
  'applyFirewall',
  'baselineIntegrity',
  'rebootHost',
  'verifyAfterReboot',
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
    if (!patched(HARDEN_TAIL_PATCH)) return op.skip('baselineIntegrity', 'rebootHost', 'verifyAfterReboot');
    await op.step('baselineIntegrity', baselineIntegrity);
    // A pending reboot (updates, a new kernel) happens only inside the spec's window, with the stack verified after.
    // rebootHost looks for one itself (needrestart's finding needs harden.auditing); outside the window the run
    // says when the window opens.
    const window = input.spec.harden.rebootWindow;
    if (input.mode === 'apply' && window && op.gatedByApproval) {
      // A reboot is no change a plan shows: a run whose plan was approved leaves it to a harden without approval.
      if (op.found('host.reboot-required')) {
        op.note('rebootHost', {
          id: 'host.reboot-window',
          severity: 'info',
          message: 'a reboot is pending; a harden that waited for approval does not reboot (it was not in the plan)',
        });
      }
    } else if (input.mode === 'apply' && window) {
      const w = parseRebootWindow(window);
      const now = new Date(Date.now());
      if (inRebootWindow(w, now)) {
        const reboot = await op.step('rebootHost', rebootHost);
        // Also when a retry found the reboot already done (nothing pending any more) after this run asked for it.
        if (reboot.changes.length > 0 || op.found('host.reboot-required')) {
          await op.step('verifyAfterReboot', verifyAfterReboot);
        }
      } else if (op.found('host.reboot-required')) {
        op.note('rebootHost', {
          id: 'host.reboot-window',
          severity: 'info',
          message: `the pending reboot waits for the reboot window (${window} UTC), next open at ${nextRebootWindow(w, now)}`,
        });
      }
    }
    op.skip('rebootHost', 'verifyAfterReboot');
  });
}
