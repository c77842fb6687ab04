/**
 * Cleanup with systemd timers (a unit and a timer each): Docker prune of stopped containers, dangling images and
 * build cache older than the spec's age; journal vacuum to a size; rotation of steward's own backups on the host.
 */
import type { ControlResult } from '../../model/report';
import type { Spec } from '../../model/schema';
import type { HostSession } from '../host/session';
import { run } from '../host/shell';
import { directoryResource, fileResource } from '../resources/files';
import { serviceResource } from '../resources/system';
import type { Resource } from '../resources/resource';

/** Where steward keeps backups of files it replaces (deploy's rollbacks); rotated by a timer. */
export const BACKUP_DIR = '/var/backups/steward';

export const CLEANUP_TIMERS = ['steward-docker-prune', 'steward-journal-vacuum', 'steward-backup-rotate'] as const;

/** A spec duration ("7d", "12h", "30min") in hours, as Docker's `until` filter takes it. */
export function durationHours(d: string): string {
  const m = /^(\d+)(s|min|h|d|w)$/.exec(d);
  if (!m) throw new Error(`invalid duration ${d}`);
  const n = Number(m[1]);
  const hours = { s: n / 3600, min: n / 60, h: n, d: n * 24, w: n * 168 }[m[2] as 's' | 'min' | 'h' | 'd' | 'w'];
  return `${Number(hours.toFixed(4))}h`;
}

/** Keeps the newest `keep` backups of each file: backups are named `<file>.<UTC timestamp>`. */
function rotateScript(keep: number): string {
  return [
    '#!/bin/sh',
    '# Managed by steward (harden): keeps the newest backups of each file, removes older ones.',
    'set -eu',
    `dir=${run(BACKUP_DIR)}`,
    '[ -d "$dir" ] || exit 0',
    `find "$dir" -type f -name '*.[0-9]*' | sed -E 's/\\.[0-9TZ:-]+$//' | sort -u | while read -r base; do`,
    `  ls -1 "$base".* 2>/dev/null | sort -r | tail -n +${keep + 1} | while read -r old; do rm -f -- "$old"; done`,
    'done',
  ].join('\n');
}

/**
 * The sandbox every steward unit runs in: no new privileges, a read-only system but for `writes`, no home
 * directories and no devices (`readAll`: both read-only instead), no kernel tunables, modules or logs, its own /tmp,
 * only the socket families it needs (`families`, default Unix only) and no host network unless it needs one.
 */
export function sandbox(
  opts: { writes?: readonly string[]; families?: string; network?: boolean; readAll?: boolean } = {},
): string[] {
  return [
    'NoNewPrivileges=yes',
    'ProtectSystem=strict',
    ...(opts.writes?.length ? [`ReadWritePaths=${opts.writes.join(' ')}`] : []),
    // A scanner reads everything (homes and devices included), read-only.
    ...(opts.readAll ? ['ProtectHome=read-only'] : ['ProtectHome=yes', 'PrivateDevices=yes']),
    'PrivateTmp=yes',
    ...(opts.network ? [] : ['PrivateNetwork=yes']),
    'ProtectKernelTunables=yes',
    'ProtectKernelModules=yes',
    'ProtectKernelLogs=yes',
    'ProtectControlGroups=yes',
    'ProtectClock=yes',
    'ProtectHostname=yes',
    `RestrictAddressFamilies=${opts.families ?? 'AF_UNIX'}`,
    'RestrictNamespaces=yes',
    'RestrictRealtime=yes',
    'RestrictSUIDSGID=yes',
    'LockPersonality=yes',
    'MemoryDenyWriteExecute=yes',
    'SystemCallArchitectures=native',
    'SystemCallFilter=@system-service',
    'UMask=0077',
  ];
}

/** A steward oneshot service unit: its commands, at low CPU and I/O priority, in `lines` (its sandbox). */
export function serviceUnit(description: string, exec: readonly string[], lines: readonly string[]): string {
  return [
    '# Managed by steward (harden).',
    '[Unit]',
    `Description=steward: ${description}`,
    '',
    '[Service]',
    'Type=oneshot',
    ...exec.map((e) => `ExecStart=${e}`),
    'Nice=10',
    'IOSchedulingClass=idle',
    ...lines,
    '',
  ].join('\n');
}

/** A steward timer unit: on `schedule`, spread over `delay`, catching up a run missed while the host was down. */
export function timerUnit(description: string, schedule: string, delay = '30min'): string {
  return [
    '# Managed by steward (harden).',
    '[Unit]',
    `Description=steward: ${description}`,
    '',
    '[Timer]',
    `OnCalendar=${schedule}`,
    `RandomizedDelaySec=${delay}`,
    'Persistent=true',
    '',
    '[Install]',
    'WantedBy=timers.target',
    '',
  ].join('\n');
}

export function cleanupResources(spec: Spec, host: string): Resource[] {
  const c = spec.harden.cleanup;
  const until = `until=${durationHours(c.dockerPruneAfter)}`;
  const units: [string, string, string[], string[]?][] = [
    [
      'steward-docker-prune',
      `prune stopped containers, dangling images and build cache older than ${c.dockerPruneAfter}`,
      [
        `/usr/bin/docker container prune --force --filter ${until}`,
        `/usr/bin/docker image prune --force --filter ${until}`,
        `/usr/bin/docker builder prune --force --filter ${until}`,
      ],
    ],
    [
      'steward-journal-vacuum',
      `vacuum the journal to ${c.journalMaxSize}`,
      [`/usr/bin/journalctl --vacuum-size=${c.journalMaxSize}`],
      ['-/var/log/journal', '-/run/log/journal'],
    ],
    [
      'steward-backup-rotate',
      `keep the newest ${c.backupsKeep} steward backups per file`,
      ['/usr/local/lib/steward/rotate-backups'],
      [BACKUP_DIR],
    ],
  ];
  const root = { owner: 'root', group: 'root', mode: '0644' };
  return [
    directoryResource({ path: BACKUP_DIR, owner: 'root', group: 'root', mode: '0700' }, host),
    fileResource(
      {
        path: '/usr/local/lib/steward/rotate-backups',
        content: `${rotateScript(c.backupsKeep)}\n`,
        owner: 'root',
        group: 'root',
        mode: '0755',
      },
      host,
    ),
    ...units.flatMap(([name, description, exec, writes]) => [
      fileResource(
        {
          path: `/etc/systemd/system/${name}.service`,
          content: serviceUnit(description, exec, sandbox({ writes: writes ?? [] })),
          ...root,
        },
        host,
      ),
      fileResource(
        { path: `/etc/systemd/system/${name}.timer`, content: timerUnit(description, c.schedule), ...root },
        host,
      ),
    ]),
  ];
}

/** Every cleanup timer enabled and waiting; converged after the unit files (and a daemon-reload if they changed). */
export function cleanupTimerResources(): Resource[] {
  return CLEANUP_TIMERS.map((t) => serviceResource(`${t}.timer`));
}

/** Each timer enabled, active and with a next run time. */
export async function cleanupControls(session: HostSession): Promise<ControlResult[]> {
  const probes = Object.fromEntries(
    CLEANUP_TIMERS.map((t) => [
      t,
      `systemctl show ${run(`${t}.timer`)} -p ActiveState -p UnitFileState -p NextElapseUSecRealtime`,
    ]),
  ) as Record<(typeof CLEANUP_TIMERS)[number], string>;
  const p = await session.probe(probes);
  return CLEANUP_TIMERS.map((t): ControlResult => {
    const props = Object.fromEntries(
      p[t].out
        .trim()
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const { ActiveState: active = '', UnitFileState: enabled = '', NextElapseUSecRealtime: next = '' } = props;
    const ok = active === 'active' && enabled === 'enabled' && next !== '';
    return {
      control: `timer.${t}`,
      expected: 'enabled, active, next run scheduled',
      observed: `${enabled}, ${active}, next ${next || 'none'}`,
      status: ok ? 'pass' : 'fail',
    };
  });
}
