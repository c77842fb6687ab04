/**
 * Where a test run's CPU goes, by process: `npx tsx test/support/cpu-profile.ts OUT -- COMMAND…` runs the command and,
 * while it runs, reads every process's CPU time on this machine (/proc, every 0.5 s; the simulators' processes and
 * the stacks' containers included), then writes to OUT the CPU seconds per kind of process, with counts and how long
 * they lived. A process is labelled when first seen: `node` by its script and first words (`node openclaw security
 * audit`), others by their name and first arguments. Processes living less than a sample apart are missed, and a
 * process's last half second is lost: the totals are a floor. Read-only: it never signals or changes a process.
 *   CI=true npx tsx test/support/cpu-profile.ts /tmp/cpu.txt -- bash .ci/run
 */
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';

const TICKS_PER_SECOND = 100; // USER_HZ, 100 on Linux
const SAMPLE_MS = 500;

interface Seen {
  readonly label: string;
  readonly base: number;
  ticks: number;
  readonly first: number;
  last: number;
}

function read(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** utime + stime, the start time (field 22) and the parent of a process, from /proc/PID/stat. */
function stat(pid: string): { ticks: number; start: string; parent: string } | undefined {
  const s = read(`/proc/${pid}/stat`);
  if (!s) return undefined;
  const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
  return { ticks: Number(f[11]) + Number(f[12]), start: f[19]!, parent: f[1]! };
}

function labelOf(args: readonly string[], comm: string): string {
  if (args.length === 0) return `[${comm}]`;
  const exe = basename(args[0]!);
  const rest = args.slice(1);
  if (exe === 'node' || exe === 'openclaw') {
    const words = rest.filter((a) => !a.startsWith('-')).slice(0, 4);
    return `node ${words.map((w) => (w.includes('/') ? basename(w) : w)).join(' ')}`.trim();
  }
  if (rest.length === 0) return args[0]!.slice(0, 60);
  return `${exe} ${rest
    .slice(0, 2)
    .filter((a) => a.length < 40)
    .join(' ')}`.trim();
}

function label(pid: string): string | undefined {
  const cmdline = read(`/proc/${pid}/cmdline`);
  if (cmdline === undefined) return undefined;
  return labelOf(cmdline.split('\0').filter(Boolean), (read(`/proc/${pid}/comm`) ?? '?').trim());
}

async function main(): Promise<void> {
  const [out, dashes, ...command] = process.argv.slice(2);
  if (!out || dashes !== '--' || command.length === 0) {
    console.error('usage: cpu-profile.ts OUT -- COMMAND [ARGS…]');
    process.exit(2);
  }
  const seen = new Map<string, Seen>();
  /** The label of each live pid: a child that renamed itself (`node` alone) is its parent's, marked as a child. */
  const labels = new Map<string, string>();
  let first = true;
  const sample = () => {
    const now = Date.now();
    for (const pid of readdirSync('/proc')) {
      if (!/^\d+$/.test(pid)) continue;
      const s = stat(pid);
      if (!s) continue;
      const key = `${pid}:${s.start}`;
      const known = seen.get(key);
      if (known) {
        known.ticks = s.ticks;
        known.last = now;
        continue;
      }
      const own = label(pid);
      if (own === undefined) continue;
      const parent = labels.get(s.parent);
      const l = own === 'node' && parent ? `${parent.replace(/ \(child\)$/, '')} (child)` : own;
      labels.set(pid, l);
      // What ran before the command is not the command's: only its CPU from here on counts.
      seen.set(key, { label: l, base: first ? s.ticks : 0, ticks: s.ticks, first: now, last: now });
    }
    first = false;
  };
  sample();
  const timer = setInterval(sample, SAMPLE_MS);
  const started = Date.now();
  const child = spawn(command[0]!, command.slice(1), { stdio: 'inherit' });
  const code: number = await new Promise((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal ? 1 : 0))));
  clearInterval(timer);
  sample();
  const by = new Map<string, { seconds: number; count: number; alive: number }>();
  for (const s of seen.values()) {
    const row = by.get(s.label) ?? { seconds: 0, count: 0, alive: 0 };
    row.seconds += (s.ticks - s.base) / TICKS_PER_SECOND;
    row.count += 1;
    row.alive += (s.last - s.first) / 1000;
    by.set(s.label, row);
  }
  const rows = [...by.entries()].sort((a, b) => b[1].seconds - a[1].seconds);
  const total = rows.reduce((sum, [, r]) => sum + r.seconds, 0);
  const wall = (Date.now() - started) / 1000;
  const lines = [
    `${total.toFixed(0)} CPU s in ${wall.toFixed(0)} s of wall time over ${seen.size} processes (exit ${code})`,
    'CPU s   count   alive s  process',
    ...rows
      .slice(0, 80)
      .map(
        ([l, r]) =>
          `${r.seconds.toFixed(1).padStart(7)} ${String(r.count).padStart(6)} ${r.alive.toFixed(0).padStart(9)}  ${l.slice(0, 140)}`,
      ),
  ];
  writeFileSync(out, `${lines.join('\n')}\n`);
  process.exit(code);
}

await main();
