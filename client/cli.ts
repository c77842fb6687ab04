/**
 * steward's command line. Each command's module loads lazily; this is the only file that calls process.exit.
 * Exit codes: 0 success, 1 operation failed, 2 drift found, 64 invalid spec or usage.
 */
import { isIP } from 'node:net';
import { Command, CommanderError, Option } from 'commander';
import { TASK_QUEUE } from '../model/ids';
import { WORKFLOW_BUNDLE_ENV } from '../workers/paths';
import { resolveGlobals, type GlobalOptions, type ParsedGlobals } from './globals';
import { EXIT, failureExit, UsageError } from './errors';
import { installTerminalSafeConsole } from './terminal';
import type { OperationCommand, SpecChange } from './operation-command';
import type { Client } from '@temporalio/client';

/** `--waves` and `--bake` as given, and the approval flags where the command has them. */
interface Rollout {
  readonly waves?: string;
  readonly bake?: string;
  readonly verifyWaves?: boolean;
  readonly requireApproval?: boolean;
  readonly approvalWindow?: string;
}
/** A fleet command's flags as given: --concurrency, and the rollout's where the command has them. */
type FleetFlags = { readonly concurrency: string } & Rollout;
/** Commands of one host run it alone. */
const ONE_HOST: FleetFlags = { concurrency: '1' };
const WAVES_FLAG = '--waves <sizes>';
const WAVES_HELP =
  'roll out in waves of host counts or shares of the fleet, e.g. 1,25%,100% (the last takes the rest); a wave ' +
  "with a failed host halts the rollout (default: the spec's rollout.waves)";
const BAKE_FLAG = '--bake <duration>';
const BAKE_HELP = "with waves: pause between two waves, e.g. 5min (default: the spec's rollout.bake)";
const VERIFY_WAVES_HELP =
  "with waves: before the next wave, after the bake, prove the wave's hosts again (a stack verified, anything else " +
  "planned again and found unchanged); a host that fails halts the rollout (default: the spec's rollout.verify)";
const APPROVAL_HELP =
  'plan first, publish the plan and wait for `steward approve RUN` (or reject); apply only the approved plan, and ' +
  "only while the host still matches it (default: the spec's approval.operations)";
const WINDOW_FLAG = '--approval-window <duration>';
const WINDOW_HELP =
  "how long the plan waits for a decision, then nothing is applied (default: the spec's approval.window, 24h)";

const program = new Command('steward')
  .description('Durable, idempotent lifecycle operations for self-hosted OpenClaw stacks, on Temporal')
  .option('--spec <file>', 'desired state', process.env.STEWARD_SPEC ?? 'steward.yaml')
  .option(
    '--address <host:port>',
    'Temporal frontend (default $STEWARD_ADDRESS, else the Temporal profile or $TEMPORAL_ADDRESS, else 127.0.0.1:7233)',
  )
  .option('--namespace <name>', "Temporal namespace (default $STEWARD_NAMESPACE, else the profile's, else default)")
  .option(
    '--profile <name>',
    'Temporal environment configuration profile: address, namespace, TLS and API key from temporal.toml, with TEMPORAL_* variables over it (default $TEMPORAL_PROFILE, else default)',
  )
  .option('--json', 'print one JSON document on stdout', false)
  .option('--no-wait', 'print the workflow id and return without following the run')
  .addOption(
    new Option('--task-queue <name>', "steward worker's task queue")
      .default(process.env.STEWARD_TASK_QUEUE ?? TASK_QUEUE)
      .hideHelp(),
  )
  .option('-V, --version', "print steward's version, the Temporal SDK's and the server's (when it answers)")
  .exitOverride()
  .configureOutput({ outputError: (s, write) => write(s) })
  .showHelpAfterError()
  // The program's own action: only `--version`. Anything else without a known command is an error, as it would be
  // without this action.
  .allowExcessArguments()
  .action(async (o: { version?: boolean }) => {
    if (program.args.length > 0) {
      program.error(`error: unknown command '${program.args[0]}'`, { code: 'commander.unknownCommand' });
    }
    if (!o.version) program.help({ error: true });
    const { versions, formatVersions } = await import('./commands/version');
    // The Temporal settings may be what the operator is checking: a broken one is the server's line, not a failure.
    let target;
    try {
      target = globals().temporal;
    } catch (err) {
      target = { error: err instanceof Error ? err.message : String(err) };
    }
    const v = await versions(target);
    console.log(program.opts<ParsedGlobals>().json ? JSON.stringify(v) : formatVersions(v));
  });

/** Whether `value` is `<IP>:<port>` as the SDK's metrics exporter binds it (a host name is not resolved there). */
function metricsAddress(value: string): boolean {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([\d.]+)):(\d{1,5})$/.exec(value);
  if (!m) return false;
  const port = Number(m[3]);
  return (m[1] ? isIP(m[1]) === 6 : isIP(m[2]!) === 4) && port >= 1 && port <= 65535;
}

let resolved: GlobalOptions | undefined;
const globals = (): GlobalOptions => (resolved ??= resolveGlobals(program.opts<ParsedGlobals>()));

let exitCode: number = EXIT.ok;

program
  .command('init')
  .description('write a complete starter steward.yaml (and a key pair if none is given)')
  .option('--host <NAME=USER@ADDR:PORT>', 'a host (repeatable); USER is the first login, e.g. root', collect, [])
  .option('--identity <file>', 'existing private key to use instead of generating one')
  .option('--force', 'overwrite an existing spec', false)
  .action(async (o: { host: string[]; identity?: string; force: boolean }) => {
    const { initSpec } = await import('./commands/init');
    const r = await initSpec({
      specPath: globals().spec,
      hosts: o.host,
      force: o.force,
      ...(o.identity ? { identity: o.identity } : {}),
    });
    if (globals().json) console.log(JSON.stringify(r));
    else {
      console.log(`wrote ${r.specPath}\nkey ${r.keyPath}`);
      console.log(
        `codec key ${r.codecKeyFile}${r.codecKeyCreated ? '' : ' (kept)'}: the worker and the CLI use it here`,
      );
    }
  });

program
  .command('schema')
  .description("print the spec's JSON Schema")
  .action(async () => {
    const { jsonSchema } = await import('./commands/schema');
    console.log(JSON.stringify(jsonSchema(), null, 2));
  });

program
  .command('dev')
  .description('embedded default: local Temporal dev server (+UI), worker, throwaway VPS')
  .addArgument(
    new Command()
      .createArgument(
        '<action>',
        'up | down | status | summary (the agent, its token, the runs, what next) | embedder (the stand-in for memory checks)',
      )
      .choices(['up', 'down', 'status', 'summary', 'embedder']),
  )
  .action(async (action: 'up' | 'down' | 'status' | 'summary' | 'embedder') => {
    // The local dev server, whatever the shell holds for a production Temporal: flags and STEWARD_* only.
    const { localTemporalEnv } = await import('../common/dev-state');
    const parsed = program.opts<ParsedGlobals>();
    const g = resolveGlobals(parsed, localTemporalEnv(process.env, parsed.spec));
    if (action === 'summary') {
      const { summary } = await import('./commands/dev-summary');
      exitCode = await summary(g);
      return;
    }
    if (action === 'embedder') {
      const { embedder } = await import('./commands/dev-embedder');
      exitCode = await embedder(g);
      return;
    }
    const dev = await import('./commands/dev');
    exitCode = await dev[action](g);
  });

program
  .command('worker')
  .description('run the worker (until SIGINT/SIGTERM)')
  .option(
    '--workflow-bundle <file>',
    `workflow code bundled earlier by \`steward bundle\` (default $${WORKFLOW_BUNDLE_ENV}; without either, bundled at start)`,
  )
  .option(
    '--metrics <host:port>',
    "serve Prometheus metrics (the SDK's and steward's) at http://<host:port>/metrics (default $STEWARD_METRICS_ADDRESS; none without it)",
    process.env.STEWARD_METRICS_ADDRESS || undefined,
  )
  .option(
    '--deployment <name>',
    'poll as a version of this Temporal Worker Deployment: host operations stay on the version they started on, fleet and rotation plans move to the promoted one (default $STEWARD_DEPLOYMENT; unversioned without it)',
    process.env.STEWARD_DEPLOYMENT || undefined,
  )
  .option(
    '--build-id <id>',
    "the version's build id (default $STEWARD_BUILD_ID, else a digest of the workflow code)",
    process.env.STEWARD_BUILD_ID || undefined,
  )
  .option(
    '--traces <url>',
    'export OpenTelemetry traces (run → activity → SSH command) over OTLP/HTTP to this URL, e.g. http://127.0.0.1:4318/v1/traces (default $OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or $OTEL_EXPORTER_OTLP_ENDPOINT/v1/traces; none without them)',
  )
  .action(
    async (o: {
      workflowBundle?: string;
      metrics?: string;
      deployment?: string;
      buildId?: string;
      traces?: string;
    }) => {
      // Checked before anything connects: a bad file or address is a usage error, and nothing starts.
      if (o.metrics !== undefined && !metricsAddress(o.metrics)) {
        throw new UsageError(
          `--metrics ${JSON.stringify(o.metrics)}: expected an IP address and port, e.g. 127.0.0.1:9464 or [::1]:9464`,
        );
      }
      const { DEPLOYMENT_NAME, BUILD_ID, tracesEndpoint, tracesUrlProblem } = await import('../workers/flags');
      if (o.deployment !== undefined && !DEPLOYMENT_NAME.test(o.deployment)) {
        throw new UsageError(
          `--deployment ${JSON.stringify(o.deployment)}: expected letters, digits, '-' and '_' (no '.'), at most 100`,
        );
      }
      if (o.buildId !== undefined && !BUILD_ID.test(o.buildId)) {
        throw new UsageError(
          `--build-id ${JSON.stringify(o.buildId)}: expected letters, digits and . _ + -, starting with a letter or digit, at most 100`,
        );
      }
      if (o.buildId !== undefined && o.deployment === undefined) {
        throw new UsageError(
          '--build-id (or STEWARD_BUILD_ID) names a version of a Worker Deployment: give --deployment (or STEWARD_DEPLOYMENT) too',
        );
      }
      const traces = o.traces ?? tracesEndpoint();
      const tracesProblem = traces === undefined ? undefined : tracesUrlProblem(traces);
      if (tracesProblem) {
        const from = o.traces !== undefined ? '--traces' : 'the OTEL_EXPORTER_OTLP_*ENDPOINT variable';
        throw new UsageError(`${from}: ${tracesProblem}`);
      }
      const workflowBundle = await prebuiltBundle(o.workflowBundle);
      const { runWorker } = await import('../workers/worker');
      const { serveLocalWorker } = await import('./local-worker-server');
      const g = globals();
      const local = await serveLocalWorker(g);
      try {
        await runWorker({
          spec: g.spec,
          address: g.address,
          namespace: g.namespace,
          temporal: g.temporal,
          taskQueue: g.taskQueue,
          ...(o.metrics ? { metrics: o.metrics } : {}),
          ...(workflowBundle ? { workflowBundle } : {}),
          ...(o.deployment ? { deployment: { name: o.deployment, ...(o.buildId ? { buildId: o.buildId } : {}) } } : {}),
          ...(traces ? { traces } : {}),
        });
      } finally {
        await local?.close();
      }
    },
  );

program
  .command('bundle')
  .description('bundle the workflow code into a file, for fast starts of `steward worker --workflow-bundle FILE`')
  .requiredOption('--out <file>', 'where to write the bundle (replaced whole)')
  .action(async (o: { out: string }) => {
    const { buildWorkflowBundle, writeWorkflowBundle, WorkflowBundleError } = await import('../workers/bundle');
    const code = await buildWorkflowBundle();
    try {
      await writeWorkflowBundle(o.out, code);
    } catch (err) {
      throw err instanceof WorkflowBundleError ? new UsageError(`--out ${o.out}: ${err.message}`) : err;
    }
    const bytes = Buffer.byteLength(code);
    if (globals().json) console.log(JSON.stringify({ file: o.out, bytes }));
    else console.log(`wrote ${o.out} (${(bytes / 1e6).toFixed(1)} MB): steward worker --workflow-bundle ${o.out}`);
  });

program
  .command('codec-server')
  .description("serve the Temporal UI's remote codec endpoint (/encode, /decode) until SIGINT/SIGTERM")
  .option('--host <ip>', 'address to listen on', '127.0.0.1')
  .option('--port <n>', 'port to listen on', '8234')
  .option('--origin <url>', 'Web UI origin allowed by CORS (repeatable; default the local UI on :8233)', collect, [])
  .option('--token-file <file>', 'bearer token file, mode 0600 (default $STEWARD_CODEC_SERVER_TOKEN_FILE)')
  .action(async (o: { host: string; port: string; origin: string[]; tokenFile?: string }) => {
    const { serveCodec } = await import('./commands/codec');
    await serveCodec(globals(), o);
  });

program
  .command('codec')
  .description('payload encryption keys')
  .command('keygen')
  .description('add a new key in front of a key file (created with mode 0600): it encrypts, older keys still decrypt')
  .option('--file <file>', 'key file (default $STEWARD_CODEC_KEY_FILE)')
  .action(async (o: { file?: string }) => {
    const { keygen } = await import('./commands/codec');
    const r = await keygen(o);
    if (globals().json) console.log(JSON.stringify(r));
    else
      console.log(`${r.created ? 'created' : 'updated'} ${r.file}: ${r.keyId} encrypts; ${r.keys.join(', ')} decrypt`);
  });

program
  .command('provision')
  .description('ops user, base packages, Docker engine, directory layout and volumes')
  .argument('[hosts...]', 'hosts of the spec (default: all)')
  .addOption(new Option('--plan', 'report what would change without changing anything'))
  .option('--concurrency <n>', 'hosts worked on at once', '10')
  .option(WAVES_FLAG, WAVES_HELP)
  .option(BAKE_FLAG, BAKE_HELP)
  .option('--verify-waves', VERIFY_WAVES_HELP)
  .option('--require-approval', APPROVAL_HELP)
  .option(WINDOW_FLAG, WINDOW_HELP)
  .action(async (hosts: string[], o: { plan?: boolean; concurrency: string } & Rollout) => {
    exitCode = await operation('provision', 'provisionHost', hosts, o.plan ? 'plan' : 'apply', o);
  });

program
  .command('harden')
  .description('SSH baseline, default-deny firewall, kernel, upgrades, intrusion controls, cleanup timers')
  .argument('[hosts...]', 'hosts of the spec (default: all)')
  .addOption(new Option('--plan', 'report what would change without changing anything'))
  .option('--concurrency <n>', 'hosts worked on at once', '10')
  .option(WAVES_FLAG, WAVES_HELP)
  .option(BAKE_FLAG, BAKE_HELP)
  .option('--verify-waves', VERIFY_WAVES_HELP)
  .option('--require-approval', APPROVAL_HELP)
  .option(WINDOW_FLAG, WINDOW_HELP)
  .action(async (hosts: string[], o: { plan?: boolean; concurrency: string } & Rollout) => {
    exitCode = await operation('harden', 'hardenHost', hosts, o.plan ? 'plan' : 'apply', o);
  });

program
  .command('deploy')
  .description('the OpenClaw stack behind the Caddy TLS proxy: images, secrets, config, health, verification, rollback')
  .argument('[hosts...]', 'hosts of the spec (default: all)')
  .addOption(new Option('--plan', 'report what would change without changing anything'))
  .option('--concurrency <n>', 'hosts worked on at once', '10')
  .option(WAVES_FLAG, WAVES_HELP)
  .option(BAKE_FLAG, BAKE_HELP)
  .option('--verify-waves', VERIFY_WAVES_HELP)
  .option('--require-approval', APPROVAL_HELP)
  .option(WINDOW_FLAG, WINDOW_HELP)
  .action(async (hosts: string[], o: { plan?: boolean; concurrency: string } & Rollout) => {
    exitCode = await operation('deploy', 'deployHost', hosts, o.plan ? 'plan' : 'apply', o);
  });

program
  .command('verify')
  .description(
    "prove a deployed stack works: TLS, WebSocket auth, closed ports, OpenClaw's audit and routing, MCP servers, " +
      'Telegram, Google OAuth, one agent turn; nothing applied or restarted (exit 1 when a control fails)',
  )
  .argument('[hosts...]', 'hosts of the spec (default: all)')
  .option('--concurrency <n>', 'hosts worked on at once', '10')
  .action(async (hosts: string[], o: { concurrency: string }) => {
    exitCode = await operation('verify', 'verifyHost', hosts, 'plan', o);
  });

program
  .command('converge')
  .description('provision → harden → deploy → memory check, each a child workflow; stops at the first failure')
  .argument('[hosts...]', 'hosts of the spec (default: all)')
  .option('--concurrency <n>', 'hosts worked on at once', '10')
  .option(WAVES_FLAG, WAVES_HELP)
  .option(BAKE_FLAG, BAKE_HELP)
  .option('--verify-waves', VERIFY_WAVES_HELP)
  .option('--require-approval', `each stage that changes the host: ${APPROVAL_HELP}`)
  .option(WINDOW_FLAG, WINDOW_HELP)
  .action(async (hosts: string[], o: { concurrency: string } & Rollout) => {
    exitCode = await operation('converge', 'convergeHost', hosts, 'apply', o);
  });

program
  .command('drift')
  .description('plan drift of every managed resource (exit 2 on drift); --repair converges it back and proves it')
  .argument('[hosts...]', 'hosts of the spec (default: all)')
  .option('--repair', 're-run the operations that own drifted resources, then observe again')
  .option(
    '--audit',
    "run OpenClaw's security audit now; by default a host's last audit is reused while the gateway, openclaw.json " +
      'and the state permissions are unchanged, for up to 24 h',
  )
  .option('--no-audit', "skip OpenClaw's security audit inside the gateway (about 10 s per host)")
  .option('--concurrency <n>', 'hosts worked on at once', '10')
  .option(WAVES_FLAG, WAVES_HELP)
  .option(BAKE_FLAG, BAKE_HELP)
  .option('--verify-waves', VERIFY_WAVES_HELP)
  .action(async (hosts: string[], o: { repair?: boolean; audit?: boolean; concurrency: string } & Rollout) => {
    exitCode = await operation('drift', 'driftHost', hosts, o.repair ? 'apply' : 'plan', o, {
      audit: o.audit !== false,
      ...(o.audit === true ? { auditMaxAgeMs: 0 } : {}),
    });
  });

program
  .command('memory')
  .description('mem0 memory: prove it works, and repair what can be repaired safely')
  .command('check')
  .description(
    'canary write/read/search/history/delete, persistence without a restart, data paths, SQLite integrity, dimension',
  )
  .argument('[hosts...]', 'hosts of the spec (default: all)')
  .option(
    '--repair',
    'back up damaged databases, fix owner/mode drift, create missing directories, restart, prove again',
  )
  .option(
    '--restart-proof',
    'prove persistence across a restart of the gateway (or REST server) instead of in a fresh container beside it',
  )
  .option('--concurrency <n>', 'hosts worked on at once', '10')
  .action(async (hosts: string[], o: { repair?: boolean; restartProof?: boolean; concurrency: string }) => {
    const mode = o.repair ? 'apply' : 'plan';
    const extra = o.restartProof ? { restartProof: true } : undefined;
    exitCode = await operation('memory', 'memoryCheckHost', hosts, mode, o, extra);
  });

program
  .command('backup')
  .description(
    "snapshot each host's volumes (SQLite through its online backup) into the restic repository, encrypted and " +
      'deduplicated; read the snapshot back to prove it; apply backup.keep',
  )
  .argument('[hosts...]', 'hosts of the spec (default: all)')
  .option('--concurrency <n>', 'hosts worked on at once', '4')
  .action(async (hosts: string[], o: { concurrency: string }) => {
    exitCode = await operation('backup', 'backupHost', hosts, 'apply', o);
  });

program
  .command('restore')
  .description(
    'restore a snapshot: staged and checked first, then the gateway stopped, the volumes swapped (the old ones kept), ' +
      'started, and the memories proven back; --drill proves it beside production and changes nothing live',
  )
  .argument('<host>', 'host of the spec')
  .option('--snapshot <id>', "snapshot id (full or short; default the host's newest)")
  .option('--drill', 'restore into a scratch stage on the host, prove the canary there, remove it; report RPO and RTO')
  .action(async (host: string, o: { snapshot?: string; drill?: boolean }) => {
    if (o.snapshot !== undefined && !/^[0-9a-f]{4,64}$/.test(o.snapshot)) {
      throw new UsageError(`--snapshot ${JSON.stringify(o.snapshot)}: must be a snapshot id (hex, 4 to 64 digits)`);
    }
    exitCode = await operation(o.drill ? 'drill' : 'restore', 'restoreHost', [host], 'apply', ONE_HOST, {
      ...(o.snapshot ? { snapshot: o.snapshot } : {}),
      ...(o.drill ? { drill: true } : {}),
    });
  });

program
  .command('upgrade')
  .description(
    'OpenClaw to another release as one transaction: a snapshot first, the new version validates the config, is ' +
      'applied and proven (token, the snapshot canary, --check); on failure the previous release and the ' +
      "snapshot's data come back. On success stack.image in the spec is set to the new release",
  )
  .argument('<host>', 'host of the spec')
  .requiredOption('--to <version>', 'the release, e.g. 2026.9.6: the image <repository of stack.image>:<version>')
  .option('--check <command>', 'a command the new gateway container must exit 0 on (split on spaces, no shell)')
  .addOption(new Option('--plan', "show the version change and the new version's validation, changing nothing"))
  .action(async (host: string, o: { to: string; check?: string; plan?: boolean }) => {
    const { upgradeChange } = await import('./commands/upgrade');
    const change = await upgradeChange(globals().spec, o.to, globals().json);
    const check = o.check?.split(/\s+/).filter(Boolean) ?? [];
    exitCode = await operation(
      'upgrade',
      'upgradeHost',
      [host],
      o.plan ? 'plan' : 'apply',
      ONE_HOST,
      check.length > 0 ? { check } : undefined,
      change,
    );
  });

program
  .command('rotate')
  .description('rotate secrets: create → set → test → finish, rolled back on failure; the old value proven refused')
  .argument('[secrets...]', 'secrets of the spec (default: every secret the stack consumes)')
  .option('--host <name>', 'only this host (repeatable; default: all)', collect, [])
  .option('--due', 'only secrets whose rotateEvery has passed since their last rotation')
  .addOption(new Option('--plan', 'inspect the versions on the hosts and report, changing nothing'))
  .option('--concurrency <n>', 'hosts worked on at once', '10')
  .action(async (secrets: string[], o: { host: string[]; due?: boolean; plan?: boolean; concurrency: string }) => {
    const { rotate } = await import('./commands/rotate');
    exitCode = await rotate(globals(), secrets, o);
  });

program
  .command('resume')
  .description('a rollout in waves halted at a failed wave: run its failed hosts again and go on with the waves after')
  .argument('<workflowId>', 'the halted run (the id the halted command printed)')
  .action(async (workflowId: string) => {
    exitCode = await rolloutDecision((client, g) =>
      import('./operation').then((m) => m.resumeRollout(client, g, workflowId)),
    );
  });

program
  .command('abort')
  .description('a rollout in waves halted at a failed wave: end it failed, its untouched hosts left as they are')
  .argument('<workflowId>', 'the halted run')
  .option('--reason <text>', 'why, recorded in the run')
  .action(async (workflowId: string, o: { reason?: string }) => {
    exitCode = await rolloutDecision((client, g) =>
      import('./operation').then((m) => m.abortRollout(client, g, workflowId, o.reason)),
    );
  });

program
  .command('approve')
  .description(
    'approve the plan a run waits with (--require-approval, or the spec): it applies it while the host still matches',
  )
  .argument('<workflowId>', 'the waiting run (the id its command printed)')
  .option('--plan <digest>', 'the plan approved, as shown with it (default: the plan the run shows now, printed first)')
  .option('--reason <text>', 'why, recorded in the run')
  .action(async (workflowId: string, o: { plan?: string; reason?: string }) => {
    exitCode = await rolloutDecision((client, g) =>
      import('./approval').then((m) => m.decideApproval(client, g, workflowId, { decision: 'approve', ...o })),
    );
  });

program
  .command('reject')
  .description('reject the plan a run waits with: the run ends with nothing applied')
  .argument('<workflowId>', 'the waiting run')
  .requiredOption('--reason <text>', 'why, recorded in the run')
  .option('--plan <digest>', 'the plan rejected (default: the plan the run shows now)')
  .action(async (workflowId: string, o: { plan?: string; reason: string }) => {
    exitCode = await rolloutDecision((client, g) =>
      import('./approval').then((m) => m.decideApproval(client, g, workflowId, { decision: 'reject', ...o })),
    );
  });

program
  .command('status')
  .description('recent runs from Temporal visibility')
  .option('--host <name>', 'only this host')
  .option('--operation <name>', 'only this operation')
  .option('--limit <n>', 'how many runs', '20')
  .action(async (o: { host?: string; operation?: string; limit: string }) => {
    const { status } = await import('./commands/status');
    await status(globals(), o);
  });

const audit = program
  .command('audit')
  .description('runs from Temporal visibility, one run as a timeline, or --export DIR: histories with a hash chain')
  .argument('[workflowId]', 'show this run as a timeline (the latest run unless --run)')
  .option('--run <runId>', 'which run of the workflow id')
  .option('--host <name>', 'only runs on this host')
  .option('--operation <name>', 'only this operation')
  .option('--outcome <outcome>', 'completed | failed | running | canceled | terminated | timed-out')
  .option('--since <time>', 'started (exports: closed) at or after: an age like 7d or 12h, or an ISO date-time')
  .option('--until <time>', 'started (exports: closed) before: an age or an ISO date-time')
  .option('--limit <n>', 'at most this many runs (lists default to 20)')
  .option('--export <dir>', 'write full event histories (payloads encrypted) and a hash-chained manifest into DIR')
  .option('--previous <manifest>', 'with --export: link to this manifest when the chain is not in DIR')
  .action(async (workflowId: string | undefined, o: Record<string, string | undefined>) => {
    const { audit } = await import('./commands/audit');
    exitCode = await audit(globals(), workflowId, o);
  });

audit
  .command('verify')
  .description('recompute every hash of an export directory and its chain; exit 1 naming each file that fails')
  .argument('<dir>', 'the chain directory given to --export (or one export in it)')
  .option('--previous <manifest|sha256>', 'the manifest the first export links to, when older exports are elsewhere')
  .option('--expect-head <sha256>', 'the head recorded at export time: the newest manifest must hash to it')
  .action(async (dir: string, o: { previous?: string; expectHead?: string }) => {
    const { verify } = await import('./commands/audit');
    // `audit` declares --previous too and takes it wherever it stands on the line.
    const previous = o.previous ?? audit.opts<{ previous?: string }>().previous;
    exitCode = await verify(globals(), dir, { ...o, ...(previous ? { previous } : {}) });
  });

const schedule = program
  .command('schedule')
  .description("the spec's schedules as Temporal Schedules: drift repair, memory checks, rotation, audit export");

schedule
  .command('apply')
  .description('create, update and delete schedules to match the spec; applying twice changes nothing')
  .addOption(new Option('--plan', 'report what would change without changing anything'))
  .action(async (o: { plan?: boolean }) => {
    const { apply } = await import('./commands/schedule');
    exitCode = await apply(globals(), o);
  });

schedule
  .command('list')
  .description('the schedules steward made for this task queue: interval, state, next and last run')
  .argument('[ids...]', 'schedule ids (default: all)')
  .action(async (ids: string[]) => {
    const { list } = await import('./commands/schedule');
    exitCode = await list(globals(), ids);
  });

schedule
  .command('pause')
  .description('pause schedules: no run starts until they are resumed')
  .argument('[ids...]', 'schedule ids (default: every schedule steward made for this task queue)')
  .option('--note <text>', 'why, shown in the Web UI and by `schedule list`')
  .action(async (ids: string[], o: { note?: string }) => {
    const { act } = await import('./commands/schedule');
    exitCode = await act(globals(), 'pause', ids, o);
  });

schedule
  .command('resume')
  .description('resume paused schedules')
  .argument('[ids...]', 'schedule ids (default: every schedule steward made for this task queue)')
  .action(async (ids: string[]) => {
    const { act } = await import('./commands/schedule');
    exitCode = await act(globals(), 'resume', ids);
  });

schedule
  .command('trigger')
  .description("start a run of each schedule now (skipped while one of the schedule's runs is still going)")
  .argument('[ids...]', 'schedule ids (default: every schedule steward made for this task queue)')
  .action(async (ids: string[]) => {
    const { act } = await import('./commands/schedule');
    exitCode = await act(globals(), 'trigger', ids);
  });

schedule
  .command('delete')
  .description('delete schedules (a later `schedule apply` makes those the spec still asks for again)')
  .argument('[ids...]', 'schedule ids')
  .option('--all', 'every schedule steward made for this task queue')
  .action(async (ids: string[], o: { all?: boolean }) => {
    const { act } = await import('./commands/schedule');
    exitCode = await act(globals(), 'delete', ids, o);
  });

/** Connects, runs a decision on a halted rollout, and returns its exit code. */
async function rolloutDecision(
  decide: (client: Client, g: GlobalOptions) => Promise<{ code: number }>,
): Promise<number> {
  const g = globals();
  const { connectClient } = await import('./context');
  const client = await connectClient(g);
  try {
    return (await decide(client, g)).code;
  } finally {
    await client.connection.close();
  }
}

async function operation(
  op:
    | 'provision'
    | 'harden'
    | 'deploy'
    | 'drift'
    | 'memory'
    | 'converge'
    | 'backup'
    | 'restore'
    | 'drill'
    | 'upgrade'
    | 'verify',
  workflowType: string,
  hosts: string[],
  mode: 'apply' | 'plan',
  /** --concurrency, and --waves/--bake where the command has them. */
  flags: FleetFlags,
  extra?: Record<string, unknown>,
  /** Changes the spec for this run only (an upgrade's new image); `after` runs once the run succeeded. */
  change?: SpecChange,
): Promise<number> {
  const g = globals();
  const uiUrl = process.env.STEWARD_UI_URL;
  const cmd: OperationCommand = {
    operation: op,
    workflowType,
    hosts,
    mode,
    concurrency: flags.concurrency,
    ...(extra ? { extra } : {}),
    ...(uiUrl ? { uiUrl } : {}),
    ...(flags.waves !== undefined ? { waves: flags.waves } : {}),
    ...(flags.bake !== undefined ? { bake: flags.bake } : {}),
    ...(flags.verifyWaves ? { verifyWaves: true } : {}),
    ...(flags.requireApproval ? { requireApproval: true } : {}),
    ...(flags.approvalWindow !== undefined ? { approvalWindow: flags.approvalWindow } : {}),
  };
  // A worker of this build on this machine runs the command for us, already connected; else we connect ourselves.
  // A spec change lives in this process, so it is never handed over.
  if (!change) {
    const { viaLocalWorker } = await import('./local-worker');
    const code = await viaLocalWorker(g, cmd);
    if (code !== undefined) return code;
  }
  const { connectClient } = await import('./context');
  const { runOperationCommand } = await import('./operation-command');
  const { thisProcess } = await import('./operation');
  return runOperationCommand(
    g,
    cmd,
    async (use) => {
      const client = await connectClient(g);
      try {
        return await use(client);
      } finally {
        await client.connection.close();
      }
    },
    thisProcess(),
    change,
  );
}

/**
 * The workflow bundle `steward worker` is to run, from --workflow-bundle or else $STEWARD_WORKFLOW_BUNDLE, checked
 * (workers/bundle.ts); undefined when neither names one.
 * @throws UsageError naming the flag or variable when the file is missing, unreadable or not a workflow bundle.
 */
async function prebuiltBundle(flag: string | undefined): Promise<{ code: string } | undefined> {
  const fromEnv = process.env[WORKFLOW_BUNDLE_ENV];
  const [file, origin] =
    flag !== undefined ? [flag, '--workflow-bundle'] : fromEnv ? [fromEnv, WORKFLOW_BUNDLE_ENV] : [];
  if (file === undefined) return undefined;
  const { loadWorkflowBundle, WorkflowBundleError } = await import('../workers/bundle');
  try {
    const { code, differs } = await loadWorkflowBundle(file);
    if (differs.length > 0) {
      const shown = differs.slice(0, 5).join(', ') + (differs.length > 5 ? ` and ${differs.length - 5} more` : '');
      console.warn(
        `steward worker: ${origin} ${file} was built from other sources than this steward's (${shown} differ); ` +
          `it runs the workflow code it was built from. Rebuild it with \`steward bundle --out ${file}\`.`,
      );
    }
    return { code };
  } catch (err) {
    throw err instanceof WorkflowBundleError ? new UsageError(`${origin} ${file}: ${err.message}`) : err;
  }
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

async function main(): Promise<number> {
  installTerminalSafeConsole();
  try {
    await program.parseAsync(process.argv);
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    const { code, message } = failureExit(err);
    console.error(`steward: ${message}`);
    return code;
  }
}

process.exit(await main());
