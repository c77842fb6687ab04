/**
 * Test doubles of paid or external services run on a simulator, each in a container of the OpenClaw image attached
 * to the stack's network under its own alias, so a spec's URL can name it: a script of Node built-ins under
 * test/doubles, its port, and plain HTTP to drive and read it from the simulator.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { simulatorExec, type Simulator } from '../../client/dev/simulator';

export interface StackDouble {
  /** Container name and network alias. */
  readonly name: string;
  /** Its script, relative to test/doubles. */
  readonly script: string;
  readonly port: number;
}

/** `GET path` (or `POST` with a JSON body) to the double from the simulator; undefined when it does not answer. */
export async function callDouble(
  sim: Simulator,
  d: StackDouble,
  path: string,
  body?: unknown,
): Promise<string | undefined> {
  const ip = await simulatorExec(sim.container, [
    'docker',
    'inspect',
    '-f',
    '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}',
    d.name,
  ]);
  const post =
    body === undefined ? [] : ['-X', 'POST', '-H', 'content-type: application/json', '-d', JSON.stringify(body)];
  const url = `http://${ip.stdout.trim()}:${d.port}${path}`;
  const r = await simulatorExec(sim.container, ['curl', '-sf', '--max-time', '5', ...post, url]);
  return r.exitCode === 0 ? r.stdout : undefined;
}

/** (Re)starts the double on the stack's network (which a first deploy creates) and waits until it answers. */
export async function startDouble(sim: Simulator, d: StackDouble, image: string): Promise<void> {
  const source = readFileSync(fileURLToPath(new URL(`../doubles/${d.script}`, import.meta.url)), 'utf8');
  await simulatorExec(sim.container, ['docker', 'rm', '-f', d.name]);
  const r = await simulatorExec(sim.container, [
    'docker',
    'run',
    '-d',
    '--name',
    d.name,
    '--network',
    'openclaw_edge',
    '--network-alias',
    d.name,
    '--read-only',
    '--user',
    '1000:1000',
    '-e',
    `PORT=${d.port}`,
    '--entrypoint',
    'node',
    image,
    '--input-type=module-typescript',
    '--eval',
    source,
  ]);
  if (r.exitCode !== 0) throw new Error(`${d.name} did not start: ${r.stderr}`);
  for (let i = 0; i < 50; i++) {
    if ((await callDouble(sim, d, '/health')) !== undefined) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`${d.name} does not answer`);
}
