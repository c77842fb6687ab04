/**
 * How long the agent is down when its gateway restarts: the steward/openclaw image started on the local Docker engine
 * with the configuration steward renders (the mem0 plugin loaded, its stores on volumes), as the stack runs it
 * (read-only root, tmpfs /tmp, uid 1000), without a network. Each run is a fresh container on the same state and
 * memory directories, as after `docker restart`; printed per run: seconds until `/healthz` answers inside the
 * container, and the CPU seconds the container used until then. A second image (an earlier build, say) is measured
 * the same way and compared.
 *   npx tsx bench/gateway-start.ts [runs] [image] [other image]
 */
import { chownSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { openclawConfig } from '../model/render/stack';
import { specSchema } from '../model/schema';
import { median } from './support';

const RUNS = Number(process.argv[2] ?? 5);
const IMAGES = [process.argv[3] ?? 'steward/openclaw:2026.9.6', ...process.argv.slice(4, 5)];
/** The target for a restart to the first healthy answer. */
const TARGET_S = 10;

const docker = new Docker({ socketPath: '/var/run/docker.sock' });

interface Start {
  readonly seconds: number;
  readonly cpuSeconds: number;
}

/** A state, memory and workspace directory owned by uid 1000, the rendered openclaw.json and a token file. */
function stateDirs(): { root: string; binds: string[] } {
  const root = mkdtempSync(join(tmpdir(), 'steward-bench-gateway-'));
  const spec = specSchema.parse({ version: 1, hosts: [{ name: 'bench', address: '127.0.0.1' }] });
  const dirs = { state: '/home/node/.openclaw', memory: '/home/node/memory', workspace: '/home/node/workspace' };
  const binds: string[] = [];
  for (const [name, target] of Object.entries(dirs)) {
    mkdirSync(join(root, name), { mode: 0o700 });
    chownSync(join(root, name), 1000, 1000);
    binds.push(`${join(root, name)}:${target}`);
  }
  writeFileSync(join(root, 'state', 'openclaw.json'), `${JSON.stringify(openclawConfig(spec), null, 2)}\n`);
  chownSync(join(root, 'state', 'openclaw.json'), 1000, 1000);
  writeFileSync(join(root, 'token'), randomBytes(24).toString('hex'), { mode: 0o400 });
  chownSync(join(root, 'token'), 1000, 1000);
  binds.push(`${join(root, 'token')}:/run/secrets/gateway-token:ro`);
  return { root, binds };
}

async function start(image: string, binds: string[]): Promise<Start> {
  const tmpfs = 'size=256m,uid=1000,gid=1000,mode=0700';
  const container = await docker.createContainer({
    Image: image,
    name: `steward-bench-gateway-${process.pid}`,
    Hostname: 'openclaw-gateway',
    User: '1000:1000',
    HostConfig: {
      ReadonlyRootfs: true,
      NetworkMode: 'none',
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges:true'],
      Tmpfs: { '/tmp': tmpfs, '/home/node/.cache': tmpfs },
      Binds: binds,
    },
  });
  try {
    const started = performance.now();
    await container.start();
    for (;;) {
      const exec = await container.exec({
        Cmd: ['curl', '-fsS', '--max-time', '2', '-o', '/dev/null', 'http://127.0.0.1:18789/healthz'],
        AttachStdout: true,
        AttachStderr: true,
      });
      const stream = await exec.start({});
      await new Promise((resolve) => stream.on('end', resolve).resume());
      if ((await exec.inspect()).ExitCode === 0) break;
      if (performance.now() - started > 300_000) throw new Error(`${image}: no /healthz answer in 300 s`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const seconds = (performance.now() - started) / 1000;
    const stats = (await container.stats({ stream: false })) as { cpu_stats: { cpu_usage: { total_usage: number } } };
    return { seconds, cpuSeconds: stats.cpu_stats.cpu_usage.total_usage / 1e9 };
  } finally {
    await container.stop({ t: 60 }).catch(() => undefined);
    await container.remove({ force: true });
  }
}

const results = new Map<string, Start[]>();
for (const image of IMAGES) {
  const { root, binds } = stateDirs();
  try {
    // A first start creates the state (what a deploy does); the runs after it are restarts.
    await start(image, binds);
    const runs: Start[] = [];
    for (let i = 0; i < RUNS; i++) {
      const r = await start(image, binds);
      runs.push(r);
      console.log(
        `${image} restart ${i + 1}: healthy after ${r.seconds.toFixed(1)} s, ${r.cpuSeconds.toFixed(1)} CPU-s`,
      );
    }
    results.set(image, runs);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

console.log(`\nmedians over ${RUNS} restarts (target: healthy ≤ ${TARGET_S} s after a restart)`);
for (const [image, runs] of results) {
  const s = median(runs.map((r) => r.seconds));
  const cpu = median(runs.map((r) => r.cpuSeconds));
  console.log(
    `${image.padEnd(40)} healthy ${s.toFixed(1).padStart(5)} s (${(s / TARGET_S).toFixed(2)}× target, ` +
      `${s <= TARGET_S ? 'MET' : 'MISSED'})  ${cpu.toFixed(1).padStart(5)} CPU-s`,
  );
}
if (IMAGES.length === 2) {
  const [a, b] = IMAGES.map((i) => results.get(i)!);
  const ratio = (f: (r: Start) => number) => median(a!.map(f)) / median(b!.map(f));
  console.log(
    `${IMAGES[0]} / ${IMAGES[1]}: time ${ratio((r) => r.seconds).toFixed(2)}×, CPU ${ratio((r) => r.cpuSeconds).toFixed(2)}×`,
  );
}
