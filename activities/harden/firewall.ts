/**
 * The host firewall harden applies: nftables, default-deny ingress, Docker-published ports included.
 *
 * steward owns exactly one table, `inet steward` (IPv4 and IPv6 in one), in `/etc/nftables.conf`, which Debian's
 * nftables.service loads at boot before the network and Docker come up. The ruleset is never flushed: Docker's
 * tables (made through iptables-nft) and fail2ban's stay untouched. Ports Docker publishes cannot bypass it:
 * Docker DNATs them in prerouting, so they reach containers through the forward hook, never through input; a
 * forward chain here drops NEW connections from outside whose original destination port the spec does not allow.
 * In netfilter every base chain on a hook sees the packet and a drop in any of them is final, so Docker's own
 * accept rules cannot undo it.
 */
import type { Spec } from '../../model/schema';
import { run } from '../host/shell';
import { directoryResource, fileResource, type ObservedPath } from '../resources/files';
import type { Resource } from '../resources/resource';
import { serviceResource } from '../resources/system';
import { overridesResource, unitDropInPaths, unitDropInReplacement, unitOverrides } from './overrides';
import { MARKER, NFTABLES_CONF, NFTABLES_DROP_IN, TABLE, renderRuleset } from './firewall-rules';
import { assess, LIVE_PROBE, parseLive, type LiveRuleset } from './firewall-live';

// ---------------------------------------------------------------------------------------------------------------
// Resources and activation

const DROP_IN = [
  "# Managed by steward (harden). Debian's nftables.service flushes the WHOLE ruleset when stopped or restarted,",
  "# which would also remove Docker's and fail2ban's tables; stopping removes only steward's table instead.",
  '[Service]',
  'ExecStop=',
  `ExecStop=-/usr/sbin/nft delete table inet ${TABLE}`,
  '',
].join('\n');

/** A file resource that reloads systemd after writing, so a changed unit drop-in takes effect. */
function unitDropIn(resource: Resource<ObservedPath>): Resource<ObservedPath> {
  return {
    ...resource,
    apply: async (session, observed, changes) => {
      await resource.apply(session, observed, changes);
      await session.check('systemctl daemon-reload', { label: 'systemctl daemon-reload' });
    },
  };
}

/**
 * The firewall as resources, in apply order: the nftables.service drop-in (stopping or restarting the service
 * removes only steward's table instead of flushing Docker's and fail2ban's), `/etc/nftables.conf` (root:root 0600:
 * it names who may reach SSH, and only root can list the live rules anyway; checked with `nft -c -f` before it
 * replaces the old file), nftables.service enabled and active (starting it runs `nft -f /etc/nftables.conf`, so
 * the file loads at every boot, before Docker), and the live table itself, compared rule by rule with the spec and
 * reloaded from the file when it differs (a first apply, or someone changed the live rules).
 * Converging them changes the live firewall; run {@link FIREWALL_ACTIVATE} afterwards too when the file changed
 * (the commit-confirm wrapper does). Safe to repeat: a second converge changes nothing.
 * @throws non-retryable `InvalidSpec` from {@link renderRuleset}.
 */
export function firewallResources(spec: Spec, host: string): Resource[] {
  const root = { owner: 'root', group: 'root' };
  return [
    directoryResource({ path: '/etc/systemd/system/nftables.service.d', ...root, mode: '0755' }, host),
    unitDropIn(fileResource({ path: NFTABLES_DROP_IN, content: DROP_IN, ...root, mode: '0644' }, host)),
    fileResource(
      { path: NFTABLES_CONF, content: renderRuleset(spec), ...root, mode: '0600', validate: ['nft', '-c', '-f'] },
      host,
    ),
    overridesResource(
      {
        id: 'overrides:nftables',
        paths: unitDropInPaths('nftables.service'),
        find: (files) =>
          unitOverrides(
            files,
            NFTABLES_DROP_IN,
            "nftables.service loads /etc/nftables.conf; a stop removes only steward's table",
          ),
        replacement: unitDropInReplacement,
        afterApply: 'systemctl daemon-reload',
      },
      host,
    ),
    serviceResource('nftables'),
    liveRulesetResource(spec, host),
  ];
}

/**
 * Makes `/etc/nftables.conf` live now: `nft -f`, which replaces steward's table atomically and leaves every other
 * table alone. A file steward did not write (Debian's default flushes the whole ruleset, Docker's too; or no file,
 * after a revert to a host without one) is not loaded: steward's table is removed instead, which is exactly the
 * state before steward's first apply. Safe to repeat. Exits non-zero when nft refuses the file.
 */
export const FIREWALL_ACTIVATE = [
  `if grep -qs ${run(`^${MARKER}`)} ${run(NFTABLES_CONF)}; then`,
  `  nft -f ${run(NFTABLES_CONF)}`,
  `elif nft list table inet ${TABLE} >/dev/null 2>&1; then`,
  `  nft delete table inet ${TABLE}`,
  'fi',
].join('\n');

/**
 * steward's table as loaded in the kernel, compared with the spec (see {@link assess}); apply reloads
 * `/etc/nftables.conf` with {@link FIREWALL_ACTIVATE}. This is what repairs a live ruleset someone changed while
 * the file stayed steward's, and what makes a first apply effective even when nftables.service was already active.
 */
function liveRulesetResource(spec: Spec, host: string): Resource<LiveRuleset> {
  const id = `nftables:inet ${TABLE}`;
  return {
    id,
    probe: LIVE_PROBE,
    parse: (r) => parseLive(host, r),
    diff: (live) => {
      const differs = assess(spec, live).filter((c) => c.status === 'fail');
      if (differs.length === 0) return [];
      const before = live.loaded ? `differs: ${differs.map((c) => c.control).join(', ')}` : 'not loaded';
      return [{ resource: id, action: 'update', before, after: `as ${NFTABLES_CONF}` }];
    },
    apply: async (session) => {
      await session.check(FIREWALL_ACTIVATE, { label: `nft -f ${NFTABLES_CONF}` });
    },
  };
}

export { FIREWALL_FILES, NFTABLES_CONF, NFTABLES_DROP_IN, renderRuleset } from './firewall-rules';
export { firewallControls } from './firewall-live';
