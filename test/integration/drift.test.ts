/**
 * drift end to end on a provisioned, hardened and deployed simulator, through the CLI: a converged host plans
 * clean (exit 0); six changes made by hand on the host — the state dir's mode, a provider key in the gateway
 * container's environment, a dangerous flag in openclaw.json, an nft rule opening 8080, PasswordAuthentication yes, a
 * stopped cleanup timer — are planned as exactly six corrective drifts (exit 2) with the policy's findings, plus the
 * provider the key made usable as the gateway's own model routing shows it (auto-detected); `--repair` converges them
 * back through the operations and the next plan is clean again. A reboot
 * left pending waits for the spec's reboot window; inside it harden reboots the host and verifies the stack once it
 * is back. Every run goes through a frontend that takes only TLS with a client certificate and an API key (a test
 * double in front of the dev server): the CLI configured by a temporal.toml profile, the worker by Temporal's
 * environment variables; provision and a rotation run through it too, and a CLI or worker without what it asks for
 * is refused with the reason. The worker serves Prometheus metrics; Debian's Prometheus scrapes it with steward's
 * shipped alert rules, and the hand-made drift fires StewardHostDrifted for the host until the repair. It exports
 * OpenTelemetry traces to an OTLP receiver: a run's trace reaches from the workflow through its activities to each SSH
 * command, and a repair's child run joins its parent's trace.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { simulatorExec, type Simulator } from '../../client/dev/simulator';
import type { SpecInput } from '../../model/schema';
import { resolveTemporal } from '../../common/temporal-connection';
import { SERVER_NAME } from '../support/certificates';
import { steward } from '../support/cli';
import { findFreePort } from '../../client/dev/temporal';
import { hostName, stage, startWorker, writeSpec, type Stage } from '../support/fixtures';
import { startPrometheus, type Alert, type TestPrometheus } from '../support/prometheus';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../doubles/otlp-receiver';
import { KEPT } from '../../workers/tracing';
import { phase } from '../support/phases';

/** Images go raw to the simulator over loopback, where gzip only costs CPU (deploy.test.ts keeps the default). */
const SPEC: Partial<SpecInput> = {
  harden: { confirmSeconds: 30 },
  stack: { compressImages: false },
  proxy: { domain: 'drift.steward.test' },
};

let world: Stage;
let sim: Simulator;
let spec: string;
/** Debian's Prometheus, scraping this file's worker and evaluating steward's shipped alert rules. */
let prometheus: TestPrometheus;
/** Where the worker exports its traces. */
let traces: OtlpReceiver;

/** Waits until `check` holds, polling every 500 ms, at most `ms`. */
async function until(check: () => Promise<boolean>, ms: number): Promise<void> {
  for (const deadline = Date.now() + ms; !(await check());) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function onHost(script: string): Promise<string> {
  const r = await simulatorExec(sim.container, ['sh', '-c', script]);
  if (r.exitCode !== 0) throw new Error(`on host: ${script}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Waits until the gateway has been healthy, with the same start time, for two checks 3 s apart (at most 3 min). */
async function gatewaySettled(): Promise<void> {
  const look = () => onHost("docker inspect -f '{{.State.Health.Status}} {{.State.StartedAt}}' openclaw_gateway_1");
  let last = '';
  for (const deadline = Date.now() + 180_000; Date.now() < deadline;) {
    const now = await look();
    if (now.startsWith('healthy ') && now === last) return;
    last = now;
    await new Promise((r) => setTimeout(r, 3000));
  }
  throw new Error(`the gateway did not settle: ${last}`);
}

beforeAll(async () => {
  // The worker and the CLI reach Temporal only through a frontend that takes TLS with a client certificate and an
  // API key, as a production cluster or Temporal Cloud does: every run of this file goes through it.
  const metrics = `127.0.0.1:${await findFreePort()}`;
  traces = await startOtlpReceiver();
  world = await stage({
    taskQueue: 'drift-test',
    simulators: 1,
    golden: 'hardened',
    front: true,
    metrics,
    traces: traces.endpoint,
  });
  prometheus = await startPrometheus(metrics);
  sim = world.sims[0]!;
  spec = writeSpec(world.keys, [sim], SPEC);
  for (const op of ['harden', 'deploy']) {
    const r = await phase(op, () => world.cli(spec, op));
    if (r.code !== 0) throw new Error(`${op} failed: ${r.stderr || r.stdout}`);
  }
}, 1_200_000);

afterAll(async () => {
  await prometheus?.stop();
  await world?.close();
  await traces?.close();
});

/** The newest exported `RunWorkflow:<type>` span of a run started after `sinceMs`, waiting up to 30 s for its batch. */
async function runSince(type: string, sinceMs: number): Promise<ReceivedSpan> {
  const runs = () =>
    traces.spans.filter((s) => s.name === `RunWorkflow:${type}` && s.startNs >= BigInt(sinceMs) * 1_000_000n);
  await until(async () => runs().length > 0, 30_000).catch(() => {
    throw new Error(`no RunWorkflow:${type} span exported; spans: ${[...new Set(traces.spans.map((s) => s.name))]}`);
  });
  return runs().at(-1)!;
}

/** The spans from `span` up to its trace's root, `span` first. */
function ancestry(span: ReceivedSpan, all: readonly ReceivedSpan[]): ReceivedSpan[] {
  const chain = [span];
  for (let s = span; s.parentSpanId;) {
    const parent = all.find((p) => p.traceId === s.traceId && p.spanId === s.parentSpanId);
    if (!parent) break;
    chain.push((s = parent));
  }
  return chain;
}

describe('steward drift', () => {
  it('plans a converged host as clean, in one batched pass over every managed resource; harden again changes nothing', async () => {
    const r = await world.cli(spec, 'drift');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.doc!.hosts[0]!.changes).toEqual([]);
    expect(r.doc!.hosts[0]!.findings.filter((f) => f.severity === 'critical' || f.severity === 'high')).toEqual([]);
    // The gateway's model routing was read with the audit, and is the spec's.
    expect(r.doc!.hosts[0]!.findings.filter((f) => f.id.startsWith('openclaw.routing'))).toEqual([]);

    // A repair run on the converged host (as the drift schedule runs by default) finds and leaves nothing: its
    // metrics say 0 drifted, newer than any earlier report, and no alert fires.
    const name = hostName(sim);
    const since = Math.floor(Date.now() / 1000);
    const repaired = await world.cli(spec, 'drift', '--repair', '--no-audit');
    expect(repaired.code, repaired.stdout.slice(-2000)).toBe(0);
    await until(
      async () =>
        Number(await prometheus.query(`max(steward_drift_checked_timestamp_seconds{host="${name}"})`)) >= since,
      30_000,
    );
    expect(await prometheus.query(`max(steward_drift_resources{host="${name}"})`)).toBe('0');
    expect((await prometheus.alerts()).filter((a) => a.labels.alertname === 'StewardHostDrifted')).toEqual([]);

    // The repair run's trace: the drift workflow, its observe activity, the SSH command that observed. Names and
    // labels only: no command text, no key.
    const root = await runSince('driftHost', since * 1000);
    const inTrace = traces.spans.filter((s) => s.traceId === root.traceId);
    const observe = inTrace.find(
      (s) =>
        s.name === 'ssh observe' &&
        s.attributes['steward.host'] === name &&
        ancestry(s, inTrace).some((a) => a.name === 'RunActivity:observeDrift'),
    );
    expect(observe, inTrace.map((s) => s.name).join(', ')).toBeDefined();
    expect(ancestry(observe!, inTrace).map((s) => s.name)).toEqual([
      'ssh observe',
      'RunActivity:observeDrift',
      'StartActivity:observeDrift',
      'RunWorkflow:driftHost',
    ]);
    expect(observe!.attributes).toMatchObject({ 'steward.exit_code': 0, 'steward.ssh.user': expect.any(String) });
    expect(root.resource['service.name']).toBe('steward-worker');
    const exported = traces.bodies.join('\n');
    expect(exported).not.toContain(world.front!.apiKey);
    expect(exported).not.toContain('PRIVATE KEY');
    // Only ids, names and steward's SSH attributes leave the worker: no WorkflowInfo (memo, search attributes), no
    // error message, no exception event.
    expect([...new Set(traces.spans.flatMap((s) => Object.keys(s.attributes)))].filter((k) => !KEPT.has(k))).toEqual(
      [],
    );
    expect(traces.spans.filter((s) => s.events > 0 || s.statusMessage !== '')).toEqual([]);

    // Harden again on the deployed host: nothing to change, and the stack stays healthy.
    const again = await world.cli(spec, 'harden');
    expect(again.code, again.stderr).toBe(0);
    expect(again.doc!.hosts[0]!.changes).toEqual([]);
    expect(await onHost("docker inspect -f '{{.State.Health.Status}}' openclaw_gateway_1")).toBe('healthy');
  }, 300_000);

  it("reuses OpenClaw's audit while what it depends on is unchanged; --audit, a config change or a new container run it again", async () => {
    const ids = (r: Awaited<ReturnType<typeof world.cli>>) => r.doc!.hosts[0]!.findings.map((f) => f.id);
    const cacheTime = async () => JSON.parse(await onHost('cat /var/lib/steward/openclaw-audit.json')).at as string;
    expect(await onHost('stat -c %U:%G:%a /var/lib/steward/openclaw-audit.json')).toBe('root:root:600');

    // The deploy's verification ran the audit last: drift reuses it and says how old it is.
    const seeded = await cacheTime();
    const reused = await world.cli(spec, 'drift');
    expect(reused.code).toBe(0);
    const note = reused.doc!.hosts[0]!.findings.find((f) => f.id === 'openclaw.audit.cached');
    expect(note?.message).toMatch(
      new RegExp(`^OpenClaw's security audit from \\d+ (s|min) ago \\(${seeded}\\) reused`),
    );
    expect(await cacheTime()).toBe(seeded);

    // --audit runs it now, and the run refreshes the cache.
    const forced = await world.cli(spec, 'drift', '--audit');
    expect(forced.code).toBe(0);
    expect(ids(forced)).not.toContain('openclaw.audit.cached');
    const refreshed = await cacheTime();
    expect(Date.parse(refreshed)).toBeGreaterThan(Date.parse(seeded));

    // A changed openclaw.json (one more byte) is a new input: the next plan audits again, and reports the file.
    const json = '/opt/openclaw/state/openclaw.json';
    await onHost(`cp -p ${json} /root/openclaw.json.kept && printf ' ' >> ${json}`);
    try {
      const changed = await world.cli(spec, 'drift');
      expect(changed.code).toBe(2);
      expect(ids(changed)).not.toContain('openclaw.audit.cached');
      expect(Date.parse(await cacheTime())).toBeGreaterThan(Date.parse(refreshed));
    } finally {
      await onHost(`cp -p /root/openclaw.json.kept ${json}`);
    }
    // The cache holds the changed file's audit now: the restored file is a new input again.
    const restored = await world.cli(spec, 'drift');
    expect(restored.code).toBe(0);
    expect(ids(restored)).not.toContain('openclaw.audit.cached');
    const again = await world.cli(spec, 'drift');
    expect(ids(again)).toContain('openclaw.audit.cached');
  }, 300_000);

  it('finds exactly the six changes made by hand, each corrective, and the provider a key given to the gateway made usable; repairs them', async () => {
    await onHost('chmod 0755 /opt/openclaw/state');
    await onHost(
      `sed -i 's/"controlUi": {/"controlUi": { "dangerouslyDisableDeviceAuth": true,/' /opt/openclaw/state/openclaw.json`,
    );
    // A provider key given to the gateway by hand, nothing else: OpenAI becomes usable with no config naming it.
    await onHost(
      [
        'printf \'version: "3.8"\\nservices:\\n  gateway:\\n    environment:\\n      OPENAI_API_KEY: sk-test-double-never-used\\n\' > /root/override.yaml',
        'docker-compose --no-ansi -p openclaw -f /opt/openclaw/compose.yaml -f /root/override.yaml up -d gateway 2>&1',
      ].join(' && '),
    );
    await onHost('nft add rule inet steward input tcp dport 8080 accept');
    await onHost(
      "sed -i 's/^PasswordAuthentication no/PasswordAuthentication yes/' /etc/ssh/sshd_config.d/00-steward.conf && systemctl reload ssh",
    );
    await onHost('systemctl stop steward-docker-prune.timer');
    await gatewaySettled();

    const plan = await world.cli(spec, 'drift');
    expect(plan.code, JSON.stringify(plan.doc?.hosts[0]?.findings)).toBe(2);
    const host = plan.doc!.hosts[0]!;
    const rows = host.changes;
    expect(
      rows
        .filter((c) => !c.resource.startsWith('routing:'))
        .map((c) => c.resource)
        .sort(),
      JSON.stringify(host.findings),
    ).toEqual(
      [
        'container:gateway',
        'dir:/opt/openclaw/state',
        'file:/opt/openclaw/state/openclaw.json',
        'firewall:nftables',
        'sshd:config',
        'timer:steward-docker-prune',
      ].sort(),
    );
    expect(rows.every((c) => c.drift === 'corrective')).toBe(true);
    expect(JSON.stringify(rows.find((c) => c.resource === 'container:gateway')?.before)).toContain('+OPENAI_API_KEY');
    expect(JSON.stringify(rows.find((c) => c.resource.startsWith('file:'))?.before)).toContain(
      'gateway.controlUi.dangerouslyDisableDeviceAuth',
    );
    // The key shows in the gateway's own model routing: each provider it made usable (OpenAI's, and any plugin's
    // that reads the same key) is a row of its own.
    const routing = rows.filter((c) => c.resource.startsWith('routing:'));
    expect(routing.map((c) => c.resource)).toContain('routing:provider:openai');
    for (const row of routing) {
      expect(row).toMatchObject({ action: 'delete', before: 'auto-detected from OPENAI_API_KEY', drift: 'corrective' });
    }
    expect(plan.stdout).not.toContain('sk-test-double-never-used');
    // The worker's metrics count the drifted resources, and the shipped alert rule fires for this host in the
    // Prometheus that scrapes the worker.
    const name = hostName(sim);
    const drifted = (state: Alert['state']) => async () =>
      (await prometheus.alerts()).some(
        (a) => a.labels.alertname === 'StewardHostDrifted' && a.labels.host === name && a.state === state,
      );
    await until(drifted('firing'), 30_000);
    expect(await prometheus.query(`steward_drift_resources{host="${name}"}`)).toBe(String(rows.length));
    expect(
      Number(
        await prometheus.query(
          `sum(steward_operations_total{host="${name}", operation="drift", mode="plan", outcome="completed", trigger="cli"})`,
        ),
      ),
    ).toBeGreaterThanOrEqual(1);
    // A recreated gateway and a changed config: the audit ran for this plan, not reused.
    expect(host.findings.map((f) => f.id)).not.toContain('openclaw.audit.cached');
    expect(host.findings.map((f) => f.id)).toEqual(
      expect.arrayContaining([
        'openclaw.control-ui.device-auth-disabled',
        'host.ssh.password-authentication',
        'host.firewall.port-not-in-spec',
      ]),
    );

    const repairStarted = Date.now();
    const repair = await world.cli(spec, 'drift', '--repair');
    expect(repair.stderr).toBe('');
    expect(repair.code, repair.stdout.slice(-3000)).toBe(0);
    expect(repair.doc!.hosts[0]!.changes.length).toBeGreaterThanOrEqual(6);
    expect(repair.stdout).not.toContain('sk-test-double-never-used');
    // The repair's provision child joins the drift run's trace, down to its own SSH commands.
    const repairRoot = await runSince('driftHost', repairStarted);
    const child = traces.spans.find((s) => s.traceId === repairRoot.traceId && s.name === 'RunWorkflow:provisionHost');
    expect(child).toBeDefined();
    const repairTrace = traces.spans.filter((s) => s.traceId === repairRoot.traceId);
    expect(
      repairTrace.some((s) => s.name.startsWith('ssh ') && ancestry(s, repairTrace).some((a) => a === child)),
    ).toBe(true);
    expect(traces.bodies.join('\n')).not.toContain('sk-test-double-never-used');

    await gatewaySettled();
    const after = await world.cli(spec, 'drift');
    expect(after.code, after.stdout.slice(-3000)).toBe(0);
    expect(after.doc!.hosts[0]!.changes).toEqual([]);
    expect(after.doc!.hosts[0]!.findings.filter((f) => f.id.startsWith('openclaw.routing'))).toEqual([]);
    expect(await onHost('stat -c %a /opt/openclaw/state')).toBe('700');
    expect(await onHost('systemctl is-active steward-docker-prune.timer')).toBe('active');
    expect(await onHost('sshd -T | grep -i "^passwordauthentication"')).toBe('passwordauthentication no');
    expect(await onHost('nft list chain inet steward input')).not.toContain('dport 8080');
    expect(await onHost("docker inspect -f '{{json .Config.Env}}' openclaw_gateway_1")).not.toContain('OPENAI_API_KEY');
    // Converged: nothing drifted as far as the metrics go, and the alert is over.
    await until(async () => !(await drifted('firing')()), 30_000);
    expect(await prometheus.query(`steward_drift_resources{host="${name}"}`)).toBe('0');
  }, 1_200_000);

  it('names foreign files that override managed sshd, sysctl, sudoers, fail2ban and nftables settings, and repairs the effective values', async () => {
    const files = {
      sshd: '/etc/ssh/sshd_config.d/00-aaa-local.conf',
      sshdOptions: '/etc/default/ssh',
      sysctl: '/etc/sysctl.d/99-zz-local.conf',
      sudoers: '/etc/sudoers.d/zz-local',
      nftables: '/etc/systemd/system/nftables.service.d/zz-local.conf',
      fail2ban: '/etc/fail2ban/jail.d/zz-local.local',
    };
    await onHost(
      [
        // Read before steward's drop-in: sshd keeps this value.
        `printf 'PasswordAuthentication yes\\n' > ${files.sshd} && systemctl reload ssh`,
        // On sshd's command line: sshd -T (a new process) never shows it; the running listener has it.
        `printf 'SSHD_OPTS="-o KbdInteractiveAuthentication=yes"\\n' > ${files.sshdOptions} && systemctl restart ssh`,
        // Read after steward's file: the last value wins at boot. Its other setting is the operator's own.
        `printf 'vm.swappiness = 10\\nkernel.kptr_restrict = 0\\n' > ${files.sysctl}`,
        `printf 'Defaults !use_pty\\n' > ${files.sudoers} && chmod 0440 ${files.sudoers}`,
        `printf '[Service]\\nExecStop=\\nExecStop=/usr/sbin/nft flush ruleset\\n' > ${files.nftables} && systemctl daemon-reload`,
        // Read after steward's jail file: fifty tries before a ban.
        `printf '[sshd]\\nmaxretry = 50\\n' > ${files.fail2ban} && fail2ban-client reload >/dev/null`,
      ].join(' && '),
    );
    const lastKptr = "systemd-analyze cat-config sysctl.d | grep -E '^kernel.kptr_restrict' | tail -n1";
    expect(await onHost(lastKptr)).toBe('kernel.kptr_restrict = 0');

    const plan = await world.cli(spec, 'drift', '--no-audit');
    expect(plan.code).toBe(2);
    const rows = plan.doc!.hosts[0]!.changes;
    const row = (f: string) => rows.find((c) => c.resource === `override:${f}`);
    expect(row(files.sshd)?.before).toEqual({ PasswordAuthentication: 'yes' });
    expect(row(files.sshdOptions)?.before).toEqual({ 'SSHD_OPTS KbdInteractiveAuthentication': 'yes' });
    expect(row(files.sysctl)?.before).toEqual({ 'kernel.kptr_restrict': '0' });
    expect(row(files.sudoers)?.before).toEqual({ 'Defaults use_pty': '!use_pty' });
    expect(row(files.nftables)?.before).toEqual({ ExecStop: '/usr/sbin/nft flush ruleset' });
    expect(row(files.fail2ban)?.before).toEqual({ '[sshd] maxretry': '50' });
    expect(rows.every((c) => c.drift === 'corrective')).toBe(true);

    const repair = await world.cli(spec, 'drift', '--repair', '--no-audit');
    expect(repair.stderr).toBe('');
    expect(repair.code).toBe(0);

    // The effective values are steward's, as each program itself reports them.
    expect(await onHost('sshd -T | grep -i "^passwordauthentication"')).toBe('passwordauthentication no');
    expect(await onHost('ps -C sshd -o args= | grep listener')).not.toContain('KbdInteractiveAuthentication');
    expect(await onHost(lastKptr)).toBe('kernel.kptr_restrict = 2');
    const sudo = await onHost('sudo -l -U steward');
    expect(sudo).toMatch(/\buse_pty\b/);
    expect(sudo).not.toContain('!use_pty');
    const stop = await onHost('systemctl show -p ExecStop --value nftables.service');
    expect(stop).toContain('delete table inet steward');
    expect(stop).not.toContain('flush ruleset');
    expect(await onHost('fail2ban-client get sshd maxretry | tail -n 1')).toBe('5');
    // Each foreign file is kept aside; one with a setting of its own is back in place with only the override off.
    const kept = (await onHost('ls /var/backups/steward/overrides')).split('\n');
    for (const f of Object.values(files)) {
      expect(kept.some((k) => k.startsWith(f.slice(1).replace(/\//g, '_')))).toBe(true);
    }
    expect(await onHost(`grep -c '^vm.swappiness = 10$' ${files.sysctl}`)).toBe('1');
    expect(
      await onHost(
        `ls ${files.sshd} ${files.sshdOptions} ${files.sudoers} ${files.nftables} ${files.fail2ban} 2>/dev/null || true`,
      ),
    ).toBe('');

    const after = await world.cli(spec, 'drift', '--no-audit');
    expect(after.code).toBe(0);
    expect(after.doc!.hosts[0]!.changes).toEqual([]);
  }, 600_000);

  it('a spec that was changed since the last apply plans its drift as intentional', async () => {
    const moved = writeSpec(
      world.keys,
      [sim],
      { ...SPEC, harden: { ...SPEC.harden, cleanup: { journalMaxSize: '200M' } } },
      'moved.yaml',
    );
    const r = await world.cli(moved, 'drift', '--no-audit');
    expect(r.code).toBe(2);
    const rows = r.doc!.hosts[0]!.changes;
    expect(rows.length).toBeGreaterThan(0);
    expect(rows.every((c) => c.drift === 'intentional')).toBe(true);
  }, 300_000);

  it('a symlink the container planted at openclaw.json is reported; deploy writes through nothing and no host file changes', async () => {
    // The gateway (uid 1000) owns its state volume: it can replace its config with a link to any host path.
    const target = '/etc/steward-symlink-target';
    await onHost(`printf 'host file\\n' > ${target}; chmod 0640 ${target}`);
    const before = await onHost(`stat -c '%u:%g %a' ${target}; sha256sum < ${target}`);
    await onHost(
      'cd /opt/openclaw/state && mv openclaw.json .openclaw.json.kept && ' +
        `setpriv --reuid=1000 --regid=1000 --clear-groups ln -s ${target} openclaw.json`,
    );
    try {
      const deployed = await world.cli(spec, 'deploy');
      expect(deployed.code).toBe(1);
      expect(deployed.doc!.hosts[0]!.error).toContain(
        '/opt/openclaw/state/openclaw.json exists but is a symbolic link, not a regular file',
      );
      expect(await onHost(`stat -c '%u:%g %a' ${target}; sha256sum < ${target}`)).toBe(before);
      expect(await onHost('stat -c %F /opt/openclaw/state/openclaw.json')).toBe('symbolic link');
    } finally {
      await onHost('cd /opt/openclaw/state && rm -f openclaw.json && mv .openclaw.json.kept openclaw.json');
    }
  }, 300_000);

  it('a pending reboot waits for the reboot window; inside it harden reboots, reconnects and verifies the stack', async () => {
    // What Debian's kernel and library packages leave after an upgrade.
    await onHost('touch /run/reboot-required /run/steward-test-boot');
    const hhmm = (offsetH: number) => new Date(Date.now() + offsetH * 3_600_000).toISOString().slice(11, 16);
    const windowed = (rebootWindow: string, name: string) =>
      writeSpec(world.keys, [sim], { ...SPEC, harden: { ...SPEC.harden, rebootWindow } }, name);

    const closed = `${hhmm(2)}-${hhmm(3)}`;
    const waiting = await world.cli(windowed(closed, 'window-closed.yaml'), 'harden');
    expect(waiting.code, waiting.stderr).toBe(0);
    expect(waiting.doc!.hosts[0]!.changes).toEqual([]);
    expect(waiting.doc!.hosts[0]!.findings).toContainEqual(
      expect.objectContaining({ id: 'host.reboot-window', message: expect.stringContaining(`(${closed} UTC)`) }),
    );
    expect(await onHost('ls /run/reboot-required /run/steward-test-boot | wc -l')).toBe('2');

    const gatewayStarted = await onHost("docker inspect -f '{{.State.StartedAt}}' openclaw_gateway_1");
    const r = await world.cli(windowed(`${hhmm(-1)}-${hhmm(1)}`, 'window-open.yaml'), 'harden');
    expect(r.code, r.stderr).toBe(0);
    const host = r.doc!.hosts[0]!;
    expect(host.changes).toEqual([
      expect.objectContaining({
        resource: 'host:reboot',
        before: expect.stringContaining('reboot pending: /run/reboot-required'),
      }),
    ]);
    const stack = (host.controls ?? []).filter((c) => c.control.startsWith('stack.'));
    expect(stack.map((c) => c.control)).toEqual(
      expect.arrayContaining(['stack.gateway.healthy', 'stack.proxy.healthy']),
    );
    expect(stack.filter((c) => c.status === 'fail')).toEqual([]);
    // The host booted again (/run starts empty) and the stack came back by itself.
    expect(await onHost('ls /run/reboot-required /run/steward-test-boot 2>/dev/null | wc -l')).toBe('0');
    expect(await onHost("docker inspect -f '{{.State.StartedAt}}' openclaw_gateway_1")).not.toBe(gatewayStarted);

    // Nothing left pending (a retry or the next run reboots nothing), and the host is as converged as before.
    expect((await world.cli(spec, 'drift', '--no-audit')).code).toBe(0);
  }, 600_000);

  it('runs provision and a rotation through the TLS frontend too; without a client certificate, with a wrong API key or CA, the CLI and the worker are refused, saying why', async () => {
    const { front, pki, apiKey } = world.front!;
    // Every run of this file went through the frontend: the worker's polls (only a worker polls) and the CLI's calls.
    expect(front.methods.get('PollActivityTaskQueue')).toBeGreaterThan(10);
    expect(front.methods.get('StartWorkflowExecution')).toBeGreaterThan(5);
    const provisioned = await world.cli(spec, 'provision');
    expect(provisioned.code, provisioned.stdout.slice(-1500)).toBe(0);
    expect(provisioned.doc!.hosts[0]!.changes).toEqual([]);
    const rotated = await world.cli(spec, 'rotate', 'gateway-token');
    expect(rotated.code, rotated.stdout.slice(-1500)).toBe(0);
    const proof = rotated.doc!.hosts[0]!.controls ?? [];
    expect(proof.find((c) => c.control === 'secret.gateway-token.new-accepted')?.status).toBe('pass');

    // Temporal's environment variables alone (no temporal.toml), each time with one thing missing or wrong.
    const vars = {
      TEMPORAL_ADDRESS: front.address,
      TEMPORAL_NAMESPACE: world.env.namespace,
      TEMPORAL_API_KEY: apiKey,
      TEMPORAL_TLS_SERVER_NAME: SERVER_NAME,
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.caCert,
      TEMPORAL_TLS_CLIENT_CERT_PATH: pki.clientCert,
      TEMPORAL_TLS_CLIENT_KEY_PATH: pki.clientKey,
    };
    const noCert = { ...vars, TEMPORAL_TLS_CLIENT_CERT_PATH: undefined, TEMPORAL_TLS_CLIENT_KEY_PATH: undefined };
    const status = (env: NodeJS.ProcessEnv) =>
      steward(['--task-queue', 'drift-test', 'status', '--limit', '1'], {
        ...world.front!.cliEnv,
        TEMPORAL_PROFILE: undefined,
        TEMPORAL_CONFIG_FILE: undefined,
        XDG_CONFIG_HOME: world.front!.configFile.replace(/\/temporal\.toml$/, ''),
        ...env,
      });
    const ok = await status(vars);
    expect(ok.code, ok.stderr).toBe(0);
    const handshakes = front.counts.refusedHandshake;
    const wrongKey = `not-the-key-${apiKey.slice(-16)}`;
    const refusals: [NodeJS.ProcessEnv, number, RegExp][] = [
      [noCert, 1, /the server asks for a client certificate: set TEMPORAL_TLS_CLIENT_CERT_PATH/],
      [{ ...vars, TEMPORAL_API_KEY: wrongKey }, 1, /the server refused the API key/],
      [
        { ...vars, TEMPORAL_TLS_SERVER_CA_CERT_PATH: pki.otherCaCert },
        1,
        /the server's certificate is not signed by the CA of TEMPORAL_TLS_SERVER_CA_CERT_PATH/,
      ],
      [{ TEMPORAL_ADDRESS: front.address }, 1, /the server speaks TLS: set TEMPORAL_TLS=true/],
      [
        {
          ...vars,
          TEMPORAL_TLS_CLIENT_CERT_PATH: pki.expiredClientCert,
          TEMPORAL_TLS_CLIENT_KEY_PATH: pki.expiredClientKey,
        },
        64,
        /the client certificate expired on Jan +2 00:00:00 2020 GMT/,
      ],
      [
        { ...vars, TEMPORAL_TLS_CLIENT_CERT_PATH: undefined },
        64,
        /TEMPORAL_TLS_CLIENT_KEY_PATH .* is set without its certificate/,
      ],
    ];
    // At once: a refused handshake costs the CLI its connect deadline (5 s).
    const results = await Promise.all(refusals.map(([env]) => status(env)));
    refusals.forEach(([, code, message], i) => {
      const r = results[i]!;
      expect(r.stderr).toMatch(message);
      expect(r.code, r.stderr).toBe(code);
      for (const key of [apiKey, wrongKey]) expect(r.stderr + r.stdout).not.toContain(key);
    });
    expect(front.counts.refusedHandshake).toBeGreaterThan(handshakes);

    // The worker (the SDK's Rust core) without a client certificate: refused at the handshake, said the same way.
    const refused = startWorker(
      world.env,
      'drift-test-refused',
      world.env.keys,
      resolveTemporal({}, { ...noCert, XDG_CONFIG_HOME: '/nonexistent' }),
    );
    await expect(refused).rejects.toThrow(/the server asks for a client certificate/);
  }, 300_000);
});
