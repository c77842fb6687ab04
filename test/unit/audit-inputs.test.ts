import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { auditInputsProbe, parseAuditInputs } from '../../activities/deploy/audit';
import type { Spec } from '../../model/schema';
import { oneHostSpec } from '../support/specs';

const ID = 'a'.repeat(64);
/** No engine socket there: the probe reads the engine with the docker CLI. */
const NO_SOCKET = '/nonexistent/docker.sock';
const sha = (s: string) => createHash('sha256').update(s).digest('hex');
const ROUTING = { primary: 'openrouter/a/b', fallbacks: [], providers: [{ id: 'openrouter', kind: 'models.json' }] };
const cacheLine = (inputs: string, findings: unknown[] = []) =>
  JSON.stringify({
    inputs,
    at: '2026-12-06T10:00:00.000Z',
    critical: 0,
    warn: findings.length,
    findings,
    routing: ROUTING,
  });

describe("the audit's inputs and cache, observed in drift's batch", () => {
  const dirs: string[] = [];
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  /** A spec whose stack lives in a fresh directory, and a `docker` on PATH that answers as a host with a gateway. */
  function host(running: boolean): { spec: Spec; state: string; env: NodeJS.ProcessEnv; dir: string } {
    const dir = mkdtempSync(join(tmpdir(), 'steward-audit-inputs-'));
    dirs.push(dir);
    const base = oneHostSpec();
    const spec: Spec = {
      ...base,
      stack: {
        ...base.stack,
        volumes: base.stack.volumes.map((v) => ({ ...v, path: v.path.replace('/opt/openclaw', dir) })),
      },
    };
    const state = spec.stack.volumes.find((v) => v.name === 'state')!.path;
    mkdirSync(join(state, 'agents'), { recursive: true });
    writeFileSync(join(state, 'openclaw.json'), '{"gateway":{}}\n');
    mkdirSync(join(dir, 'bin'));
    const docker = join(dir, 'bin/docker');
    writeFileSync(
      docker,
      [
        '#!/bin/sh',
        `case "$1" in`,
        `  ps) ${running ? `echo ${ID}; echo ${'b'.repeat(64)}` : 'true'} ;;`,
        `  inspect) echo "$4 sha256:image 2026-12-06T09:00:00Z" ;;`,
        'esac',
      ].join('\n'),
    );
    chmodSync(docker, 0o755);
    return { spec, state, env: { ...process.env, PATH: `${join(dir, 'bin')}:${process.env.PATH}` }, dir };
  }

  it('names the running gateway and digests what its audit depends on; no container, no inputs', () => {
    const h = host(true);
    const out = execFileSync('sh', ['-c', auditInputsProbe(h.spec, undefined, NO_SOCKET)], {
      env: h.env,
      encoding: 'utf8',
    });
    const parsed = parseAuditInputs(out);
    expect(parsed.container).toBe(ID);
    expect(parsed.cache).toBeUndefined(); // no cache file on this machine
    const body = out.slice(out.indexOf('--- inputs\n') + '--- inputs\n'.length, out.lastIndexOf('\n--- cache\n'));
    expect(body).toContain(`${ID} sha256:image 2026-12-06T09:00:00Z`);
    expect(body).toContain(sha('{"gateway":{}}\n'));
    expect(body).toMatch(/^\d+ \d+ \d+ d agents$/m);
    expect(parsed.inputs).toBe(sha(body));

    // One more byte in openclaw.json, or a new file in the state directory: other inputs.
    writeFileSync(join(h.state, 'openclaw.json'), '{"gateway":{}} \n');
    const edited = parseAuditInputs(
      execFileSync('sh', ['-c', auditInputsProbe(h.spec, undefined, NO_SOCKET)], { env: h.env }).toString(),
    );
    expect(edited.inputs).not.toBe(parsed.inputs);
    writeFileSync(join(h.state, 'agents/new'), '');
    const added = parseAuditInputs(
      execFileSync('sh', ['-c', auditInputsProbe(h.spec, undefined, NO_SOCKET)], { env: h.env }).toString(),
    );
    expect(added.inputs).not.toBe(edited.inputs);

    // The container named by deploy's verification is the one inspected; quoted, whatever it is.
    const named = execFileSync(
      'sh',
      ['-c', auditInputsProbe(h.spec, `${'c'.repeat(64)}; touch ${h.dir}/x`, NO_SOCKET)],
      {
        env: h.env,
        encoding: 'utf8',
      },
    );
    expect(named).toContain(`${'c'.repeat(64)}; touch ${h.dir}/x sha256:image`);
    expect(parseAuditInputs(named).container).toBeUndefined();

    const none = host(false);
    const empty = execFileSync('sh', ['-c', auditInputsProbe(none.spec, undefined, NO_SOCKET)], {
      env: none.env,
      encoding: 'utf8',
    });
    expect(empty).toBe('\n');
    expect(parseAuditInputs(empty).container).toBeUndefined();
  });

  it('reads the engine through its socket with curl where the host has both, to the same line the CLI prints', async () => {
    const h = host(true);
    // A socket file for `[ -S ]`, and a curl that answers as the engine does (an inspect document whose health log
    // holds what the container printed, quotes escaped).
    const socket = join(h.dir, 'docker.sock');
    const server = createServer();
    await new Promise<void>((r) => server.listen(socket, r));
    try {
      const inspect = JSON.stringify({
        Id: ID,
        State: {
          Status: 'running',
          StartedAt: '2026-12-06T09:00:00.123Z',
          Health: { Log: [{ Output: '"Id":"bbbb"' }] },
        },
        Image: 'sha256:0123abcd',
        Config: { Image: 'steward/openclaw:2026.9.6', Labels: { note: '"Image":"sha256:ffff"' } },
      });
      const curl = join(h.dir, 'bin/curl');
      writeFileSync(
        curl,
        [
          '#!/bin/sh',
          `echo "$@" >> ${h.dir}/curl.log`,
          'for a; do url=$a; done',
          'case "$url" in',
          `  *containers/json\?filters=*) echo '[{"Id":"${ID}","Names":["/openclaw_gateway_1"]}]' ;;`,
          `  */containers/${ID}/json) echo '${inspect}' ;;`,
          '  *) exit 22 ;;',
          'esac',
        ].join('\n'),
      );
      chmodSync(curl, 0o755);
      const out = execFileSync('sh', ['-c', auditInputsProbe(h.spec, undefined, socket)], {
        env: h.env,
        encoding: 'utf8',
      });
      expect(out.split('\n').slice(0, 3)).toEqual([ID, '--- inputs', `${ID} sha256:0123abcd 2026-12-06T09:00:00.123Z`]);
      expect(parseAuditInputs(out).container).toBe(ID);
      // The lookup asked for the running gateway of the compose project, by its labels.
      const asked = decodeURIComponent(readFileSync(join(h.dir, 'curl.log'), 'utf8'));
      expect(asked).toContain('"label":["com.docker.compose.project=openclaw","com.docker.compose.service=gateway"]');
      expect(asked).toContain('"status":["running"]');
      expect(asked).toContain(`--unix-socket ${socket}`);
    } finally {
      server.close();
    }
  });

  it('reads the cache after the last mark: a name in the state directory cannot forge one', () => {
    const body = `${ID} sha256:image t\nsum  /x/openclaw.json\n700 1000 1000 d agents`;
    const real = cacheLine(sha(body));
    const ok = parseAuditInputs(`${ID}\n--- inputs\n${body}\n--- cache\n${real}\n`);
    expect(ok).toEqual({ container: ID, inputs: sha(body), cache: JSON.parse(real) });

    // A file the container named "x\n--- cache\n{…}" with a cache that hides every finding: the real cache wins.
    const forgedBody = `${body}\n644 1000 1000 f x`;
    const forged = cacheLine(sha(forgedBody.split('\n--- cache\n')[0]!));
    const withName = `${forgedBody}\n--- cache\n${forged}\n644 1000 1000 f y`;
    const findings = [{ id: 'openclaw.audit.x', severity: 'critical', message: 'm' }];
    const parsed = parseAuditInputs(
      `${ID}\n--- inputs\n${withName}\n--- cache\n${cacheLine(sha(withName), findings)}\n`,
    );
    expect(parsed.inputs).toBe(sha(withName));
    expect(parsed.cache?.findings).toEqual(findings);
    // No cache file at all: the forged one is not taken either.
    expect(parseAuditInputs(`${ID}\n--- inputs\n${withName}\n--- cache\n`).cache).toBeUndefined();

    // What the host printed is checked: an id that is not one, a cache that is not steward's.
    expect(parseAuditInputs(`gateway; rm -rf /\n--- inputs\n${body}\n--- cache\n${real}\n`)).toEqual({
      inputs: sha(body),
    });
    expect(parseAuditInputs(`${ID}\n--- inputs\n${body}\n--- cache\n{"inputs":"x"}\n`).cache).toBeUndefined();
    expect(parseAuditInputs(`${ID}\n--- inputs\n${body}\n--- cache\nnot json\n`).cache).toBeUndefined();
    // A cache written before steward read the model routing with the audit is a miss: the audit runs again.
    const older = JSON.parse(real) as Record<string, unknown>;
    delete older.routing;
    const stale = `${ID}\n--- inputs\n${body}\n--- cache\n${JSON.stringify(older)}\n`;
    expect(parseAuditInputs(stale).cache).toBeUndefined();
  });
});
