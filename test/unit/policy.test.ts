import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import {
  BUILT_IN_RULES,
  evaluatePolicy,
  refusalMessage,
  skippedRules,
  type HostFacts,
  type PolicyConfigInput,
  type PolicyFinding,
  type PolicySubject,
} from '../../model/policy';
import { policySchema, type Matcher } from '../../model/policy-schema';
import { specSchema, type SpecInput } from '../../model/schema';
import { validate, ValidationError } from '../../model/validate';

const TOKEN = 'tok-9f3c2a71e4b8d6f05a2c7e913b4d8f60';
const SHORT_TOKEN = 'hunter2-hunter2';

function specOf(extra: Partial<SpecInput> = {}) {
  return specSchema.parse({ version: 1, hosts: [{ name: 'vps1', address: '203.0.113.7' }], ...extra });
}

/** openclaw.json as steward would render it behind Caddy: every built-in rule passes. */
const safeOpenclaw = {
  gateway: {
    bind: 'lan',
    auth: { mode: 'token', token: TOKEN },
    controlUi: { allowedOrigins: ['https://agents.example.com'], dangerouslyAllowHostHeaderOriginFallback: false },
  },
  hooks: { gmail: { allowUnsafeExternalContent: false }, mappings: [{ allowUnsafeExternalContent: false }] },
  tools: { exec: { mode: 'allowlist', applyPatch: { workspaceOnly: true } } },
  agents: { defaults: { sandbox: { mode: 'all', docker: { dangerouslyAllowExternalBindSources: false } } } },
  browser: { ssrfPolicy: { dangerouslyAllowPrivateNetwork: false } },
  channels: { telegram: { dmPolicy: 'pairing', groupPolicy: 'allowlist' } },
};

const safeHost: HostFacts = {
  sshd: { passwordauthentication: 'no', permitrootlogin: 'no', port: '22' },
  secretFiles: [{ path: '/opt/openclaw/secrets/gateway-token', mode: '0600', owner: 'root', group: 'root' }],
  gatewayToken: { path: '/opt/openclaw/secrets/gateway-token', length: 64 },
  openPorts: [
    { port: 22, protocol: 'tcp' },
    { port: 80, protocol: 'tcp' },
    { port: 443, protocol: 'tcp' },
  ],
};

const safe: PolicySubject = { spec: specOf(), openclaw: safeOpenclaw, host: safeHost };

const config = (input: PolicyConfigInput = {}) => policySchema.parse(input);
const ids = (findings: readonly PolicyFinding[]) => findings.map((f) => f.id);
const ofRule = (subject: PolicySubject, id: string) => evaluatePolicy(subject).filter((f) => f.id === id);

interface Case {
  readonly rule: string;
  readonly fail: PolicySubject;
  /** `path` and `observed` of the findings `fail` must produce, in order. */
  readonly found: readonly (readonly [string, unknown])[];
  readonly pass: PolicySubject;
}

const openclaw = (doc: unknown): PolicySubject => ({ openclaw: doc });
const host = (facts: HostFacts, spec = specOf()): PolicySubject => ({ host: facts, spec });

const CASES: readonly Case[] = [
  {
    rule: 'openclaw.control-ui.insecure-auth',
    fail: openclaw({ gateway: { controlUi: { allowInsecureAuth: true } } }),
    found: [['gateway.controlUi.allowInsecureAuth', true]],
    pass: openclaw({ gateway: { controlUi: { allowInsecureAuth: false } } }),
  },
  {
    rule: 'openclaw.control-ui.device-auth-disabled',
    fail: openclaw({ gateway: { controlUi: { dangerouslyDisableDeviceAuth: true } } }),
    found: [['gateway.controlUi.dangerouslyDisableDeviceAuth', true]],
    pass: openclaw({ gateway: { controlUi: { dangerouslyDisableDeviceAuth: false } } }),
  },
  {
    rule: 'openclaw.control-ui.host-header-origin-fallback',
    fail: openclaw({ gateway: { controlUi: { dangerouslyAllowHostHeaderOriginFallback: true } } }),
    found: [['gateway.controlUi.dangerouslyAllowHostHeaderOriginFallback', true]],
    pass: openclaw({ gateway: { controlUi: {} } }),
  },
  {
    rule: 'openclaw.hooks.unsafe-external-content',
    fail: openclaw({
      hooks: {
        gmail: { allowUnsafeExternalContent: true },
        mappings: [{ allowUnsafeExternalContent: false }, { match: { path: 'x' }, allowUnsafeExternalContent: true }],
      },
    }),
    found: [
      ['hooks.gmail.allowUnsafeExternalContent', true],
      ['hooks.mappings[1].allowUnsafeExternalContent', true],
    ],
    pass: openclaw({ hooks: { gmail: { allowUnsafeExternalContent: false }, mappings: [{}] } }),
  },
  {
    rule: 'openclaw.tools.apply-patch-outside-workspace',
    fail: openclaw({
      tools: { exec: { applyPatch: { workspaceOnly: false } } },
      agents: { entries: { ops: { tools: { exec: { applyPatch: { workspaceOnly: false } } } } } },
    }),
    found: [
      ['agents.entries.ops.tools.exec.applyPatch.workspaceOnly', false],
      ['tools.exec.applyPatch.workspaceOnly', false],
    ],
    pass: openclaw({ tools: { exec: { applyPatch: { workspaceOnly: true } } } }),
  },
  {
    rule: 'openclaw.sandbox.dangerous-allow',
    fail: openclaw({
      agents: {
        defaults: { sandbox: { docker: { dangerouslyAllowExternalBindSources: true } } },
        list: [{ id: 'a' }, { id: 'b', sandbox: { docker: { dangerouslyAllowContainerNamespaceJoin: true } } }],
        entries: { c: { sandbox: { docker: { dangerouslyAllowReservedContainerTargets: true } } } },
      },
    }),
    found: [
      ['agents.defaults.sandbox.docker.dangerouslyAllowExternalBindSources', true],
      ['agents.entries.c.sandbox.docker.dangerouslyAllowReservedContainerTargets', true],
      ['agents.list[1].sandbox.docker.dangerouslyAllowContainerNamespaceJoin', true],
    ],
    pass: openclaw({ agents: { defaults: { sandbox: { docker: { dangerouslyAllowExternalBindSources: false } } } } }),
  },
  {
    rule: 'openclaw.browser.private-network',
    fail: openclaw({ browser: { ssrfPolicy: { dangerouslyAllowPrivateNetwork: true } } }),
    found: [['browser.ssrfPolicy.dangerouslyAllowPrivateNetwork', true]],
    pass: openclaw({ browser: { ssrfPolicy: { dangerouslyAllowPrivateNetwork: false } } }),
  },
  {
    rule: 'openclaw.gateway.auth-none',
    fail: openclaw({ gateway: { bind: 'loopback', auth: { mode: 'none' } } }),
    found: [['gateway.auth.mode', 'none']],
    pass: openclaw({
      gateway: { bind: 'loopback', auth: { mode: 'password', password: { source: 'env', id: 'PW' } } },
    }),
  },
  {
    rule: 'openclaw.gateway.bind-no-auth',
    fail: openclaw({ gateway: { bind: 'lan' } }),
    found: [['gateway.bind', 'lan']],
    pass: openclaw({ gateway: { bind: 'lan', auth: { token: '${OPENCLAW_GATEWAY_TOKEN}' } } }),
  },
  {
    rule: 'openclaw.gateway.token-too-short',
    fail: openclaw({ gateway: { auth: { mode: 'token', token: SHORT_TOKEN } } }),
    found: [['gateway.auth.token', SHORT_TOKEN.length]],
    pass: openclaw({ gateway: { auth: { mode: 'token', token: TOKEN } } }),
  },
  {
    rule: 'openclaw.tools.exec-security-full',
    fail: openclaw({
      tools: { exec: { security: 'full' } },
      agents: { entries: { ops: { tools: { exec: { mode: 'full' } } } } },
    }),
    found: [
      ['agents.entries.ops.tools.exec.mode', 'full'],
      ['tools.exec.security', 'full'],
    ],
    pass: openclaw({ tools: { exec: { mode: 'ask', security: 'allowlist' } } }),
  },
  {
    rule: 'openclaw.channels.dm-open',
    fail: openclaw({
      channels: {
        telegram: { dmPolicy: 'open' },
        discord: { dmPolicy: 'pairing', accounts: { work: { dmPolicy: 'open' } } },
        matrix: { dm: { policy: 'open' } },
      },
    }),
    found: [
      ['channels.discord.accounts.work.dmPolicy', 'open'],
      ['channels.matrix.dm.policy', 'open'],
      ['channels.telegram.dmPolicy', 'open'],
    ],
    pass: openclaw({ channels: { telegram: { dmPolicy: 'pairing', accounts: { a: { dmPolicy: 'allowlist' } } } } }),
  },
  {
    rule: 'openclaw.channels.group-open',
    fail: openclaw({
      channels: { defaults: { groupPolicy: 'open' }, slack: { accounts: { ws: { groupPolicy: 'open' } } } },
    }),
    found: [
      ['channels.defaults.groupPolicy', 'open'],
      ['channels.slack.accounts.ws.groupPolicy', 'open'],
    ],
    pass: openclaw({ channels: { defaults: { groupPolicy: 'allowlist' } } }),
  },
  {
    rule: 'steward.ssh.ops-user-not-allowed',
    fail: { spec: specOf({ ssh: { allowUsers: ['alice', 'bob'] } }) },
    found: [['ssh.allowUsers', 'alice bob']],
    pass: { spec: specOf({ ssh: { allowUsers: ['alice', 'steward'] } }) },
  },
  {
    rule: 'host.ssh.password-authentication',
    fail: host({ sshd: { passwordauthentication: 'yes' } }),
    found: [['sshd.passwordauthentication', 'yes']],
    pass: host({ sshd: { passwordauthentication: 'no' } }),
  },
  {
    rule: 'host.ssh.root-login',
    fail: host({ sshd: { permitrootlogin: 'without-password' } }),
    found: [['sshd.permitrootlogin', 'without-password']],
    pass: host({ sshd: { permitrootlogin: 'no' } }),
  },
  {
    rule: 'host.firewall.port-not-in-spec',
    fail: host({
      openPorts: [...(safeHost.openPorts ?? []), { port: 8080, protocol: 'tcp' }, { port: 80, protocol: 'udp' }],
    }),
    found: [
      ['80/udp', 'open'],
      ['8080/tcp', 'open'],
    ],
    pass: host({ openPorts: safeHost.openPorts ?? [] }),
  },
  {
    rule: 'host.secret-file.world-readable',
    fail: host({
      secretFiles: [{ path: '/opt/openclaw/secrets/gateway-token', mode: '644', owner: 'root', group: 'root' }],
    }),
    found: [['/opt/openclaw/secrets/gateway-token', '644']],
    pass: host({
      secretFiles: [{ path: '/opt/openclaw/secrets/gateway-token', mode: '0640', owner: 'root', group: 'root' }],
    }),
  },
  {
    rule: 'host.secret-file.group-readable',
    fail: host({ secretFiles: [{ path: '/opt/openclaw/.env', mode: '0640', owner: 'root', group: 'steward' }] }),
    found: [['/opt/openclaw/.env', '0640']],
    pass: host({ secretFiles: [{ path: '/opt/openclaw/.env', mode: '0600', owner: 'root', group: 'steward' }] }),
  },
  {
    rule: 'host.gateway-token.too-short',
    fail: host({ gatewayToken: { path: '/opt/openclaw/secrets/gateway-token', length: 16 } }),
    found: [['/opt/openclaw/secrets/gateway-token', 16]],
    pass: host({ gatewayToken: { path: '/opt/openclaw/secrets/gateway-token', length: 32 } }),
  },
];

describe('built-in rules', () => {
  it('have unique ids, and every one has a failing and a passing case here', () => {
    const builtIn = BUILT_IN_RULES.map((r) => r.id);
    expect(new Set(builtIn).size).toBe(builtIn.length);
    expect(CASES.map((c) => c.rule).sort()).toEqual([...builtIn].sort());
  });

  it('find nothing in a safe spec, openclaw.json and host, and skip nothing', () => {
    expect(evaluatePolicy(safe)).toEqual([]);
    expect(skippedRules(safe)).toEqual([]);
  });

  it.each(CASES)('$rule: fails with its path and observed value', ({ rule, fail, found }) => {
    const findings = ofRule(fail, rule);
    expect(findings.map((f) => [f.path, f.observed])).toEqual(found);
    const meta = BUILT_IN_RULES.find((r) => r.id === rule);
    expect(findings[0]).toMatchObject({ severity: meta?.severity, message: meta?.message });
  });

  it.each(CASES)('$rule: passes', ({ rule, pass }) => {
    expect(ofRule(pass, rule)).toEqual([]);
  });

  it('points findings at the subject they came from', () => {
    const subjects = Object.fromEntries(CASES.map((c) => [c.rule, ofRule(c.fail, c.rule)[0]?.subject]));
    expect(subjects).toMatchObject({
      'openclaw.gateway.bind-no-auth': 'openclaw',
      'steward.ssh.ops-user-not-allowed': 'spec',
      'host.firewall.port-not-in-spec': 'host',
    });
  });
});

describe('built-in rule details', () => {
  it('counts token, password and trusted-proxy auth as securing a non-loopback bind', () => {
    const bind = (auth: unknown) =>
      ofRule(openclaw({ gateway: { bind: 'custom', auth } }), 'openclaw.gateway.bind-no-auth');
    expect(bind({ mode: 'token' })).toEqual([]);
    expect(bind({ mode: 'password' })).toEqual([]);
    expect(bind({ mode: 'trusted-proxy' })).toEqual([]);
    expect(bind({ password: { source: 'file', id: '/run/secrets/pw' } })).toEqual([]);
    expect(bind({ token: '' })).toHaveLength(1);
    expect(bind({ mode: 'none', token: TOKEN })).toHaveLength(1);
    expect(ofRule(openclaw({ gateway: { bind: 'loopback' } }), 'openclaw.gateway.bind-no-auth')).toEqual([]);
    expect(ofRule(openclaw({ gateway: {} }), 'openclaw.gateway.bind-no-auth')).toEqual([]);
  });

  it('reports an empty or placeholder token by length, and leaves env references and SecretRefs to host facts', () => {
    const token = (t: unknown) =>
      ofRule(openclaw({ gateway: { auth: { token: t } } }), 'openclaw.gateway.token-too-short');
    expect(token('').map((f) => f.observed)).toEqual([0]);
    expect(token('undefined').map((f) => f.observed)).toEqual([9]);
    expect(token('${OPENCLAW_GATEWAY_TOKEN}')).toEqual([]);
    expect(token({ source: 'env', id: 'OPENCLAW_GATEWAY_TOKEN' })).toEqual([]);
    expect(token('x'.repeat(31))).toHaveLength(1);
    expect(token('x'.repeat(32))).toEqual([]);
  });

  it('accepts root login with keys only when the spec chose prohibit-password', () => {
    const spec = specOf({ ssh: { permitRootLogin: 'prohibit-password' } });
    const root = (value: string) => ofRule(host({ sshd: { permitrootlogin: value } }, spec), 'host.ssh.root-login');
    expect(root('without-password')).toEqual([]);
    expect(root('prohibit-password')).toEqual([]);
    expect(root('yes')).toHaveLength(1);
    expect(ofRule({ host: { sshd: { permitrootlogin: 'yes' } } }, 'host.ssh.root-login')).toHaveLength(1);
  });

  it("allows the spec's ingress ports and SSH port, and none when the spec turns the firewall off", () => {
    const spec = specOf({ ssh: { port: 2222 }, firewall: { ingress: [{ port: 8443, protocol: 'udp' }] } });
    const ports: HostFacts['openPorts'] = [
      { port: 2222, protocol: 'tcp' },
      { port: 8443, protocol: 'udp' },
      { port: 443, protocol: 'tcp' },
      { port: 443, protocol: 'tcp' },
    ];
    expect(ofRule(host({ openPorts: ports }, spec), 'host.firewall.port-not-in-spec').map((f) => f.path)).toEqual([
      '443/tcp',
    ]);
    const off = specOf({ firewall: { enabled: false } });
    expect(ofRule(host({ openPorts: ports }, off), 'host.firewall.port-not-in-spec')).toEqual([]);
  });

  it('finds a world-readable secret file under both readable rules', () => {
    const files = host({ secretFiles: [{ path: '/srv/s', mode: '0604', owner: 'root', group: 'root' }] });
    expect(ids(evaluatePolicy(files))).toEqual(['host.secret-file.world-readable']);
    const both = host({ secretFiles: [{ path: '/srv/s', mode: '0644', owner: 'root', group: 'root' }] });
    expect(ids(evaluatePolicy(both))).toEqual(['host.secret-file.world-readable', 'host.secret-file.group-readable']);
  });
});

describe('subjects', () => {
  it('skips rules whose parts are absent instead of passing them', () => {
    const onlySpec = { spec: specOf({ ssh: { allowUsers: ['alice'] } }) };
    expect(ids(evaluatePolicy(onlySpec))).toEqual(['steward.ssh.ops-user-not-allowed']);
    const skipped = skippedRules(onlySpec);
    expect(skipped).toContain('openclaw.gateway.bind-no-auth');
    expect(skipped).toContain('host.ssh.password-authentication');
    expect(skipped).not.toContain('steward.ssh.ops-user-not-allowed');
  });

  it('skips a host rule when its host fact is absent, even with other facts present', () => {
    const subject = { spec: specOf(), host: { sshd: { passwordauthentication: 'yes' } } };
    expect(ids(evaluatePolicy(subject))).toEqual(['host.ssh.password-authentication']);
    expect(skippedRules(subject)).toEqual(
      expect.arrayContaining([
        'host.firewall.port-not-in-spec',
        'host.secret-file.world-readable',
        'host.gateway-token.too-short',
      ]),
    );
    expect(skippedRules(subject)).not.toContain('host.ssh.root-login');
  });

  it('needs both host ports and the spec for the firewall rule', () => {
    expect(skippedRules({ host: { openPorts: [{ port: 8080, protocol: 'tcp' }] } })).toContain(
      'host.firewall.port-not-in-spec',
    );
  });

  it('evaluates the spec with the openclaw.json it renders before anything is applied', () => {
    const subject = {
      spec: specOf(),
      openclaw: {
        ...safeOpenclaw,
        gateway: { ...safeOpenclaw.gateway, controlUi: { dangerouslyDisableDeviceAuth: true } },
      },
    };
    const findings = evaluatePolicy(subject);
    expect(ids(findings)).toEqual(['openclaw.control-ui.device-auth-disabled']);
    expect(refusalMessage(findings)).toContain('openclaw.control-ui.device-auth-disabled');
  });
});

describe('ordering', () => {
  it('sorts by severity, then rule id and path, whatever the key order', () => {
    const a = {
      channels: { telegram: { groupPolicy: 'open' } },
      tools: { exec: { security: 'full' } },
      gateway: { bind: 'lan', controlUi: { allowInsecureAuth: true } },
    };
    const b = {
      gateway: { controlUi: { allowInsecureAuth: true }, bind: 'lan' },
      tools: { exec: { security: 'full' } },
      channels: { telegram: { groupPolicy: 'open' } },
    };
    const order = [
      'openclaw.control-ui.insecure-auth',
      'openclaw.gateway.bind-no-auth',
      'openclaw.channels.group-open',
      'openclaw.tools.exec-security-full',
    ];
    expect(ids(evaluatePolicy(openclaw(a)))).toEqual(order);
    expect(evaluatePolicy(openclaw(b))).toEqual(evaluatePolicy(openclaw(a)));
  });
});

describe('policy config', () => {
  it('disables built-in rules by id', () => {
    const subject = openclaw({ tools: { exec: { security: 'full' } }, gateway: { auth: { mode: 'none' } } });
    const findings = evaluatePolicy(subject, config({ disable: ['openclaw.tools.exec-security-full'] }));
    expect(ids(findings)).toEqual(['openclaw.gateway.auth-none']);
    expect(skippedRules({}, config({ disable: ['openclaw.tools.exec-security-full'] }))).not.toContain(
      'openclaw.tools.exec-security-full',
    );
  });

  it('drops findings below the severity threshold', () => {
    const subject = openclaw({ tools: { exec: { security: 'full' } }, gateway: { auth: { mode: 'none' } } });
    expect(ids(evaluatePolicy(subject, config({ severityThreshold: 'high' })))).toEqual(['openclaw.gateway.auth-none']);
    expect(ids(evaluatePolicy(subject, config({ severityThreshold: 'medium' })))).toHaveLength(2);
  });

  it('fills defaults', () => {
    expect(config()).toEqual({ rules: [], disable: [], severityThreshold: 'low' });
  });

  it('rejects unknown disabled ids, clashing or duplicate rule ids and malformed matchers, each with its path', () => {
    const rule = (id: string, when: object) => ({ id, severity: 'low', message: 'm', when });
    const result = policySchema.safeParse({
      disable: ['openclaw.gateway.auth-none', 'openclaw.no-such-rule'],
      rules: [
        rule('openclaw.gateway.auth-none', { path: 'gateway.bind', equals: 'lan' }),
        rule('acme.a', { path: 'gateway.bind', equals: 'lan', notEquals: 'x' }),
        rule('acme.a', { path: 'gateway.bind' }),
        rule('acme.b', { path: 'gateway.bind', matches: '(' }),
        rule('acme.c', { path: 'gateway..bind', exists: true }),
        rule('Acme C', { path: 'gateway.bind', exists: true }),
      ],
    });
    expect(result.success).toBe(false);
    const issues = result.error?.issues.map((i) => [i.path.join('.'), i.message]);
    expect(issues).toEqual(
      expect.arrayContaining([
        ['disable.1', 'is not a built-in rule'],
        ['rules.0.id', 'is a built-in rule id'],
        ['rules.1.when', 'must set exactly one of equals, notEquals, in, notIn, matches, exists'],
        ['rules.2.when', 'must set exactly one of equals, notEquals, in, notIn, matches, exists'],
        ['rules.3.when.matches', 'must be a valid regular expression'],
      ]),
    );
    expect(issues?.map(([p]) => p)).toEqual(expect.arrayContaining(['rules.4.when.path', 'rules.5.id']));
  });

  it('reports the unknown id at its spec path through validate', () => {
    const wrapped = z.strictObject({ policy: policySchema.prefault({}) });
    expect(() => validate(wrapped, { policy: { disable: ['nope'] } }, 'steward.yaml')).toThrow(ValidationError);
    try {
      validate(wrapped, { policy: { disable: ['nope'] } }, 'steward.yaml');
    } catch (err) {
      expect((err as ValidationError).issues).toEqual([
        { path: 'policy.disable[0]', message: 'is not a built-in rule' },
      ]);
    }
  });

  it('has a JSON Schema', () => {
    const schema = z.toJSONSchema(policySchema, { io: 'input', unrepresentable: 'any' });
    expect(Object.keys(schema.properties ?? {})).toEqual(['rules', 'disable', 'severityThreshold']);
  });
});

describe('user rules', () => {
  const doc = {
    gateway: { bind: 'lan', port: 18789, auth: { mode: 'token', token: TOKEN } },
    channels: {
      telegram: { dmPolicy: 'pairing', botToken: '123456:telegram-secret-bot-token' },
      discord: { dmPolicy: 'allowlist' },
    },
    models: { mode: 'merge' },
  };
  const run = (when: Matcher, subject: PolicySubject = openclaw(doc), extra: { subject?: 'spec' | 'host' } = {}) =>
    evaluatePolicy(
      subject,
      config({ rules: [{ id: 'acme.rule', severity: 'high', message: 'acme says no', when, ...extra }] }),
    );
  const found = (when: Matcher, subject?: PolicySubject, extra?: { subject?: 'spec' | 'host' }) =>
    run(when, subject, extra).map((f) => [f.path, f.observed]);

  it('equals and notEquals', () => {
    expect(found({ path: 'gateway.bind', equals: 'lan' })).toEqual([['gateway.bind', 'lan']]);
    expect(found({ path: 'gateway.bind', equals: 'loopback' })).toEqual([]);
    expect(found({ path: 'gateway.port', notEquals: 18789 })).toEqual([]);
    expect(found({ path: 'models.mode', notEquals: 'replace' })).toEqual([['models.mode', 'merge']]);
  });

  it('in and notIn, over a wildcard path', () => {
    expect(found({ path: 'channels.*.dmPolicy', in: ['pairing', 'open'] })).toEqual([
      ['channels.telegram.dmPolicy', 'pairing'],
    ]);
    expect(found({ path: 'channels.*.dmPolicy', notIn: ['pairing'] })).toEqual([
      ['channels.discord.dmPolicy', 'allowlist'],
    ]);
  });

  it('matches, on text and numbers', () => {
    expect(found({ path: 'gateway.port', matches: '^187' })).toEqual([['gateway.port', 18789]]);
    expect(found({ path: 'gateway.bind', matches: '^(lan|custom)$' })).toEqual([['gateway.bind', 'lan']]);
    expect(found({ path: 'gateway', matches: '.' })).toEqual([]);
  });

  it('exists true and false', () => {
    expect(found({ path: 'models.mode', exists: true })).toEqual([['models.mode', 'merge']]);
    expect(found({ path: 'models.providers.@acme/router.baseUrl', exists: true })).toEqual([]);
    expect(found({ path: 'gateway.auth.rateLimit', exists: false })).toEqual([['gateway.auth.rateLimit', undefined]]);
    expect(found({ path: 'gateway.bind', exists: false })).toEqual([]);
  });

  it('compares only values that are present', () => {
    expect(found({ path: 'gateway.customBindHost', notEquals: '127.0.0.1' })).toEqual([]);
    expect(found({ path: 'gateway.customBindHost', notIn: ['127.0.0.1'] })).toEqual([]);
  });

  it('read the spec or host facts when asked, and are skipped without them', () => {
    expect(found({ path: 'ssh.port', equals: 22 }, { spec: specOf() }, { subject: 'spec' })).toEqual([
      ['ssh.port', 22],
    ]);
    expect(
      found({ path: 'sshd.x11forwarding', equals: 'yes' }, host({ sshd: { x11forwarding: 'yes' } }), {
        subject: 'host',
      }),
    ).toEqual([['sshd.x11forwarding', 'yes']]);
    expect(
      skippedRules(
        { spec: specOf() },
        config({ rules: [{ id: 'acme.r', severity: 'low', message: 'm', when: { path: 'a', exists: true } }] }),
      ),
    ).toContain('acme.r');
  });

  it('are reported with their own id, severity and message, sorted with the built-in ones', () => {
    const findings = run(
      { path: 'models.mode', equals: 'merge' },
      openclaw({ ...doc, gateway: { auth: { mode: 'none' } } }),
    );
    expect(findings).toEqual([
      {
        id: 'openclaw.gateway.auth-none',
        severity: 'critical',
        message: expect.any(String),
        subject: 'openclaw',
        path: 'gateway.auth.mode',
        observed: 'none',
      },
      {
        id: 'acme.rule',
        severity: 'high',
        message: 'acme says no',
        subject: 'openclaw',
        path: 'models.mode',
        observed: 'merge',
      },
    ]);
  });

  it('parse from the YAML an operator writes', () => {
    const yaml = `
disable: [openclaw.tools.exec-security-full]
rules:
  - id: acme.gateway.bind
    severity: high
    message: The gateway listens on loopback or the compose network only
    when: { path: gateway.bind, notIn: [loopback, lan] }
  - id: acme.ssh.port
    severity: medium
    message: SSH stays on port 22
    subject: spec
    when: { path: ssh.port, notEquals: 22 }
  - id: acme.auth.rate-limit
    severity: low
    message: Exposed gateway auth is rate limited
    when: { path: gateway.auth.rateLimit, exists: false }
`;
    const policy = config(parseYaml(yaml) as PolicyConfigInput);
    const subject = { spec: specOf({ ssh: { port: 2222 } }), openclaw: { gateway: { bind: 'custom' } } };
    expect(ids(evaluatePolicy(subject, policy))).toEqual([
      'openclaw.gateway.bind-no-auth',
      'acme.gateway.bind',
      'acme.ssh.port',
      'acme.auth.rate-limit',
    ]);
  });
});

describe('secrets', () => {
  it('never appear in findings or the refusal message', () => {
    const secret = 'S3cr3t-value-that-must-not-leak';
    const subjects: PolicySubject[] = [
      ...CASES.map((c) => c.fail),
      openclaw({ gateway: { bind: 'lan', auth: { mode: 'none', token: SHORT_TOKEN, password: secret } } }),
    ];
    const userRules = config({
      rules: [
        { id: 'acme.token', severity: 'high', message: 'm', when: { path: 'gateway.auth.token', exists: true } },
        { id: 'acme.password', severity: 'high', message: 'm', when: { path: 'gateway.auth.password', matches: '.' } },
        { id: 'acme.auth', severity: 'high', message: 'm', when: { path: 'gateway.auth', exists: true } },
        { id: 'acme.bot', severity: 'high', message: 'm', when: { path: 'channels.**.botToken', notEquals: 'x' } },
      ],
    });
    const findings = subjects.flatMap((s) => evaluatePolicy(s, userRules));
    const bot = evaluatePolicy(openclaw({ channels: { telegram: { botToken: `${secret}-bot` } } }), userRules);
    const text = JSON.stringify([findings, bot]) + refusalMessage([...findings, ...bot]);
    for (const value of [secret, SHORT_TOKEN, TOKEN]) expect(text).not.toContain(value);
    const observed = (id: string) => new Set(findings.filter((f) => f.id === id).map((f) => f.observed));
    expect(observed('acme.token')).toEqual(new Set(['(redacted)']));
    expect(observed('acme.password')).toEqual(new Set(['(redacted)']));
    expect(observed('acme.auth')).toEqual(new Set(['(object)']));
    expect(bot.map((f) => [f.path, f.observed])).toEqual([['channels.telegram.botToken', '(redacted)']]);
  });
});

describe('refusalMessage', () => {
  it('lists the rule ids up front and every finding with where it is', () => {
    const findings = evaluatePolicy({
      spec: specOf({ ssh: { allowUsers: ['alice'] } }),
      openclaw: { gateway: { auth: { token: SHORT_TOKEN } } },
    });
    expect(refusalMessage(findings)).toBe(
      [
        'The spec violates policy (steward.ssh.ops-user-not-allowed, openclaw.gateway.token-too-short); nothing was applied:',
        '  - steward.ssh.ops-user-not-allowed (critical): ssh.allowUsers leaves out the ops user: hardening SSH would lock steward out — steward.yaml ssh.allowUsers (observed: "alice")',
        `  - openclaw.gateway.token-too-short (high): The gateway token is shorter than 32 characters (observed: its length) — openclaw.json gateway.auth.token (observed: ${SHORT_TOKEN.length})`,
        'Change the spec, or turn a built-in rule off under policy.disable.',
      ].join('\n'),
    );
  });
});
