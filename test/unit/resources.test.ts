import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { directoryResource, fileResource, digest } from '../../activities/resources/files';
import { packagesResource } from '../../activities/resources/packages';
import { serviceResource, userResource } from '../../activities/resources/system';
import { probeAll } from '../../activities/resources/resource';
import { probeBatch } from '../../activities/host/probe-framing';
import type { HostSession } from '../../activities/host/session';
import { dockerDaemonConfig, stackDirectories } from '../../activities/provision/resources';
import { specSchema } from '../../model/schema';
import { validate } from '../../model/validate';

const spec = validate(specSchema, { version: 1, hosts: [{ name: 'h', address: '127.0.0.1' }] }, 'test');

describe('directory resource', () => {
  const dir = directoryResource({ path: '/opt/openclaw/state', owner: 1000, group: 1000, mode: '0700' }, 'h');

  it('creates a missing directory', () => {
    expect(dir.diff(dir.parse({ out: 'absent\n', code: 0 }))).toEqual([
      { resource: 'dir:/opt/openclaw/state', action: 'create', after: { owner: '1000:1000', mode: '0700' } },
    ]);
  });

  it('reports a wrong owner with before and after', () => {
    const observed = dir.parse({ out: '0 0 root root 700 directory\n', code: 0 });
    expect(dir.diff(observed)).toEqual([
      {
        resource: 'dir:/opt/openclaw/state',
        action: 'update',
        before: { owner: '0:0', mode: '0700' },
        after: { owner: '1000:1000', mode: '0700' },
      },
    ]);
  });

  it('is satisfied by the right owner and mode', () => {
    expect(dir.diff(dir.parse({ out: '1000 1000 node node 700 directory\n', code: 0 }))).toEqual([]);
  });

  it('refuses to treat a file as the directory', () => {
    expect(() => dir.diff(dir.parse({ out: '0 0 root root 644 regular file\n', code: 0 }))).toThrow(/not a directory/);
  });

  it('rejects stat output it cannot read', () => {
    expect(() => dir.parse({ out: 'stat: cannot stat\n', code: 1 })).toThrow(/unexpected stat output/);
  });

  it('probes a hostile path literally through a real shell', () => {
    const root = mkdtempSync(join(tmpdir(), 'steward-'));
    const path = join(root, "it's; touch pwned");
    mkdirSync(path);
    const odd = directoryResource({ path, owner: 'root', group: 'root', mode: '0755' }, 'h');
    const out = execFileSync('sh', ['-c', odd.probe], { cwd: root, encoding: 'utf8' });
    expect(odd.parse({ out, code: 0 })).toMatchObject({ type: 'directory' });
    expect(existsSync(join(root, 'pwned'))).toBe(false);
    rmSync(root, { recursive: true });
  });
});

describe('file resource', () => {
  const content = '{"a":1}\n';
  const file = fileResource({ path: '/etc/x.json', content, owner: 'root', group: 'root', mode: '0644' }, 'h');
  const hash = digest(content);

  it('describes content changes by hash only', () => {
    const observed = file.parse({ out: `0 0 root root 644 regular file\n${'0'.repeat(64)}\n`, code: 0 });
    const [change] = file.diff(observed);
    expect(change).toEqual({
      resource: 'file:/etc/x.json',
      action: 'update',
      before: { sha256: '000000000000' },
      after: { sha256: hash.slice(0, 12) },
    });
    expect(JSON.stringify(change)).not.toContain('"a":1');
  });

  it('reports owner drift alongside content drift', () => {
    const observed = file.parse({ out: `1000 1000 node node 600 regular file\n${'0'.repeat(64)}\n`, code: 0 });
    expect(file.diff(observed)[0]).toMatchObject({
      before: { owner: 'node:node', mode: '0600' },
      after: { owner: 'root:root', mode: '0644' },
    });
  });

  it('is satisfied when content, owner and mode match', () => {
    expect(file.diff(file.parse({ out: `0 0 root root 644 regular file\n${hash}\n`, code: 0 }))).toEqual([]);
  });
});

describe('packages, users, services', () => {
  it('installs only what is missing', () => {
    const pkgs = packagesResource(['curl', 'sudo', 'docker.io']);
    const observed = pkgs.parse({ out: 'curl\tii \nsudo\trc \n', code: 1 });
    expect(pkgs.diff(observed).map((c) => c.resource)).toEqual(['package:sudo', 'package:docker.io']);
  });

  it('adds missing groups and never removes any', () => {
    const user = userResource({ name: 'steward', groups: ['sudo', 'docker'], shell: '/bin/bash' }, 'h');
    const observed = user.parse({ out: 'steward:x:1001:1001::/home/steward:/bin/bash\nsteward sudo adm\n', code: 0 });
    expect(user.diff(observed)).toEqual([
      {
        resource: 'user:steward',
        action: 'update',
        before: { groups: ['steward', 'sudo', 'adm'], shell: '/bin/bash' },
        after: { groups: ['steward', 'sudo', 'adm', 'docker'], shell: '/bin/bash' },
      },
    ]);
  });

  it('starts a stopped service', () => {
    const svc = serviceResource('docker');
    const show = (load: string, file: string, active: string) => ({
      out: `LoadState=${load}\nUnitFileState=${file}\nActiveState=${active}\n`,
      code: 0,
    });
    expect(svc.diff(svc.parse(show('loaded', 'enabled', 'inactive')))).toEqual([
      {
        resource: 'service:docker',
        action: 'update',
        before: { enabled: 'enabled', active: 'inactive' },
        after: { enabled: 'enabled', active: 'active' },
      },
    ]);
    expect(svc.diff(svc.parse(show('loaded', 'disabled', 'active')))).toHaveLength(1);
    expect(svc.parse(show('not-found', '', 'inactive'))).toEqual({ enabled: 'not-found', active: 'inactive' });
    expect(svc.diff(svc.parse(show('loaded', 'enabled', 'active')))).toEqual([]);
  });
});

describe('observing units together', () => {
  /** A stand-in `systemctl` on the PATH: `show` prints a block per unit, as systemd's does; `down` makes it fail. */
  function fakeSystemctl(): { env: NodeJS.ProcessEnv; dir: string } {
    const dir = mkdtempSync(join(tmpdir(), 'steward-systemctl-'));
    writeFileSync(
      join(dir, 'systemctl'),
      [
        '#!/bin/sh',
        '[ -e "$(dirname "$0")/down" ] && { echo "Failed to connect to bus" >&2; exit 1; }',
        'shift; first=1',
        'while [ "$1" = -p ]; do shift 2; done',
        'for u; do',
        '  [ $first = 1 ] || echo; first=0',
        '  case $u in nosuch) echo LoadState=not-found; echo ActiveState=inactive; echo UnitFileState= ;;',
        '    stopped) echo LoadState=loaded; echo ActiveState=inactive; echo UnitFileState=enabled ;;',
        '    *) echo LoadState=loaded; echo ActiveState=active; echo UnitFileState=enabled ;; esac',
        'done',
      ].join('\n'),
      { mode: 0o755 },
    );
    return { env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, dir };
  }
  /** A session whose probes run on this machine's sh (only `probe` is used by probeAll). */
  const localSession = (env: NodeJS.ProcessEnv) =>
    ({
      probe: async (probes: Record<string, string>, opts: { lanes?: number }) => {
        const names = Object.keys(probes);
        const batch = probeBatch(Object.values(probes), { lanes: opts.lanes ?? 1 });
        const out = execFileSync('sh', ['-s'], { input: batch.script, encoding: 'utf8', env });
        const { results } = batch.parse(out);
        return Object.fromEntries(names.map((n, i) => [n, results[i]]));
      },
    }) as unknown as HostSession;

  it('gives each service what its own probe prints, and unknown to all when systemctl fails', async () => {
    const { env, dir } = fakeSystemctl();
    try {
      const units = ['docker', 'nosuch', 'stopped', 'steward-debsums.timer'].map(serviceResource);
      const { results } = await probeAll(localSession(env), units);
      const own = units.map((u) => execFileSync('sh', ['-c', u.probe], { encoding: 'utf8', env }));
      expect(results.map((r) => r.out)).toEqual(own);
      expect(units.map((u, i) => u.parse(results[i]!))).toEqual([
        { enabled: 'enabled', active: 'active' },
        { enabled: 'not-found', active: 'inactive' },
        { enabled: 'enabled', active: 'inactive' },
        { enabled: 'enabled', active: 'active' },
      ]);
      writeFileSync(join(dir, 'down'), '');
      const failed = await probeAll(localSession(env), units);
      expect(units.map((u, i) => u.parse(failed.results[i]!))).toEqual(
        units.map(() => ({ enabled: 'unknown', active: 'unknown' })),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('provision desired state', () => {
  it('owns daemon.json with log rotation and live-restore', () => {
    expect(JSON.parse(dockerDaemonConfig(spec))).toEqual({
      'log-driver': 'json-file',
      'log-opts': { 'max-size': '10m', 'max-file': '3' },
      'live-restore': true,
    });
  });

  it('resolves volume owners to the container ids or the ops user', () => {
    expect(stackDirectories(spec)).toEqual([
      { path: '/opt/openclaw', owner: 'root', group: 'steward', mode: '0750' },
      { path: '/opt/openclaw/state', owner: 1000, group: 1000, mode: '0700' },
      { path: '/opt/openclaw/memory', owner: 1000, group: 1000, mode: '0700' },
      { path: '/opt/openclaw/workspace', owner: 1000, group: 1000, mode: '0750' },
    ]);
  });
});
