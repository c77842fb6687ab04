/** Accounts and systemd units. */
import type { Change } from '../../model/report';
import { UnexpectedHostOutput } from '../host/errors';
import type { HostSession, ProbeResult } from '../host/session';
import { run } from '../host/shell';
import type { Resource } from './resource';

export interface ObservedUser {
  readonly exists: boolean;
  readonly groups: readonly string[];
  readonly shell?: string;
}

export interface UserSpec {
  readonly name: string;
  /** Supplementary groups the user must be in (others are left alone). */
  readonly groups: readonly string[];
  readonly shell: string;
}

/** A login user with its own primary group and home; supplementary groups are added, never removed. */
export function userResource(u: UserSpec, host: string): Resource<ObservedUser> {
  const id = `user:${u.name}`;
  return {
    id,
    desired: { kind: 'user', name: u.name, groups: u.groups ?? [], shell: u.shell ?? '/bin/bash' },
    probe: `if ${run('getent', 'passwd', u.name)}; then ${run('id', '-nG', u.name)}; else echo absent; fi`,
    parse: ({ out }) => {
      const [passwd = '', groups = ''] = out.trim().split('\n');
      if (passwd === 'absent') return { exists: false, groups: [] };
      const fields = passwd.split(':');
      if (fields.length !== 7) throw new UnexpectedHostOutput(host, `unexpected getent output for ${u.name}`);
      return { exists: true, groups: groups.split(' ').filter(Boolean), shell: fields[6] ?? '' };
    },
    diff: (o): Change[] => {
      if (!o.exists) return [{ resource: id, action: 'create', after: { groups: u.groups, shell: u.shell } }];
      const missing = u.groups.filter((g) => !o.groups.includes(g));
      if (missing.length === 0 && o.shell === u.shell) return [];
      return [
        {
          resource: id,
          action: 'update',
          before: { groups: o.groups, shell: o.shell },
          after: { groups: [...new Set([...o.groups, ...u.groups])], shell: u.shell },
        },
      ];
    },
    apply: async (session: HostSession, o) => {
      const steps = o.exists
        ? [run('usermod', '-s', u.shell, '-aG', u.groups.join(','), u.name)]
        : [
            `${run('getent', 'group', u.name)} >/dev/null || ${run('groupadd', u.name)}`,
            run('useradd', '-m', '-s', u.shell, '-g', u.name, '-G', u.groups.join(','), u.name),
          ];
      await session.check(['set -e', ...steps].join('\n'), { label: `${o.exists ? 'usermod' : 'useradd'} ${u.name}` });
    },
  };
}

export interface ObservedService {
  readonly enabled: string;
  readonly active: string;
}

const showUnits = (units: readonly string[]) =>
  `${run('systemctl', 'show', '-p', 'LoadState', '-p', 'UnitFileState', '-p', 'ActiveState', ...units)} 2>/dev/null; true`;

/**
 * Observes many units with one `systemctl show` instead of one each (drift checks some twenty on every host, each
 * call ~7 ms of host CPU). systemctl prints a block per unit named, in that order, separated by an empty line; each
 * unit gets its block, which is what its own probe prints. When the blocks do not match the units in number
 * (systemctl failed), every unit gets no output, as its own probe would have: its state reads unknown.
 */
export function serviceBatch(units: readonly string[]): { probe: string; results(r: ProbeResult): ProbeResult[] } {
  return {
    probe: showUnits(units),
    results: ({ out }) => {
      const blocks = out.replace(/\n+$/, '').split('\n\n');
      return units.map((_, i) =>
        blocks.length === units.length ? { out: `${blocks[i]}\n`, code: 0 } : { out: '', code: 0 },
      );
    },
  };
}

/** A systemd unit that must be enabled and running. */
export function serviceResource(unit: string): Resource<ObservedService> {
  const id = `service:${unit}`;
  return {
    id,
    desired: { kind: 'service', unit },
    // One systemctl call (is-enabled plus is-active would be two); drift asks for all units at once (serviceBatch).
    probe: showUnits([unit]),
    parse: ({ out }) => {
      const p = Object.fromEntries(
        out
          .trim()
          .split('\n')
          .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
      );
      const enabled = p.LoadState === 'not-found' ? 'not-found' : p.UnitFileState || 'unknown';
      return { enabled, active: p.ActiveState || 'unknown' };
    },
    diff: (o): Change[] =>
      o.enabled === 'enabled' && o.active === 'active'
        ? []
        : [{ resource: id, action: 'update', before: o, after: { enabled: 'enabled', active: 'active' } }],
    apply: async (session: HostSession) => {
      await session.check(run('systemctl', 'enable', '--now', unit), {
        label: `systemctl enable --now ${unit}`,
        timeoutMs: 120_000,
      });
    },
  };
}
