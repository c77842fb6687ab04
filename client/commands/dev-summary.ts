/**
 * `steward dev summary`: what the embedded default now runs and how to use it — whether the agent answers through
 * its TLS proxy on the throwaway VPS, how to reach it from this machine, how to get its token into a file without
 * showing it, each operation's latest run with its Web UI link, and the commands to try next.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stackLayout } from '../../model/render/stack';
import { StewardHost, StewardOperation, StewardOutcome } from '../../model/search-attributes';
import { devDir, readDevState } from '../../common/dev-state';
import { connectClient, listingClient, uiLink, type GlobalOptions } from '../context';
import { EXIT, UsageError } from '../errors';
import { loadSpecCached } from '../spec-cache';
import { sh } from '../../activities/host/shell';

interface LatestRun {
  readonly operation: string;
  readonly status: string;
  readonly outcome?: string;
  readonly link: string;
}

export async function summary(g: GlobalOptions): Promise<number> {
  const state = await readDevState(g.spec);
  if (!state.vps) throw new UsageError('no throwaway VPS: run `steward dev up` first');
  const { spec } = await loadSpecCached(g.spec);
  const host = state.vps.host;
  const layout = stackLayout(spec);
  const { simulatorExec, simulatorAddress } = await import('../dev/simulator');
  const domain = spec.proxy.domain;

  // The agent, asked the way a client asks: through the proxy, its certificate checked against the proxy's own CA.
  const healthz = await simulatorExec(state.vps.container, [
    'sh',
    '-c',
    `${sh(['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '5', '--cacert', layout.proxyRootCa, '--resolve', `${domain}:443:127.0.0.1`, `https://${domain}/healthz`])} 2>&1 || true`,
  ]);
  const answering = healthz.stdout.trim() === '200';
  const dir = devDir(g.spec);
  const ca = join(dir, 'proxy-ca.crt');
  let address: string | undefined;
  if (answering) {
    const root = await simulatorExec(state.vps.container, ['cat', layout.proxyRootCa]);
    if (root.exitCode !== 0 || !root.stdout.includes('BEGIN CERTIFICATE')) {
      throw new Error(`${host}: cannot read the proxy's CA at ${layout.proxyRootCa}: ${root.stderr.trim()}`);
    }
    await mkdir(dir, { recursive: true });
    await writeFile(ca, root.stdout, { mode: 0o644 });
    address = await simulatorAddress(state.vps.container);
  }

  const runs = await latestRuns(g, host, state.temporal?.uiUrl);
  const tokenFile = join(dir, 'gateway-token');
  const tokenPath = `${layout.secretsDir}/${spec.stack.gateway.tokenSecret}`;
  const doc = {
    host,
    agent: {
      url: `https://${domain}/`,
      answering,
      ...(address ? { from: { address, ca } } : {}),
    },
    token: `(umask 077; ${shown(['docker', 'exec', state.vps.container.slice(0, 12), 'cat', tokenPath])} > ${shown([tokenFile])})`,
    runs,
    ui: state.temporal?.uiUrl ? `${state.temporal.uiUrl}/namespaces/${g.namespace}/workflows` : undefined,
  };
  if (g.json) {
    console.log(JSON.stringify(doc, null, 2));
    return EXIT.ok;
  }
  console.log(`steward on ${host}, the throwaway VPS`);
  if (answering) {
    console.log(`  agent   ${doc.agent.url} answers through the TLS proxy; from this machine:`);
    console.log(
      `          ${shown(['curl', '--cacert', ca, '--resolve', `${domain}:443:${address}`, `https://${domain}/healthz`])}`,
    );
  } else {
    console.log(`  agent   ${doc.agent.url} does not answer yet: \`npx steward deploy\` puts it on ${host}`);
  }
  console.log(`  token   into a file only you can read, never on screen:`);
  console.log(`          ${doc.token}`);
  if (runs.length === 0) console.log('  runs    none yet');
  for (const [i, r] of runs.entries()) {
    const state = r.outcome ?? r.status.toLowerCase();
    console.log(`  ${i === 0 ? 'runs' : '    '}    ${r.operation.padEnd(10)} ${state.padEnd(10)} ${r.link}`);
  }
  if (doc.ui) console.log(`  ui      ${doc.ui}`);
  console.log('  next    npx steward drift                   what moved on the host since the last apply (exit 2)');
  console.log('          npx steward rotate gateway-token    a new token live without a restart, the old one refused');
  console.log(`          npx steward audit --host ${host}    who ran what, when, with what outcome`);
  console.log('          npx steward schedule apply          drift repair and checks as Temporal Schedules');
  console.log('          npx steward dev down                stop it all (history kept)');
  return EXIT.ok;
}

/** A command line to paste: each argument as is when the shell takes it so, else in single quotes. */
function shown(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** Each operation's latest run on `host`, newest first, with its Web UI link. */
async function latestRuns(g: GlobalOptions, host: string, ui: string | undefined): Promise<LatestRun[]> {
  const client = await connectClient(g);
  const latest = new Map<string, LatestRun>();
  try {
    for await (const w of listingClient(client).workflow.list({
      query: `${StewardHost.name} = '${host}' AND ${StewardOperation.name} IS NOT NULL`,
      pageSize: 50,
    })) {
      const operation = w.typedSearchAttributes.get(StewardOperation) ?? w.type;
      if (latest.has(operation)) continue;
      const outcome = w.typedSearchAttributes.get(StewardOutcome);
      latest.set(operation, {
        operation,
        status: w.status.name,
        ...(outcome ? { outcome } : {}),
        link: uiLink(ui, g.namespace, w.workflowId, w.runId) ?? w.workflowId,
      });
      if (latest.size >= 10) break;
    }
  } finally {
    await client.connection.close();
  }
  return [...latest.values()];
}
