/**
 * The nftables firewall on a simulator steward provisioned (Docker from Debian, iptables-nft), proven from outside:
 * from this machine and from a second simulator (the peer) against the simulator's container address. Listeners
 * are busybox httpd on the host and in a container built from busybox-static (no registry). The harden workflow
 * wiring is tested elsewhere; here the resources are converged and activated directly over a HostSession.
 */
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import Docker from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FIREWALL_ACTIVATE,
  firewallControls,
  firewallResources,
  renderRuleset,
} from '../../activities/harden/firewall';
import { openSession, type HostSession, type HostTarget } from '../../activities/host/session';
import { converge } from '../../activities/resources/resource';
import { restartSimulator, simulatorExec, type Simulator } from '../../client/dev/simulator';
import { specSchema, type Spec, type SpecInput } from '../../model/schema';
import { hostName, stage, type KeyPair, type Stage } from '../support/fixtures';

/** A connection attempt that gets no answer within this is filtered (the drop policy never answers). */
const CONNECT_TIMEOUT_MS = 2_000;
const READY_TIMEOUT_MS = 90_000;

const docker = new Docker({ socketPath: '/var/run/docker.sock' });

let world: Stage;
let keys: KeyPair;
let sim: Simulator;
let peer: Simulator;
let simIp: string;
let peerIp: string;
let session: HostSession | undefined;

/** The spec with a firewall section; SSH and everything else as provision left it. */
function specWith(firewall: NonNullable<SpecInput['firewall']>): Spec {
  return specSchema.parse({
    version: 1,
    hosts: [{ name: hostName(sim), address: sim.address, port: sim.port, user: sim.user }],
    firewall,
  });
}

/** 443 and 8080 from anywhere would be typical; 8443 only from the peer; 9999 listens but is not in the spec. */
const BASE = (): NonNullable<SpecInput['firewall']> => ({
  ingress: [{ port: 443 }, { port: 8443, sources: [peerIp] }],
});
const WITH_8080 = (): NonNullable<SpecInput['firewall']> => ({
  ingress: [...(BASE().ingress ?? []), { port: 8080, description: 'published by a container' }],
});

function target(): HostTarget {
  return {
    name: hostName(sim),
    address: sim.address,
    port: sim.port,
    loginUser: 'steward',
    opsUser: 'steward',
    identityFile: keys.privateKeyPath,
    hostKey: sim.hostKey,
    trustOnFirstUse: false,
  };
}

/** A NEW SSH connection as the ops user, as the commit-confirm wrapper makes after applying. */
async function reconnect(): Promise<HostSession> {
  await session?.close();
  session = await openSession(target(), 'steward');
  return session;
}

/** Converges the firewall resources and activates the file, as harden does inside its commit-confirm window. */
async function applyFirewall(spec: Spec) {
  const s = session ?? (await reconnect());
  const changes = await converge(s, firewallResources(spec, hostName(sim)), 'apply');
  await s.check(FIREWALL_ACTIVATE, { label: 'activate firewall' });
  return changes;
}

async function address(s: Simulator): Promise<string> {
  const { Networks } = (await docker.getContainer(s.container).inspect()).NetworkSettings;
  const ip = Object.values(Networks).find((n) => n.IPAddress)?.IPAddress;
  if (!ip) throw new Error(`simulator ${s.name} has no IP address`);
  return ip;
}

async function onHost(who: Simulator, script: string): Promise<string> {
  const r = await simulatorExec(who.container, ['sh', '-c', script]);
  if (r.exitCode !== 0) throw new Error(`${script} failed (exit ${r.exitCode}): ${r.stderr}`);
  return r.stdout.trim();
}

/** What a TCP connect from this machine finds: an answer, a reset, or nothing (filtered). */
function reach(port: number, address = simIp): Promise<'open' | 'refused' | 'filtered'> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: address, port });
    const done = (result: 'open' | 'refused' | 'filtered') => {
      socket.destroy();
      resolve(result);
    };
    socket.setTimeout(CONNECT_TIMEOUT_MS, () => done('filtered'));
    socket.once('connect', () => done('open'));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code === 'ECONNREFUSED' ? 'refused' : 'filtered'));
  });
}

async function reachAll(ports: number[]): Promise<Record<number, string>> {
  return Object.fromEntries(await Promise.all(ports.map(async (p) => [p, await reach(p)] as const)));
}

/** Whether a TCP connect from the peer simulator to the simulator succeeds (bash's /dev/tcp, 2 s). */
async function reachFromPeer(port: number): Promise<'open' | 'closed'> {
  const r = await simulatorExec(peer.container, [
    'bash',
    '-c',
    'timeout 2 bash -c "exec 3<>/dev/tcp/$0/$1" "$0" "$1" 2>/dev/null && echo open || echo closed',
    simIp,
    String(port),
  ]);
  return r.stdout.trim() === 'open' ? 'open' : 'closed';
}

/** The body of the busybox httpd page the published container serves, or why there is none. */
async function httpGet(port: number): Promise<string> {
  try {
    const res = await fetch(`http://${simIp}:${port}/`, { signal: AbortSignal.timeout(CONNECT_TIMEOUT_MS) });
    return (await res.text()).trim();
  } catch (err) {
    return `no answer (${(err as Error).name})`;
  }
}

async function waitFor<T>(what: string, probe: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let last = await probe();
  while (!ok(last)) {
    if (Date.now() > deadline) throw new Error(`${what}: still ${JSON.stringify(last)} after ${READY_TIMEOUT_MS} ms`);
    await sleep(1_000);
    last = await probe();
  }
  return last;
}

const tables = () => onHost(sim, 'nft list tables').then((t) => t.split('\n').sort());
const failing = async (spec: Spec) => (await firewallControls(session!, spec)).filter((c) => c.status !== 'pass');

/** busybox httpd listeners on the host (systemd units, so they come back after a reboot) and in containers. */
const PREPARE = `set -e
export DEBIAN_FRONTEND=noninteractive
apt-get install -y -q --no-install-recommends busybox-static >/dev/null
mkdir -p /srv/fwtest && echo hello > /srv/fwtest/index.html
cat > /etc/systemd/system/fwtest-listen@.service <<'EOF'
[Unit]
Description=firewall test listener on port %i
[Service]
ExecStart=/bin/busybox httpd -f -p %i -h /srv/fwtest
[Install]
WantedBy=multi-user.target
EOF
systemctl daemon-reload
systemctl enable --now fwtest-listen@443 fwtest-listen@8443 fwtest-listen@9999
root=$(mktemp -d)
mkdir -p "$root/bin" "$root/www"
cp /bin/busybox "$root/bin/busybox"
for applet in sh wget nc; do ln -s busybox "$root/bin/$applet"; done
echo hello > "$root/www/index.html"
tar -C "$root" -c . | docker import -c 'CMD ["/bin/busybox", "httpd", "-f", "-p", "80", "-h", "/www"]' - fwtest/busybox:1 >/dev/null
rm -rf "$root"
docker run -d --name fwtest-web --restart always -p 8080:80 fwtest/busybox:1 >/dev/null
docker network create fwtest-net >/dev/null
docker run -d --name fwtest-a --restart always --network fwtest-net fwtest/busybox:1 >/dev/null
`;

beforeAll(async () => {
  world = await stage({ taskQueue: 'firewall-test', simulators: 2, golden: 'provisioned' });
  keys = world.keys;
  [sim, peer] = world.sims as [Simulator, Simulator];
  [simIp, peerIp] = await Promise.all([address(sim), address(peer)]);
  expect(simIp).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
  await onHost(sim, PREPARE);
  await onHost(sim, 'cp -a /etc/nftables.conf /root/nftables.conf.debian');
  await reconnect();
});

afterAll(async () => {
  await session?.close();
  await world?.close();
});

describe('firewall on a provisioned host with Docker', () => {
  it('renders rulesets nft accepts, for every shape of spec', async () => {
    const variants: NonNullable<SpecInput['firewall']>[] = [
      {},
      BASE(),
      { ssh: false, ingress: [] },
      { enabled: false },
      {
        sshSources: ['203.0.113.0/24', '2001:db8::/32', '198.51.100.7'],
        sshRateLimit: 1000,
        ingress: [
          { port: 53, protocol: 'udp', sources: ['::/0'] },
          { port: 8080, sources: ['10.0.0.1/8', '10.1.0.0/16', 'fe80::1/64'] },
          { port: 8080, sources: ['192.168.0.0/16'], description: 'two\nlines' },
        ],
      },
    ];
    for (const [i, firewall] of variants.entries()) {
      const file = `/tmp/fwtest-${i}.nft`;
      const r = await simulatorExec(
        sim.container,
        ['sh', '-c', `cat > ${file} && nft -c -f ${file}`],
        renderRuleset(specWith(firewall)),
      );
      expect({ variant: i, stderr: r.stderr, exitCode: r.exitCode }).toEqual({ variant: i, stderr: '', exitCode: 0 });
    }
  });

  it('before the firewall, every listener and the published port answer from outside', async () => {
    expect(await reachAll([22, 443, 8443, 9999, 8080])).toEqual({
      22: 'open',
      443: 'open',
      8443: 'open',
      9999: 'open',
      8080: 'open',
    });
    expect(await httpGet(8080)).toBe('hello');
    expect(await tables()).toEqual(['table ip filter', 'table ip nat']);
  });

  it("applies the firewall: only SSH and the spec's ports answer, Docker's tables stay", async () => {
    const changes = await applyFirewall(specWith(BASE()));
    expect(changes.map((c) => c.resource)).toEqual([
      'dir:/etc/systemd/system/nftables.service.d',
      'file:/etc/systemd/system/nftables.service.d/steward.conf',
      'file:/etc/nftables.conf',
      'service:nftables',
      'nftables:inet steward',
    ]);
    const fresh = await reconnect();
    expect((await fresh.check('id -un', { label: 'id', sudo: false })).stdout.trim()).toBe('steward');

    expect(await reachAll([22, 443, 8443, 9999, 8080])).toEqual({
      22: 'open',
      443: 'open',
      8443: 'filtered',
      9999: 'filtered',
      8080: 'filtered',
    });
    expect(await httpGet(8080)).toMatch(/^no answer/);
    expect(await reachFromPeer(8443)).toBe('open');
    expect(await reachFromPeer(9999)).toBe('closed');
    expect(await reachFromPeer(8080)).toBe('closed');
    expect(await tables()).toEqual(['table inet steward', 'table ip filter', 'table ip nat']);
    expect(await onHost(sim, 'stat -c "%U:%G %a" /etc/nftables.conf')).toBe('root:root 600');
    expect(await failing(specWith(BASE()))).toEqual([]);
  });

  it('keeps containers talking to each other, to the host and to the outside', async () => {
    const inContainer = (args: string) => onHost(sim, `docker run --rm --network fwtest-net fwtest/busybox:1 ${args}`);
    expect(await inContainer('wget -qO- http://fwtest-a/')).toBe('hello');
    expect(await inContainer(`wget -qO- http://${simIp}:443/`)).toBe('hello');
    // Forwarded and masqueraded out of the simulator's eth0, to the peer's sshd.
    expect(await inContainer(`sh -c 'echo | nc -w 5 ${peerIp} 22'`)).toMatch(/^SSH-2\.0-/);
    expect(await onHost(sim, `docker run --rm fwtest/busybox:1 sh -c 'echo | nc -w 5 ${peerIp} 22'`)).toMatch(
      /^SSH-2\.0-/,
    );
  });

  it('lets a published port through once the spec allows it, and reports every control passing', async () => {
    const spec = specWith(WITH_8080());
    const changes = await applyFirewall(spec);
    expect(changes.map((c) => c.resource)).toEqual(['file:/etc/nftables.conf', 'nftables:inet steward']);
    expect(await httpGet(8080)).toBe('hello');
    expect(await reach(9999)).toBe('filtered');
    const controls = await firewallControls(session!, spec);
    expect(controls.filter((c) => c.status !== 'pass')).toEqual([]);
    expect(controls.map((c) => c.control)).toEqual([
      'firewall.input-policy',
      'firewall.ssh',
      'firewall.ingress.443/tcp',
      'firewall.ingress.8443/tcp',
      'firewall.ingress.8080/tcp',
      'firewall.forward-published-ports',
      'firewall.rules',
      'firewall.persisted',
    ]);
    expect(await converge(session!, firewallResources(spec, hostName(sim)), 'apply')).toEqual([]);
  });

  it('rate-limits new SSH connections per source, not for everyone', async () => {
    // 20 connections as fast as the peer can open them: the first 15 (the burst) pass, then one per 4 s at most.
    const out = await onHost(
      peer,
      `for i in $(seq 1 20); do b=$(timeout 1 bash -c 'exec 3<>/dev/tcp/${simIp}/22 && head -c 4 <&3' 2>/dev/null); [ "$b" = SSH- ] && echo ok || echo dropped; done`,
    );
    const ok = out.split('\n').filter((l) => l === 'ok').length;
    expect(ok).toBeGreaterThanOrEqual(15);
    expect(ok).toBeLessThanOrEqual(17);
    // This machine is another source: steward still gets in.
    await reconnect();
    expect(await reach(22)).toBe('open');
  });

  it('repairs a live ruleset changed behind its back', async () => {
    const spec = specWith(WITH_8080());
    await onHost(
      sim,
      "nft insert rule inet steward input tcp dport 9999 accept && nft 'add rule inet steward input tcp dport 7777 accept'",
    );
    expect(await reach(9999)).toBe('open');
    expect((await failing(spec)).map((c) => c.control)).toEqual(['firewall.rules']);
    const changes = await converge(session!, firewallResources(spec, hostName(sim)), 'apply');
    expect(changes).toEqual([
      expect.objectContaining({ resource: 'nftables:inet steward', before: 'differs: firewall.rules' }),
    ]);
    expect(await reach(9999)).toBe('filtered');
    expect(await failing(spec)).toEqual([]);
  });

  it('survives a reboot: loaded before Docker, published ports still filtered, nothing to change', async () => {
    const spec = specWith(WITH_8080());
    await session?.close();
    session = undefined;
    await restartSimulator(sim.container);
    simIp = await address(sim); // the engine may hand out another address on restart
    await reconnect();
    await waitFor(
      'published container after reboot',
      () => httpGet(8080),
      (body) => body === 'hello',
    );
    await waitFor(
      'listener on 443 after reboot',
      () => reach(443),
      (r) => r === 'open',
    );
    expect(await reachAll([22, 443, 8443, 9999])).toEqual({
      22: 'open',
      443: 'open',
      8443: 'filtered',
      9999: 'filtered',
    });
    expect(await reachFromPeer(8443)).toBe('open');
    expect(await tables()).toEqual(['table inet steward', 'table ip filter', 'table ip nat']);
    expect(await failing(spec)).toEqual([]);
    expect(await converge(session!, firewallResources(spec, hostName(sim)), 'apply')).toEqual([]);
  });

  it("restarting nftables.service reloads steward's table without flushing Docker's", async () => {
    await onHost(sim, 'systemctl restart nftables');
    expect(await tables()).toEqual(['table inet steward', 'table ip filter', 'table ip nat']);
    expect(await httpGet(8080)).toBe('hello');
    expect(await reach(9999)).toBe('filtered');
  });

  it("activating a restored pre-steward file (Debian's, which flushes everything) only removes steward's table", async () => {
    await onHost(
      sim,
      'cp -a /etc/nftables.conf /root/nftables.conf.steward && cp /root/nftables.conf.debian /etc/nftables.conf',
    );
    expect(await onHost(sim, 'grep -c "^flush ruleset" /etc/nftables.conf')).toBe('1');
    await session!.check(FIREWALL_ACTIVATE, { label: 'activate restored firewall' });
    expect(await tables()).toEqual(['table ip filter', 'table ip nat']);
    expect(await reach(9999)).toBe('open');
    expect(await httpGet(8080)).toBe('hello');
    await onHost(sim, 'mv /root/nftables.conf.steward /etc/nftables.conf');
    await session!.check(FIREWALL_ACTIVATE, { label: 'activate firewall' });
    expect(await reach(9999)).toBe('filtered');
  });

  it("disabling the firewall removes only steward's table, cleanly", async () => {
    const spec = specWith({ enabled: false });
    const changes = await applyFirewall(spec);
    expect(changes.map((c) => c.resource)).toEqual(['file:/etc/nftables.conf', 'nftables:inet steward']);
    expect(await tables()).toEqual(['table ip filter', 'table ip nat']);
    expect(await reachAll([22, 9999, 8080])).toEqual({ 22: 'open', 9999: 'open', 8080: 'open' });
    expect(await firewallControls(session!, spec)).toEqual([
      expect.objectContaining({ control: 'firewall.disabled', status: 'pass' }),
      expect.objectContaining({ control: 'firewall.persisted', status: 'pass' }),
    ]);
    expect(await converge(session!, firewallResources(spec, hostName(sim)), 'apply')).toEqual([]);
  });
});
