/**
 * What the agent's clients see while steward works on its host. One simulator, provisioned, hardened and deployed
 * through the CLI; a prober on the host, outside the stack's network, goes through the TLS proxy the way a client
 * does: HTTPS `GET /healthz` 10 times a second, and a WebSocket to the gateway once a second (open, then the
 * gateway's first frame, its connect challenge). Then each operation runs through the CLI while the prober runs;
 * printed per operation: requests, failed requests, and the longest gap without a successful answer.
 * Targets: 0 failed requests for the memory check, drift, drift repair of a config drift and a token rotation, and a
 * settings deploy; the longest gap of a new image's deploy ≤ 10 s.
 *   npx tsx bench/availability.ts
 */
import { execFileSync } from 'node:child_process';
import { simulatorExec, type Simulator } from '../client/dev/simulator';
import { stackLayout } from '../model/render/stack';
import { specSchema, type SpecInput } from '../model/schema';
import { writeSpec, type KeyPair } from '../test/support/fixtures';
import { cliRun, withSimulators, withTemporal } from './support';

const IMAGE = 'steward/openclaw:2026.9.6';
const NEXT = 'steward/openclaw:2026.9.6-availability';
const PROBER = 'steward-availability-prober';
const DOMAIN = 'bench.steward.test';
/** Longest gap a new image's deploy may cause (issue target). */
const IMAGE_GAP_TARGET_S = 10;

/** The prober: node from the gateway image, in a throwaway container on the host's default bridge network. */
const PROBER_JS = String.raw`
const [url, wsUrl] = process.argv.slice(1);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
async function http() {
  const t = Date.now();
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(2000) });
    out({ k: 'http', t, ok: r.status === 200, ms: Date.now() - t, s: r.status });
  } catch (e) { out({ k: 'http', t, ok: false, ms: Date.now() - t, e: String(e.cause?.code ?? e.name) }); }
}
function ws() {
  const t = Date.now();
  let done = false;
  const finish = (ok, e) => { if (done) return; done = true; out({ k: 'ws', t, ok, ms: Date.now() - t, ...(e ? { e } : {}) }); try { s.close(); } catch {} };
  const s = new WebSocket(wsUrl);
  s.onmessage = () => finish(true);
  s.onerror = () => finish(false, 'error');
  s.onclose = (ev) => finish(false, 'closed ' + ev.code);
  setTimeout(() => finish(false, 'timeout'), 3000);
}
setInterval(http, 100);
setInterval(ws, 1000);
`;

interface Sample {
  readonly k: 'http' | 'ws';
  readonly t: number;
  readonly ok: boolean;
}

function bench(extra: Partial<SpecInput> = {}): Partial<SpecInput> {
  return {
    harden: { confirmSeconds: 30 },
    proxy: { domain: DOMAIN },
    ...extra,
    stack: { image: IMAGE, compressImages: false, ...extra.stack },
  };
}

async function onHost(sim: Simulator, script: string): Promise<string> {
  const r = await simulatorExec(sim.container, ['sh', '-c', script]);
  if (r.exitCode !== 0) throw new Error(`on host: ${script}: ${r.stderr}`);
  return r.stdout.trim();
}

async function startProber(sim: Simulator): Promise<void> {
  const spec = specSchema.parse(
    JSON.parse(JSON.stringify({ ...bench(), version: 1, hosts: [{ name: 'b', address: '127.0.0.1' }] })),
  );
  const layout = stackLayout(spec);
  const address = await onHost(
    sim,
    `dev=$(ip -4 route show default | awk '{for(i=1;i<NF;i++) if ($i=="dev") {print $(i+1); exit}}'); ip -4 -o addr show dev "$dev" | awk '{print $4; exit}' | cut -d/ -f1`,
  );
  await onHost(
    sim,
    `install -m 0644 ${layout.proxyRootCa} /run/steward-availability-ca.crt; docker rm -f ${PROBER} >/dev/null 2>&1 || true`,
  );
  const script = Buffer.from(PROBER_JS).toString('base64');
  await onHost(
    sim,
    [
      `docker run -d --name ${PROBER} --network bridge --read-only --user 1000:1000 --cap-drop ALL`,
      `--add-host ${DOMAIN}:${address} -v /run/steward-availability-ca.crt:/ca.crt:ro -e NODE_EXTRA_CA_CERTS=/ca.crt`,
      `--entrypoint node ${IMAGE} -e "eval(Buffer.from('${script}','base64').toString())"`,
      `https://${DOMAIN}/healthz wss://${DOMAIN}${spec.proxy.websocketPath}`,
    ].join(' '),
  );
}

async function samples(sim: Simulator): Promise<Sample[]> {
  const out = await onHost(sim, `docker logs ${PROBER} 2>/dev/null`);
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Sample);
}

/** Failed requests and the longest stretch without a successful answer, per kind, in [from, to]. */
function window(all: readonly Sample[], from: number, to: number) {
  const inside = all.filter((s) => s.t >= from && s.t <= to);
  const gap = (k: Sample['k']) => {
    let last = from;
    let longest = 0;
    for (const s of inside.filter((x) => x.k === k && x.ok)) {
      longest = Math.max(longest, s.t - last);
      last = s.t;
    }
    return Math.max(longest, to - last) / 1000;
  };
  const of = (k: Sample['k']) => inside.filter((s) => s.k === k);
  return {
    http: { n: of('http').length, failed: of('http').filter((s) => !s.ok).length, gap: gap('http') },
    ws: { n: of('ws').length, failed: of('ws').filter((s) => !s.ok).length, gap: gap('ws') },
  };
}

execFileSync('docker', ['build', '-q', '-t', NEXT, '-'], {
  input: `FROM ${IMAGE}\nLABEL steward.bench=availability\n`,
  stdio: ['pipe', 'ignore', 'inherit'],
});

await withTemporal((address) =>
  withSimulators(1, async ([sim], keys: KeyPair) => {
    const spec = (extra: Partial<SpecInput> = {}) => writeSpec(keys, [sim!], bench(extra), 'availability.yaml');
    const file = spec();
    const base = (f: string) => ['--spec', f, '--address', address];
    for (const op of ['provision', 'harden', 'deploy']) await cliRun([...base(file), op]);
    await startProber(sim!);
    await new Promise((r) => setTimeout(r, 5_000));

    const operations: [string, () => Promise<unknown>][] = [
      ['memory check (as scheduled)', () => cliRun([...base(file), 'memory', 'check'])],
      ['drift (plan)', () => cliRun([...base(file), 'drift', '--no-audit'])],
      [
        'drift --repair of a config drift',
        async () => {
          await onHost(
            sim!,
            `sed -i 's/"checkOnStart": false/"checkOnStart": true/' /opt/openclaw/state/openclaw.json`,
          );
          return cliRun([...base(file), 'drift', '--repair', '--no-audit']);
        },
      ],
      ['rotate gateway-token', () => cliRun([...base(file), 'rotate', 'gateway-token'])],
      [
        'deploy of a settings change',
        () => cliRun([...base(spec({ stack: { settings: { logging: { level: 'warn' } } } })), 'deploy']),
      ],
      ['deploy of a new image', () => cliRun([...base(spec({ stack: { image: NEXT } })), 'deploy'])],
    ];
    const rows: string[] = [];
    for (const [name, run] of operations) {
      const from = Date.now();
      let outcome = 'ok';
      await run().catch((e: Error) => (outcome = `failed: ${e.message.split('\n')[0]}`));
      await new Promise((r) => setTimeout(r, 3_000));
      const w = window(await samples(sim!), from, Date.now());
      const failed = w.http.failed + w.ws.failed;
      const gap = Math.max(w.http.gap, w.ws.gap);
      const target =
        name === 'deploy of a new image'
          ? `gap target ≤ ${IMAGE_GAP_TARGET_S} s ${gap <= IMAGE_GAP_TARGET_S ? 'MET' : 'MISSED'}`
          : `failed target 0 ${failed === 0 ? 'MET' : 'MISSED'}`;
      rows.push(
        `${name.padEnd(34)} ${((Date.now() - from) / 1000).toFixed(0).padStart(4)} s  https ${w.http.failed}/${w.http.n} failed, gap ${w.http.gap.toFixed(1)} s  ws ${w.ws.failed}/${w.ws.n} failed, gap ${w.ws.gap.toFixed(1)} s  ${target}${outcome === 'ok' ? '' : `  (${outcome})`}`,
      );
      console.log(rows[rows.length - 1]);
    }
    await onHost(sim!, `docker rm -f ${PROBER} >/dev/null 2>&1 || true`);
  }),
);
execFileSync('docker', ['rmi', NEXT], { stdio: 'ignore' });
