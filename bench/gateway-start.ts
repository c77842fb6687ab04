/**
 * How long the agent is down when its gateway restarts: the steward/openclaw image started on the local Docker engine
 * with the configuration steward renders (the mem0 plugin loaded, its stores on volumes), as the stack runs it
 * (read-only root, tmpfs /tmp, uid 1000), without a network. Each run is a fresh container on the same state and
 * memory directories, as after `docker restart`; printed per run: seconds until `/healthz` answers inside the
 * container, and the CPU seconds the container used until then. Then the restart steward uses where the container
 * stays (a rotation's `restart`): SIGUSR2, OpenClaw's in-place restart, timed from the signal to the first
 * `/healthz` answer after it stopped answering. A second image (an earlier build, say) is measured the same way and
 * compared.
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
  /** SIGUSR2 to the first answer after the gateway stopped answering, per in-place restart. */
  readonly inPlace: number[];
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

async function start(image: string, binds: string[], inPlaceRuns = 0): Promise<Start> {
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
  const answers = async (): Promise<boolean> => {
    const exec = await container.exec({
      Cmd: ['curl', '-fsS', '--max-time', '1', '-o', '/dev/null', 'http://127.0.0.1:18789/healthz'],
      AttachStdout: true,
      AttachStderr: true,
    });
    const stream = await exec.start({});
    await new Promise((resolve) => stream.on('end', resolve).resume());
    return (await exec.inspect()).ExitCode === 0;
  };
  try {
    const started = performance.now();
    await container.start();
    while (!(await answers())) {
      if (performance.now() - started > 300_000) throw new Error(`${image}: no /healthz answer in 300 s`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const seconds = (performance.now() - started) / 1000;
    const stats = (await container.stats({ stream: false })) as { cpu_stats: { cpu_usage: { total_usage: number } } };
    const inPlace: number[] = [];
    for (let i = 0; i < inPlaceRuns; i++) {
      const signalled = performance.now();
      await container.kill({ signal: 'SIGUSR2' });
      let down = false;
      for (;;) {
        const up = await answers();
        if (!up) down = true;
        if (up && down) break;
        if (!down && performance.now() - signalled > 60_000) throw new Error(`${image}: SIGUSR2 did not restart it`);
        if (performance.now() - signalled > 300_000) throw new Error(`${image}: no answer 300 s after SIGUSR2`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      inPlace.push((performance.now() - signalled) / 1000);
    }
    return { seconds, cpuSeconds: stats.cpu_stats.cpu_usage.total_usage / 1e9, inPlace };
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
      const r = await start(image, binds, 1);
      runs.push(r);
      console.log(
        `${image} restart ${i + 1}: healthy after ${r.seconds.toFixed(1)} s, ${r.cpuSeconds.toFixed(1)} CPU-s; ` +
          `in place (SIGUSR2): answering again after ${r.inPlace.map((x) => x.toFixed(1)).join(', ')} s`,
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
  const inPlace = median(runs.flatMap((r) => r.inPlace));
  const verdict = (x: number) => `${(x / TARGET_S).toFixed(2)}× target, ${x <= TARGET_S ? 'MET' : 'MISSED'}`;
  console.log(
    `${image.padEnd(40)} new container: healthy ${s.toFixed(1).padStart(5)} s (${verdict(s)})  ${cpu.toFixed(1).padStart(5)} CPU-s`,
  );
  console.log(`${''.padEnd(40)} in place (SIGUSR2): ${inPlace.toFixed(1).padStart(5)} s (${verdict(inPlace)})`);
}
if (IMAGES.length === 2) {
  const [a, b] = IMAGES.map((i) => results.get(i)!);
  const ratio = (f: (r: Start) => number) => median(a!.map(f)) / median(b!.map(f));
  console.log(
    `${IMAGES[0]} / ${IMAGES[1]}: time ${ratio((r) => r.seconds).toFixed(2)}×, CPU ${ratio((r) => r.cpuSeconds).toFixed(2)}×`,
  );
}
