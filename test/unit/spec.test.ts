import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { resolveExternal } from '../../activities/deploy/secrets';
import { loadSpec, MAX_SPEC_BYTES } from '../../client/spec-file';
import { specSchema } from '../../model/schema';
import { validate, ValidationError } from '../../model/validate';
import { specIssues } from '../support/specs';

const minimal = { version: 1, hosts: [{ name: 'vps1', address: '203.0.113.7' }] };

const issues = specIssues;

describe('spec schema', () => {
  it('fills every default from a minimal spec', () => {
    const spec = validate(specSchema, minimal, 'steward.yaml');
    expect(spec.hosts[0]).toMatchObject({ port: 22, user: 'root', trustOnFirstUse: false });
    expect(spec.ssh.opsUser).toBe('steward');
    expect(spec.stack.volumes.map((v) => v.path)).toEqual([
      '/opt/openclaw/state',
      '/opt/openclaw/memory',
      '/opt/openclaw/workspace',
    ]);
    expect(spec.provision.docker).toEqual({ logMaxSize: '10m', logMaxFiles: 3, liveRestore: true });
    expect(spec.stack.compressImages).toBe(true);
  });

  it('sends images raw when told, and names the field for a value that is not a boolean', () => {
    expect(validate(specSchema, { ...minimal, stack: { compressImages: false } }, 'steward.yaml').stack).toMatchObject({
      compressImages: false,
    });
    expect(issues({ ...minimal, stack: { compressImages: 'no' } }).map((i) => i.path)).toEqual([
      'stack.compressImages',
    ]);
  });

  it('refuses volumes that would give the container the host, naming the field', () => {
    const volume = (path: string) => ({ ...minimal, stack: { volumes: [{ name: 'state', path }] } });
    for (const path of [
      '/',
      '/etc',
      '/etc/openclaw',
      '/var/run/docker',
      '/run',
      '/var',
      '/opt',
      '/home/steward',
      '/var/lib/docker/volumes',
    ]) {
      expect(issues(volume(path)), path).toContainEqual({
        path: 'stack.volumes[0].path',
        message: expect.stringMatching(/^must not be, lie under or contain /),
      });
    }
    for (const path of ['/opt/openclaw/secrets', '/opt/openclaw/secrets/x', '/opt/openclaw/.steward']) {
      expect(issues(volume(path)), path).toContainEqual({
        path: 'stack.volumes[0].path',
        message: expect.stringMatching(/^must not be, lie under or contain \/opt\/openclaw\/(secrets|\.steward) /),
      });
    }
    const elsewhere = {
      ...minimal,
      stack: {
        volumes: [
          { name: 'state', path: '/srv/openclaw/state' },
          { name: 'memory', path: '/srv/openclaw/memory' },
        ],
      },
    };
    expect(validate(specSchema, elsewhere, 'steward.yaml').stack.volumes[0]!.path).toBe('/srv/openclaw/state');
  });

  it('refuses line breaks and control characters in values written into host files', () => {
    expect(
      issues({ ...minimal, harden: { sysctl: { 'net.ipv4.ip_forward': '0\nkernel.modules_disabled = 1' } } }),
    ).toContainEqual({
      path: 'harden.sysctl.net.ipv4.ip_forward',
      message: expect.stringMatching(/line breaks or control characters/),
    });
    const acme = (acmeCa: string) => ({
      ...minimal,
      proxy: { domain: 'a.example', tls: 'acme', acmeEmail: 'o@a.example', acmeCa },
    });
    for (const url of ['https://ca.example/dir\n}\nimport x', 'https://ca.example/{x}', 'https://ca.example/a b']) {
      expect(
        issues(acme(url)).map((i) => i.path),
        url,
      ).toContain('proxy.acmeCa');
    }
    expect(validate(specSchema, acme('https://ca.example/directory'), 'steward.yaml').proxy.acmeCa).toBe(
      'https://ca.example/directory',
    );
  });

  it('lists every error with its path at once', () => {
    const found = issues({
      version: 1,
      hosts: [{ name: 'vps1', port: 'abc', colour: 'blue' }],
      stack: { installDir: 'srv/app', volumes: [{ name: 'data', path: '/srv/../etc' }] },
    });
    expect(found).toEqual(
      expect.arrayContaining([
        { path: 'hosts[0].address', message: 'is required' },
        { path: 'hosts[0].port', message: 'must be a port number' },
        { path: 'hosts[0].colour', message: 'is not a known key' },
        { path: 'stack.installDir', message: 'must be an absolute path' },
        { path: 'stack.volumes[0].path', message: 'must not contain "." or ".." segments' },
      ]),
    );
    expect(found).toHaveLength(5);
  });

  it('rejects shell metacharacters in paths and user names', () => {
    const found = issues({ ...minimal, stack: { installDir: '/srv/a; touch pwned' }, ssh: { opsUser: '$(id)' } });
    expect(found.map((i) => i.path).sort()).toEqual(['ssh.opsUser', 'stack.installDir']);
  });

  it('rejects duplicate hosts and volumes, unpinned images, out-of-range ports', () => {
    const found = issues({
      version: 1,
      hosts: [
        { name: 'a', address: 'h1', port: 70000 },
        { name: 'a', address: 'h2' },
      ],
      stack: {
        image: 'openclaw',
        volumes: [
          { name: 'state', path: '/srv/x' },
          { name: 'state', path: '/srv/y' },
          { name: 'memory', path: '/srv/m' },
        ],
      },
    });
    expect(found.map((i) => i.path).sort()).toEqual([
      'hosts[0].port',
      'hosts[1].name',
      'stack.image',
      'stack.volumes[1].name',
    ]);
  });

  it('normalises modes and refuses non-octal ones', () => {
    const spec = validate(
      specSchema,
      {
        ...minimal,
        stack: {
          volumes: [
            { name: 'state', path: '/x', mode: '750' },
            { name: 'memory', path: '/m' },
          ],
        },
      },
      's',
    );
    expect(spec.stack.volumes[0]?.mode).toBe('0750');
    const bad = {
      volumes: [
        { name: 'state', path: '/x', mode: '0999' },
        { name: 'memory', path: '/m' },
      ],
    };
    expect(issues({ ...minimal, stack: bad })[0]?.path).toBe('stack.volumes[0].mode');
  });

  it.each([
    ['203.0.113.0/24', true],
    ['0.0.0.0/0', true],
    ['::/0', true],
    ['2001:db8::1', true],
    ['2001:db8:0:0:0:0:0:1/128', true],
    ['999.1.1.1', false],
    ['10.0.0.0/33', false],
    ['1:2:3', false],
    ['2001:db8::1::2', false],
    ['2001:db8::/129', false],
    ['10.0.0.1/8/8', false],
  ])('firewall source %s valid: %s', (source, ok) => {
    const result = specSchema.safeParse({ ...minimal, firewall: { ingress: [{ port: 443, sources: [source] }] } });
    expect(result.success).toBe(ok);
  });

  it('accepts only OpenSSH public key lines as pinned host keys', () => {
    const bad = issues({ version: 1, hosts: [{ name: 'a', address: 'h', hostKey: 'SHA256:abc' }] });
    expect(bad).toEqual([{ path: 'hosts[0].hostKey', message: expect.stringContaining('OpenSSH public key') }]);
  });
});

describe('spec file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'steward-spec-'));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const minimal = 'version: 1\nhosts:\n  - { name: vps1, address: 203.0.113.7 }\n';

  it('refuses a file over the size limit and aliases that expand too far, before validating anything', async () => {
    const big = file('big.yaml', `${minimal}# ${'x'.repeat(MAX_SPEC_BYTES)}\n`);
    await expect(loadSpec(big)).rejects.toThrow(ValidationError);
    await expect(loadSpec(big)).rejects.toThrow(/\(file\): is \d+ bytes; a spec is at most 262144/);
    // Nine levels of nine aliases each: a few hundred bytes that would expand to hundreds of millions of nodes.
    const levels = ['a0: &a0 [x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++)
      levels.push(
        `a${i}: &a${i} [${Array(9)
          .fill(`*a${i - 1}`)
          .join(', ')}]`,
      );
    const laughs = file('laughs.yaml', `${minimal}x-bomb:\n${levels.map((l) => `  ${l}`).join('\n')}\n`);
    await expect(loadSpec(laughs)).rejects.toThrow(/\(file\): YAML aliases expand too far/);
    // A handful of anchors is fine (and the unknown key is what the schema then names).
    const few = file('few.yaml', `${minimal}stack:\n  volumes: &v []\nx-copy: *v\n`);
    await expect(loadSpec(few)).rejects.toThrow(/x-copy/);
  });

  it('refuses an external value shorter than the minimum, naming the field', async () => {
    const spec = validate(
      specSchema,
      {
        version: 1,
        hosts: [{ name: 'vps1', address: '203.0.113.7' }],
        secrets: { 'gateway-token': { generate: {} }, 'api-key': { external: { env: 'STEWARD_TEST_SHORT' } } },
      },
      'steward.yaml',
    );
    process.env.STEWARD_TEST_SHORT = 'short-1234';
    try {
      await expect(resolveExternal('vps1', 'api-key', spec.secrets['api-key']!)).rejects.toThrow(
        /api-key.*the source gave 10 characters; secrets\.api-key\.minLength is 16/,
      );
      const lenient = { ...spec.secrets['api-key']!, minLength: 8 };
      await expect(resolveExternal('vps1', 'api-key', lenient)).resolves.toBe('short-1234');
    } finally {
      delete process.env.STEWARD_TEST_SHORT;
    }
  });
});
