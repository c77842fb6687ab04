/**
 * Backups without a host: the spec's backup section, the host scripts (parsed by sh; the volume swap and its revert
 * run for real in a scratch directory), the snapshot tags, and restic itself against a repository in a scratch
 * directory: created once, a wrong password refused as such, a snapshot from a stream read back whole, and a flipped
 * byte in the repository detected when the snapshot is read.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { archiveScript, revertScript, stageScript, swapScript } from '../../activities/backup/archive';
import { canaryOf, canaryTag, formatAge } from '../../activities/backup';
import { collect, PENDING, Restic, ResticFailed, VERIFIED } from '../../activities/backup/restic';
import { specSchema, type Spec } from '../../model/schema';
import { validate } from '../../model/validate';
import { specIssues } from '../support/specs';

const minimal = { version: 1, hosts: [{ name: 'vps1', address: '203.0.113.7' }] };
const scratch = mkdtempSync(join(tmpdir(), 'steward-backup-unit-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const issues = specIssues;

const withPassword = {
  ...minimal,
  secrets: { 'gateway-token': { generate: {} }, 'backup-password': { external: { env: 'RESTIC_PW' } } },
};

describe('the backup section of the spec', () => {
  it('accepts a path on the worker, sftp and s3, with an external password secret', () => {
    for (const repository of [
      '/srv/backups/steward',
      'sftp:backup@10.0.0.9:/srv/restic',
      's3:https://s3.example.net/bucket/steward',
    ]) {
      const spec = validate(
        specSchema,
        { ...withPassword, backup: { repository, passwordSecret: 'backup-password' } },
        'x',
      );
      expect(spec.backup).toMatchObject({ repository, keep: { daily: 7, weekly: 4, monthly: 6 } });
    }
  });

  it('names the field of a bad repository, a missing or generated password secret', () => {
    expect(issues({ ...withPassword, backup: { repository: 'backups', passwordSecret: 'backup-password' } })).toEqual([
      expect.objectContaining({ path: 'backup.repository' }),
    ]);
    expect(
      issues({ ...withPassword, backup: { repository: '/srv/../etc', passwordSecret: 'backup-password' } })[0]?.path,
    ).toBe('backup.repository');
    expect(issues({ ...withPassword, backup: { repository: '/srv/b' } })).toEqual([
      { path: 'backup.passwordSecret', message: 'is required with a repository' },
    ]);
    expect(
      issues({ ...withPassword, backup: { repository: '/srv/b', passwordSecret: 'gateway-token' } })[0],
    ).toMatchObject({
      path: 'backup.passwordSecret',
      message: expect.stringContaining('generated on the hosts'),
    });
    expect(issues({ ...withPassword, backup: { repository: '/srv/b', passwordSecret: 'nope' } })[0]).toMatchObject({
      path: 'backup.passwordSecret',
      message: expect.stringContaining('not declared'),
    });
    expect(issues({ ...withPassword, backup: { keep: { daily: -1 } } })[0]?.path).toBe('backup.keep.daily');
  });
});

/** A spec whose install dir and volumes live under `root` on this machine. */
function localSpec(root: string): Spec {
  return validate(
    specSchema,
    {
      ...minimal,
      stack: {
        installDir: `${root}/opt`,
        volumes: [
          { name: 'state', path: `${root}/opt/state`, mode: '0700' },
          { name: 'memory', path: `${root}/opt/memory`, mode: '0700' },
          { name: 'logs', path: `${root}/opt/logs`, owner: 'root', mode: '0755', mount: '/var/log/agent' },
        ],
      },
    },
    'x',
  );
}

describe('the host scripts', () => {
  const spec = localSpec('/srv/steward-test');

  it('are valid sh', () => {
    const scripts = [
      archiveScript(spec, 'vps1', 'sha256:' + 'a'.repeat(64), '2026-12-06T00:00:00.000Z'),
      stageScript(spec, 'steward/openclaw:1', 'run-1'),
      swapScript(spec, 'run-1', ['state', 'memory']),
      revertScript(spec, 'run-1', ['state', 'memory']),
    ];
    for (const s of scripts) {
      const r = spawnSync('sh', ['-n'], { input: s });
      expect(r.status, r.stderr.toString()).toBe(0);
      expect(s).toContain('/srv/steward-test/opt');
    }
    // Only the container's volumes are archived; the root-owned one is the host's.
    expect(scripts[0]).toMatch(/target\\?=\/backup\/volumes\/memory/);
    expect(scripts[0]).not.toContain('/backup/volumes/logs');
    expect(() => stageScript(spec, 'steward/openclaw:1', '../x')).toThrow(/stage id/);
  });

  it('swap the staged volumes in (again without effect), keep the live ones, and revert', () => {
    const root = mkdtempSync(join(scratch, 'swap-'));
    const local = localSpec(root);
    const write = (path: string, text: string) => {
      mkdirSync(join(path, '..'), { recursive: true });
      writeFileSync(path, text);
    };
    write(`${root}/opt/state/openclaw.json`, '{"live":true}');
    write(`${root}/opt/state/agents/main.jsonl`, 'live session');
    write(`${root}/opt/memory/history.db`, 'live memory');
    const stage = `${root}/opt/.steward-restore/run-1/volumes`;
    // The snapshot's config is a link the agent planted: root must replace it, never write through it.
    write(`${root}/victim`, "not the agent's");
    mkdirSync(`${stage}/state`, { recursive: true });
    symlinkSync(`${root}/victim`, `${stage}/state/openclaw.json`);
    write(`${stage}/state/agents/main.jsonl`, 'snapshot session');
    write(`${stage}/memory/history.db`, 'snapshot memory');
    const sh = (script: string) => execFileSync('sh', ['-c', script], { encoding: 'utf8' });

    expect(sh(swapScript(local, 'run-1', ['state', 'memory']))).toBe('restored state\nrestored memory\n');
    expect(readFileSync(`${root}/opt/memory/history.db`, 'utf8')).toBe('snapshot memory');
    expect(readFileSync(`${root}/opt/state/agents/main.jsonl`, 'utf8')).toBe('snapshot session');
    // The config is the live one: the spec decides it, not the snapshot.
    expect(readFileSync(`${root}/opt/state/openclaw.json`, 'utf8')).toBe('{"live":true}');
    expect(lstatSync(`${root}/opt/state/openclaw.json`).isFile()).toBe(true);
    expect(readFileSync(`${root}/victim`, 'utf8')).toBe("not the agent's");
    expect(readFileSync(`${root}/opt/memory.pre-restore-run-1/history.db`, 'utf8')).toBe('live memory');
    // A retry after a crash between the move and the config: the volumes stay, the config is put back.
    writeFileSync(`${root}/opt/state/openclaw.json`, '{"snapshot":true}');
    expect(sh(swapScript(local, 'run-1', ['state', 'memory']))).toBe('already state\nalready memory\n');
    expect(readFileSync(`${root}/opt/state/openclaw.json`, 'utf8')).toBe('{"live":true}');

    expect(sh(revertScript(local, 'run-1', ['state', 'memory']))).toBe('reverted state\nreverted memory\n');
    expect(readFileSync(`${root}/opt/memory/history.db`, 'utf8')).toBe('live memory');
    expect(readFileSync(`${root}/opt/state/agents/main.jsonl`, 'utf8')).toBe('live session');
    expect(readFileSync(`${root}/opt/.steward-restore/run-1/failed/memory/history.db`, 'utf8')).toBe('snapshot memory');
  });

  it('refuse to swap in a volume the stage does not have', () => {
    const root = mkdtempSync(join(scratch, 'missing-'));
    mkdirSync(`${root}/opt/memory`, { recursive: true });
    const r = spawnSync('sh', ['-c', swapScript(localSpec(root), 'run-2', ['memory'])], { encoding: 'utf8' });
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('staged volume memory is missing');
  });
});

describe('snapshot tags and ages', () => {
  it('carry the canary and read it back; other tags are ignored', () => {
    const canary = { id: '0b0e1c9a-4d2f-4e43-9a3c-5d1c2b3a4f5e', nonce: 'a1b2c3d4e5f60718293a4b5c' };
    expect(canaryOf({ tags: ['steward', canaryTag(canary)] })).toEqual(canary);
    expect(canaryOf({ tags: ['steward', 'canary=$(reboot)/x'] })).toBeUndefined();
    expect(canaryOf({ tags: null })).toBeUndefined();
  });

  it('formats ages', () => {
    expect([45_000, 192_000, 7_500_000, 300_000_000].map(formatAge)).toEqual(['45s', '3m 12s', '2h 05m', '3d 11h']);
  });
});

describe('restic on the worker', () => {
  const repository = join(scratch, 'repo');
  const password = randomBytes(24).toString('hex');
  const restic = new Restic({ repository, password, host: 'vps1' });

  async function backup(data: Buffer): Promise<string> {
    const child = restic.start([
      'backup',
      '--json',
      '--stdin',
      '--stdin-filename',
      'steward-vps1.tar',
      '--host',
      'vps1',
      '--tag',
      'steward',
      '--tag',
      PENDING,
    ]);
    const done = collect(child);
    child.stdin.end(data);
    const r = await done;
    expect(r.code, r.stderr).toBe(0);
    return restic.summary(r.stdout).snapshot_id;
  }

  async function dump(id: string): Promise<{ code: number | null; sha: string; stderr: string }> {
    const child = restic.start(['dump', id, '/steward-vps1.tar']);
    const hash = createHash('sha256');
    child.stdout.on('data', (d: Buffer) => hash.update(d));
    const done = collect(child, false);
    child.stdin.end();
    const r = await done;
    return { code: r.code, sha: hash.digest('hex'), stderr: r.stderr };
  }

  it('creates the repository once, and refuses a wrong password as permanent', async () => {
    expect(await restic.ensure()).toBe('created');
    expect(await restic.ensure()).toBe('exists');
    const wrong = new Restic({ repository, password: 'not-the-password', host: 'vps1' });
    const err = await wrong.ensure().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ResticFailed);
    expect((err as ResticFailed).retryable).toBe(false);
    expect((err as ResticFailed).message).not.toContain(password);
  }, 60_000);

  it('keeps a stream as a snapshot that reads back whole; a flipped byte in the repository is detected', async () => {
    const data = randomBytes(3_000_000);
    const id = await backup(data);
    // Pending until verified: restores and retention see only verified snapshots.
    await expect(restic.find('vps1')).rejects.toThrow(/no verified snapshot/);
    const pending = await restic.find('vps1', id, PENDING);
    expect(pending.id).toMatch(new RegExp(`^${id}[0-9a-f]*$`));
    const verified = await restic.verify(pending);
    expect(verified.original).toBe(pending.id);
    expect(verified.tags).toEqual(expect.arrayContaining(['steward', VERIFIED]));
    expect(verified.tags).not.toContain(PENDING);
    expect((await restic.find('vps1')).id).toBe(verified.id);
    expect(await restic.snapshots('vps1', PENDING)).toEqual([]);
    const back = await dump(verified.id);
    expect(back.code).toBe(0);
    expect(back.sha).toBe(createHash('sha256').update(data).digest('hex'));

    const packs = readdirSync(join(repository, 'data'), { recursive: true, encoding: 'utf8' })
      .map((f) => join(repository, 'data', f))
      .filter((f) => statSync(f).isFile())
      .sort((a, b) => statSync(b).size - statSync(a).size);
    const bytes = readFileSync(packs[0]!);
    const at = Math.floor(bytes.length / 2);
    bytes[at] = bytes[at]! ^ 0x01;
    writeFileSync(packs[0]!, bytes);
    const broken = await dump(verified.id);
    expect(broken.code).not.toBe(0);
    expect(broken.sha).not.toBe(back.sha);
  }, 120_000);
});
