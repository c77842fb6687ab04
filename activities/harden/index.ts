/**
 * Harden: kernel and accounts, security services, cleanup timers, then the two changes that can cut access — the
 * SSH baseline and the firewall — each applied commit-confirmed. Every step returns the controls it checked, which
 * together form the host's hardening report.
 */
import type { ControlResult } from '../../model/report';
import type { Spec } from '../../model/schema';
import { activityStep, heartbeat, targetOf, type ActivityDeps, type StepInput, type StepResult } from '../context';
import { applyConfirmed, type ConfirmedChange } from './confirm';
import type { HostSession } from '../host/session';
import { FIREWALL_ACTIVATE, FIREWALL_FILES, firewallControls } from './firewall';
import { KERNEL_ACTIVATE, kernelControls } from './kernel';
import { integrityControls, intrusionActivate, serviceControls } from './services';
import { SSH_ACTIVATE, SSHD_DROP_IN, sshControls } from './ssh';
import { cleanupControls } from './timers';
import { AUDITING_ACTIVATE, auditingControls, restartFindings, stackAfterUpdatesControl } from './auditing';
import { converge } from '../resources/resource';
import { rebootHost, verifyAfterReboot } from './reboot';
import { LOGGING_ACTIVATE, loggingControls } from './logging';
import { resourcesOf, type SliceName } from '../catalogue';
import { redactedResult } from '../redact';

export interface HardenStepResult extends StepResult {
  readonly controls: ControlResult[];
}

/** Files the SSH baseline writes; the commit-confirm revert restores them. */
export const SSH_FILES = [SSHD_DROP_IN, '/etc/issue.net', '/etc/ssh/moduli'];

export function createHardenActivities({ pool }: ActivityDeps) {
  const session = (input: StepInput) => pool.get(targetOf(input));

  /** Applies a change commit-confirmed, then reads its controls over a fresh session (the old one may predate it). */
  const confirmedStep = (
    input: StepInput,
    change: () => ConfirmedChange,
    controls: (s: HostSession, spec: Spec) => Promise<ControlResult[]>,
  ): Promise<HardenStepResult> =>
    activityStep(async () => {
      const target = targetOf(input);
      const s = await pool.get(target);
      const changes = await applyConfirmed(s, target, change(), input.spec.harden.confirmSeconds, input.mode);
      if (changes.length > 0 && input.mode === 'apply') await pool.forget(target);
      return { changes, findings: [], controls: await controls(await pool.get(target), input.spec) };
    });

  return {
    /** Kernel settings (keeping ip_forward for Docker), module blacklist, no core dumps. */
    async hardenKernel(input: StepInput): Promise<HardenStepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const changes = await converge(s, resourcesOf('harden.kernel', input), input.mode);
        if (input.mode === 'apply' && changes.length > 0) await s.check(KERNEL_ACTIVATE, { label: 'sysctl -p' });
        return { changes, findings: [], controls: await kernelControls(s, input.spec) };
      });
    },

    /** Sensitive file modes, locked empty passwords, login umask 027. */
    async hardenAccounts(input: StepInput): Promise<HardenStepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const changes = await converge(s, resourcesOf('harden.accounts', input), input.mode);
        return { changes, findings: [], controls: [] };
      });
    },

    /**
     * Security updates and needrestart, unattended security upgrades, fail2ban, file integrity monitoring, process
     * accounting, remote log shipping, and the auditing baseline (debsums, rkhunter, auditd, sysstat).
     */
    async ensureSecurityServices(input: StepInput): Promise<HardenStepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const spec: Spec = input.spec;
        const slice = (name: SliceName) => resourcesOf(name, { ...input, onProgress: heartbeat });
        const apply = input.mode === 'apply';
        // needrestart's policy first: the package runs after every apt run from then on, this one included.
        const changes = await converge(s, slice('harden.restarts'), input.mode);
        changes.push(...(await converge(s, slice('harden.security-packages'), input.mode)));
        const updates = await converge(s, slice('harden.security-updates'), input.mode);
        changes.push(...updates, ...(await converge(s, slice('harden.upgrades'), input.mode)));
        const intrusion = await converge(s, slice('harden.intrusion'), input.mode);
        if (apply && intrusion.length > 0) {
          await s.check(intrusionActivate(spec), { label: 'activate security services', timeoutMs: 120_000 });
        }
        changes.push(...intrusion, ...(await converge(s, slice('harden.intrusion-services'), input.mode)));
        const logging = await converge(s, slice('harden.logging'), input.mode);
        if (apply && logging.length > 0) await s.check(LOGGING_ACTIVATE, { label: 'restart rsyslog' });
        changes.push(...logging, ...(await converge(s, slice('harden.logging-services'), input.mode)));
        const auditing = await converge(s, slice('harden.auditing'), input.mode);
        if (apply && auditing.length > 0) await s.check(AUDITING_ACTIVATE, { label: 'load auditing units and rules' });
        changes.push(...auditing, ...(await converge(s, slice('harden.auditing-services'), input.mode)));
        if (!apply) return { changes, findings: [], controls: [] };
        // What upgrades leave behind (services needrestart would not restart, a newer kernel), and the stack's
        // containers after updates were installed.
        // Read-only probes, each on its own channel of the one connection: the host runs them side by side.
        const [findings, serviceState, auditState, shipping] = await Promise.all([
          spec.harden.auditing ? restartFindings(s) : Promise.resolve([]),
          serviceControls(s, spec),
          auditingControls(s, spec),
          loggingControls(s, spec),
        ]);
        const controls = [...serviceState, ...auditState, ...shipping];
        if (updates.length > 0) controls.push(await stackAfterUpdatesControl(s));
        return { changes, findings, controls };
      });
    },

    /** Docker prune, journal vacuum and backup rotation timers. */
    async ensureCleanupTimers(input: StepInput): Promise<HardenStepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const changes = await converge(s, resourcesOf('harden.cleanup', input), input.mode);
        if (input.mode === 'apply' && changes.length > 0)
          await s.check('systemctl daemon-reload', { label: 'daemon-reload' });
        changes.push(...(await converge(s, resourcesOf('harden.cleanup-timers', input), input.mode)));
        return { changes, findings: [], controls: await cleanupControls(s) };
      });
    },

    /** The sshd baseline, commit-confirmed; effective values read back with `sshd -T`. */
    async hardenSsh(input: StepInput): Promise<HardenStepResult> {
      const change = (): ConfirmedChange => ({
        name: 'ssh',
        resources: resourcesOf('harden.ssh', input),
        files: SSH_FILES,
        activate: SSH_ACTIVATE,
      });
      return confirmedStep(input, change, sshControls);
    },

    /** The file integrity baseline, taken last so it is the hardened host; its controls. */
    async baselineIntegrity(input: StepInput): Promise<HardenStepResult> {
      return activityStep(async () => {
        const s = await session(input);
        const changes = await converge(s, resourcesOf('harden.integrity-baseline', input), input.mode);
        return {
          changes,
          findings: [],
          controls: input.mode === 'apply' ? await integrityControls(s, input.spec) : [],
        };
      });
    },

    /** Reboots the host when a reboot is pending (the workflow calls it inside the spec's reboot window). */
    async rebootHost(input: StepInput): Promise<StepResult> {
      return activityStep(() => rebootHost(pool, targetOf(input), input.mode));
    },

    /** After a reboot: the deployed stack healthy and answering through the proxy again. */
    async verifyAfterReboot(input: StepInput): Promise<HardenStepResult> {
      return activityStep(async () => {
        const { controls, findings } = await verifyAfterReboot(await session(input), input.spec, heartbeat);
        return redactedResult({ changes: [], findings, controls });
      });
    },

    /** The nftables firewall, commit-confirmed: default-deny ingress, Docker-published ports included. */
    async applyFirewall(input: StepInput): Promise<HardenStepResult> {
      const change = (): ConfirmedChange => ({
        name: 'firewall',
        resources: resourcesOf('harden.firewall', input),
        files: FIREWALL_FILES,
        activate: FIREWALL_ACTIVATE,
      });
      return confirmedStep(input, change, firewallControls);
    },
  };
}
