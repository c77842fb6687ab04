import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import { describe, expect, inject, it } from 'vitest';
import { parse } from 'yaml';
import { specSchema } from '../../model/schema';
import { steward } from '../support/cli';

// Nothing listens here: a command that got past validation would fail to connect (exit 1), not exit 64.
const NOWHERE = '127.0.0.1:9';

describe('steward CLI without a server', () => {
  it('init writes a complete spec and a private key only the operator can read', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'steward-init-'));
    const spec = join(dir, 'steward.yaml');
    const r = await steward([
      '--spec',
      spec,
      'init',
      '--host',
      'web1=root@203.0.113.9:2201',
      '--host',
      'web2=debian@db.example:22',
    ]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const written = specSchema.parse(parse(readFileSync(spec, 'utf8')));
    expect(written.hosts.map((h) => [h.name, h.user, h.address, h.port])).toEqual([
      ['web1', 'root', '203.0.113.9', 2201],
      ['web2', 'debian', 'db.example', 22],
    ]);
    expect(written.hosts[0]?.identityFile).toBe('keys/steward_ed25519');
    expect(statSync(join(dir, 'keys/steward_ed25519')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'keys/steward_ed25519.pub'), 'utf8')).toMatch(/^ssh-ed25519 /);
    // The codec key the worker and the CLI will find beside the spec; a second init keeps it.
    const codecKeys = join(dir, 'keys/codec.keys');
    expect(statSync(codecKeys).mode & 0o777).toBe(0o600);
    expect(r.stdout).toContain(`codec key ${codecKeys}:`);
    const before = readFileSync(codecKeys, 'utf8');
    expect((await steward(['--spec', spec, 'init'])).code).toBe(64);
    const again = await steward(['--spec', spec, 'init', '--force', '--host', 'web1=root@203.0.113.9:2201']);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain('(kept)');
    expect(readFileSync(codecKeys, 'utf8')).toBe(before);
    // A real host's spec names no stand-in: mem0 keeps the default provider until the operator names one.
    const real = specSchema.parse(parse(readFileSync(spec, 'utf8')));
    expect(real.stack.memory.embedder.baseUrl).toBeUndefined();
    expect(Object.keys(real.secrets)).toEqual(['gateway-token']);
  });

  it('init without --host writes the embedded default: the throwaway VPS, mem0 on the stand-in embedder', async () => {
    const spec = join(mkdtempSync(join(tmpdir(), 'steward-init-')), 'steward.yaml');
    expect((await steward(['--spec', spec, 'init'])).code).toBe(0);
    const written = specSchema.parse(parse(readFileSync(spec, 'utf8')));
    expect(written.hosts.map((h) => h.name)).toEqual(['dev-vps']);
    expect(written.stack.memory.embedder).toMatchObject({
      baseUrl: 'http://steward-embedder-standin:8080/v1',
      apiKeySecret: 'embedder-standin-key',
      dimension: 256,
    });
    expect(written.stack.memory.llm.baseUrl).toBe('http://steward-embedder-standin:8080/v1');
    expect(written.secrets['embedder-standin-key']).toEqual({ generate: { length: 32, alphabet: 'base62' } });
    expect(written.secrets['gateway-token']).toBeDefined();
  });

  it('init rejects a malformed --host with exit 64', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'steward-init-'));
    const r = await steward(['--spec', join(dir, 's.yaml'), 'init', '--host', 'web1:root@x']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('--host');
  });

  it('worker --metrics takes only an IP address and port (the exporter resolves no name), with exit 64 otherwise', async () => {
    for (const bad of ['localhost:9464', '127.0.0.1:99999', '::1:9464', '127.0.0.1']) {
      const r = await steward(['worker', '--metrics', bad]);
      expect(r.code, bad).toBe(64);
      expect(r.stderr).toContain(`--metrics "${bad}": expected an IP address and port`);
    }
  });

  it('worker --deployment, --build-id and --traces are checked before anything starts, with exit 64', async () => {
    const cases: [string[], string][] = [
      [['--deployment', 'steward.prod'], `--deployment "steward.prod": expected letters, digits, '-' and '_' (no '.')`],
      [['--deployment', 'steward', '--build-id', 'a b'], '--build-id "a b": expected letters, digits and . _ + -'],
      [
        ['--build-id', 'v2'],
        '--build-id (or STEWARD_BUILD_ID) names a version of a Worker Deployment: give --deployment',
      ],
      [['--traces', 'collector:4318'], '--traces: expected http:// or https://'],
      [['--traces', 'https://user:tok@collector/v1/traces'], '--traces: credentials in the URL'],
    ];
    for (const [flags, message] of cases) {
      const r = await steward(['worker', ...flags]);
      expect(r.code, flags.join(' ')).toBe(64);
      expect(r.stderr).toContain(message);
      expect(r.stderr).not.toContain('tok@');
    }
    const fromEnv = await steward(['worker'], { OTEL_EXPORTER_OTLP_ENDPOINT: 'ftp://collector' });
    expect(fromEnv.code).toBe(64);
    expect(fromEnv.stderr).toContain('the OTEL_EXPORTER_OTLP_*ENDPOINT variable: expected http:// or https://');
  });

  it('an invalid spec exits 64 listing every error, before contacting anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'steward-bad-'));
    const spec = join(dir, 'steward.yaml');
    writeFileSync(
      spec,
      [
        'version: 1',
        'hosts:',
        '  - name: vps1',
        '    port: abc',
        '    shoeSize: 44',
        'stack:',
        '  installDir: /srv/a; touch pwned',
        '  volumes:',
        '    - { name: data, path: ../data }',
        'ssh:',
        '  opsUser: $(id)',
      ].join('\n'),
    );
    const r = await steward(['--spec', spec, '--address', NOWHERE, 'provision']);
    expect(r.code).toBe(64);
    for (const path of [
      'hosts[0].address',
      'hosts[0].port',
      'hosts[0].shoeSize',
      'stack.installDir',
      'stack.volumes[0].path',
      'ssh.opsUser',
    ]) {
      expect(r.stderr).toContain(`${path}:`);
    }
  });

  it('YAML syntax errors name the line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'steward-bad-'));
    const spec = join(dir, 'steward.yaml');
    writeFileSync(spec, 'version: 1\nhosts: [\n');
    const r = await steward(['--spec', spec, '--address', NOWHERE, 'provision']);
    expect(r.code).toBe(64);
    expect(r.stderr).toMatch(/line \d+:\d+/);
  });

  it('an unknown host or flag is a usage error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'steward-init-'));
    const spec = join(dir, 'steward.yaml');
    await steward(['--spec', spec, 'init', '--host', 'web1=root@203.0.113.9']);
    const unknownHost = await steward(['--spec', spec, '--address', NOWHERE, 'provision', 'web9']);
    expect(unknownHost.code).toBe(64);
    expect(unknownHost.stderr).toContain('unknown host web9');
    expect((await steward(['--frobnicate', 'status'])).code).toBe(64);
    const unknownCommand = await steward(['frobnicate']);
    expect(unknownCommand.code).toBe(64);
    expect(unknownCommand.stderr).toContain("unknown command 'frobnicate'");
    const bare = await steward([]);
    expect(bare.code).toBe(64);
    expect(bare.stderr).toContain('Usage: steward');
  });

  it('--version prints steward, the SDK and the server, and says so when the server does not answer', async () => {
    const require = createRequire(import.meta.url);
    const own = (require('../../package.json') as { version: string }).version;
    const sdk = (require('@temporalio/client/package.json') as { version: string }).version;
    const offline = await steward(['--address', NOWHERE, '--version']);
    expect(offline.code).toBe(0);
    expect(offline.stdout.trim().split('\n')).toEqual([
      `steward ${own}`,
      `Temporal SDK ${sdk}`,
      expect.stringMatching(/^Temporal server unreachable \(127\.0\.0\.1:9 \(plaintext\): .+\)$/),
    ]);
    // The run's dev server answers with its version.
    const online = await steward(['--address', inject('temporalAddress'), '--json', '--version']);
    expect(online.code).toBe(0);
    expect(JSON.parse(online.stdout)).toEqual({
      steward: own,
      sdk,
      server: { version: expect.stringMatching(/^\d+\.\d+\.\d+/) },
    });
  });

  it('a spec that sets a dangerous OpenClaw flag is refused with the rule id, before contacting anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'steward-policy-'));
    const spec = join(dir, 'steward.yaml');
    writeFileSync(
      spec,
      [
        'version: 1',
        'hosts: [{ name: web1, address: 203.0.113.9 }]',
        'stack:',
        '  settings: { gateway: { controlUi: { dangerouslyDisableDeviceAuth: true } } }',
        'ssh: { allowUsers: [admin] }',
      ].join('\n'),
    );
    const r = await steward(['--spec', spec, '--address', NOWHERE, 'deploy']);
    expect(r.code).toBe(64);
    expect(r.stderr).toContain('openclaw.control-ui.device-auth-disabled');
    expect(r.stderr).toContain('steward.ssh.ops-user-not-allowed');
    expect(r.stderr).toContain('nothing was applied');

    // Turning the SSH rule off leaves the other refusal standing.
    writeFileSync(spec, `${readFileSync(spec, 'utf8')}\npolicy: { disable: [steward.ssh.ops-user-not-allowed] }\n`);
    const again = await steward(['--spec', spec, '--address', NOWHERE, 'deploy']);
    expect(again.code).toBe(64);
    expect(again.stderr).not.toContain('steward.ssh.ops-user-not-allowed');
    expect(again.stderr).toContain('openclaw.control-ui.device-auth-disabled');
  });

  it('schedule apply refuses hosts without a pinned key with exit 64, naming them, before contacting anything', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'steward-schedule-'));
    const spec = join(dir, 'steward.yaml');
    writeFileSync(
      spec,
      [
        'version: 1',
        'hosts:',
        '  - { name: web1, address: 203.0.113.9, trustOnFirstUse: true }',
        '  - { name: web2, address: 203.0.113.10 }',
      ].join('\n'),
    );
    for (const args of [
      ['schedule', 'apply'],
      ['schedule', 'apply', '--plan'],
    ]) {
      const r = await steward(['--spec', spec, '--address', NOWHERE, ...args]);
      expect(r.code, args.join(' ')).toBe(64);
      expect(r.stderr).toContain('never trust a host key on first use: pin hosts[].hostKey for web1, web2');
    }
  });

  it('schema prints a JSON Schema with the spec sections', async () => {
    const r = await steward(['schema']);
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as { properties: Record<string, unknown>; required: string[] };
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(['version', 'hosts', 'stack', 'provision', 'ssh']),
    );
    expect(schema.required).toEqual(expect.arrayContaining(['version', 'hosts']));
  });
});
