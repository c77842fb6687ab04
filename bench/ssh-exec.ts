/**
 * Warm SSH exec latency against a VPS simulator: steward's own exec path (sudo + remote timeout + script on stdin)
 * and a bare `true`, each on one reused connection with TCP_NODELAY. Target: median ≤ 6 ms.
 *   npx tsx bench/ssh-exec.ts [iterations]
 */
import { openSession } from '../activities/host/session';
import { median, percentile, report, withSimulators } from './support';

const N = Number(process.argv[2] ?? 300);

await withSimulators(1, async ([sim], keys) => {
  const target = {
    name: 'bench',
    address: sim!.address,
    port: sim!.port,
    loginUser: sim!.user,
    opsUser: sim!.user,
    identityFile: keys.privateKeyPath,
    hostKey: sim!.hostKey,
    trustOnFirstUse: false,
  };
  const t0 = performance.now();
  const session = await openSession(target, sim!.user);
  const connectMs = performance.now() - t0;

  const time = async (fn: () => Promise<unknown>): Promise<number[]> => {
    for (let i = 0; i < 20; i++) await fn(); // warm-up
    const out: number[] = [];
    for (let i = 0; i < N; i++) {
      const s = performance.now();
      await fn();
      out.push(performance.now() - s);
    }
    return out;
  };
  const bare = await time(() => session.script('true', { sudo: false }));
  const sudo = await time(() => session.script('true'));
  const probe = await time(() =>
    session.probe({ a: 'stat -c %a /etc', b: 'getent passwd root', c: 'systemctl is-active ssh', d: 'uname -m' }),
  );
  await session.close();

  console.log(`SSH exec against a simulator, ${N} runs each, one reused connection (TCP_NODELAY)`);
  report('connect + auth (cold)', connectMs, 'ms');
  report('exec `true` median', median(bare), 'ms', 6);
  report('exec `true` p95', percentile(bare, 95), 'ms');
  report('exec via sudo -n median (what steps use)', median(sudo), 'ms');
  report('batched probe of 4 checks median', median(probe), 'ms');
  report('per check in a batch of 4', median(probe) / 4, 'ms');
});
