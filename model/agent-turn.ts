/**
 * One agent turn through the running gateway, the way a user's message reaches a model: `openclaw agent --json` in
 * the gateway container sends a short message to the default agent, and OpenClaw routes it along the spec's chain —
 * the primary model, then each fallback while the one before fails; the message asks for one call of each MCP server's
 * `verifyTool`. This module writes that message, reads the command's output as untrusted input and judges it against
 * the spec: which model answered, why the ones before it did not, and which tools executed.
 * Kept are model references (checked; one outside the spec's chain only by its provider), HTTP statuses, OpenClaw's
 * failure reason codes and a scrubbed excerpt of the reply — and, when OpenClaw names no model in a failure, its
 * message scrubbed (no run of 16 or more characters: a provider's error may echo a key). Pure.
 */
import { z } from 'zod';
import { scrubbed } from './host-text';
import { issuePath, printedJson } from './printed-json';
import type { Finding } from './report';
import { expectedRouting } from './routing';
import type { Spec } from './schema';

/** A model that was asked and did not answer. */
export interface FailedAttempt {
  /** `<provider>/<model>`. */
  readonly model: string;
  /** The provider's HTTP status, when it sent one. */
  readonly status?: number;
  /** OpenClaw's classification: `server_error`, `timeout`, `auth`, `rate_limit`, … */
  readonly reason?: string;
}

/** What one turn came to. */
export interface AgentTurn {
  /** `<provider>/<model>` that answered; null when none did. */
  readonly answeredBy: string | null;
  /** The models asked before it (or all of them, when none answered), in order. */
  readonly failed: readonly FailedAttempt[];
  /** The start of the reply, printable, one line (empty when there was none). */
  readonly reply: string;
  /** Why the turn did not complete, when OpenClaw gave no per-model account. */
  readonly failure?: string;
  /** Tools that ran and returned in the turn (OpenClaw's names: `<server>__<tool>` for an MCP server's). */
  readonly toolsCalled?: readonly string[];
}

/** A tool the turn asks the agent to call: an MCP server's `verifyTool`, by the name the gateway gives it. */
export interface ToolCheck {
  readonly server: string;
  /** `<server>__<tool>`. */
  readonly tool: string;
  readonly arguments: Readonly<Record<string, unknown>>;
}

/** The `verifyTool` of each enabled MCP server of the spec. */
export function toolChecks(spec: Spec): ToolCheck[] {
  return Object.entries(spec.stack.mcp.servers)
    .filter(([, s]) => s.enabled && s.verifyTool)
    .map(([server, s]) => ({ server, tool: `${server}__${s.verifyTool!.name}`, arguments: s.verifyTool!.arguments }));
}

/**
 * The message of the verification turn: a reply asked for, and before it one call of each tool to check, as a list
 * a model can follow (`- <tool> <JSON arguments>`; MCP tools are reached through OpenClaw's `tool_call`).
 */
export function turnMessage(checks: readonly ToolCheck[]): string {
  const intro = 'This is a health check by steward, the operator tool.';
  if (checks.length === 0) return `${intro} Reply with the single word OK.`;
  return [
    `${intro} First call each of these tools once, with exactly these JSON arguments (through tool_call where a tool is not offered directly):`,
    ...checks.map((c) => `- ${c.tool} ${JSON.stringify(c.arguments)}`),
    'Then reply with the single word OK.',
  ].join('\n');
}

const modelRef = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\/[A-Za-z0-9._:/@-]{1,200}$/);
const reasonCode = z.string().regex(/^[a-z][a-z_]{0,39}$/);
const toolName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$/);
/** A model reference, as it opens each failure in OpenClaw's "All models failed" message. */
const FAILED_SEGMENT =
  /^([A-Za-z0-9][A-Za-z0-9._-]{0,99}\/[A-Za-z0-9._:/@-]{1,200}): (?:(\d{3}) )?.*\(([a-z][a-z_]{0,39})\)/;

function attempt(a: { provider?: unknown; model?: unknown; status?: unknown; reason?: unknown }): FailedAttempt | null {
  const ref = modelRef.safeParse(`${String(a.provider)}/${String(a.model)}`);
  if (!ref.success) return null;
  const status = typeof a.status === 'number' && Number.isInteger(a.status) && a.status >= 100 && a.status < 600;
  const reason = reasonCode.safeParse(a.reason);
  return {
    model: ref.data,
    ...(status ? { status: a.status as number } : {}),
    ...(reason.success ? { reason: reason.data } : {}),
  };
}

/**
 * {@link AgentTurn} from `openclaw agent --json` (printed whatever its exit code: `{status: "ok", result}` or
 * `{ok: false, error}`). @throws Error naming what does not fit.
 */
export function parseAgentTurn(stdout: string): AgentTurn {
  const doc = z
    .union([
      z.object({
        status: z.string(),
        result: z.object({
          payloads: z
            .array(z.object({ text: z.string().nullable().optional() }))
            .max(1000)
            .optional(),
          meta: z.object({
            agentMeta: z.object({
              provider: z.string(),
              model: z.string(),
              fallbackAttempts: z.array(z.object({}).passthrough()).max(100).optional(),
              terminalReceipt: z.object({ successfulToolNames: z.array(z.unknown()).max(1000).optional() }).optional(),
            }),
          }),
        }),
      }),
      z.object({ ok: z.literal(false), error: z.object({ message: z.string() }) }),
    ])
    .safeParse(printedJson(stdout));
  if (!doc.success) throw new Error(`unexpected output: ${issuePath(doc.error.issues) || 'not a turn'}`);
  if ('ok' in doc.data) {
    const message = doc.data.error.message;
    const list = /All models failed \(\d+\): (.*)$/s.exec(message)?.[1];
    const failed = (list ?? '')
      .split(' | ')
      .map((segment) => FAILED_SEGMENT.exec(segment))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => ({ model: m[1]!, ...(m[2] ? { status: Number(m[2]) } : {}), reason: m[3]! }));
    return failed.length > 0
      ? { answeredBy: null, failed, reply: '' }
      : { answeredBy: null, failed: [], reply: '', failure: scrubbed(message, 160) || 'no message' };
  }
  const { result, status } = doc.data;
  if (status !== 'ok') {
    return { answeredBy: null, failed: [], reply: '', failure: `the run ended ${scrubbed(status, 40) || 'not ok'}` };
  }
  const meta = result.meta.agentMeta;
  const answeredBy = modelRef.safeParse(`${meta.provider}/${meta.model}`);
  if (!answeredBy.success) throw new Error('unexpected output: result.meta.agentMeta.model');
  const reply = scrubbed(
    (result.payloads ?? [])
      .map((p) => p.text ?? '')
      .join(' ')
      .trim(),
    80,
  );
  const failed = (meta.fallbackAttempts ?? []).map(attempt).filter((a): a is FailedAttempt => a !== null);
  const toolsCalled = (meta.terminalReceipt?.successfulToolNames ?? []).filter(
    (n): n is string => toolName.safeParse(n).success,
  );
  return { answeredBy: answeredBy.data, failed, reply, ...(toolsCalled.length ? { toolsCalled } : {}) };
}

/**
 * A model as a report names it: by its reference when the spec's chain has it; otherwise only its provider, scrubbed
 * (a hostile gateway could name a "model" after a token).
 */
function named(model: string, chain: readonly string[]): string {
  if (chain.includes(model)) return model;
  return `a model of ${scrubbed(model.slice(0, model.indexOf('/')), 40) || 'another provider'} outside the chain`;
}

/** `openrouter/x: HTTP 500 (server_error)` for a person. */
export function describeAttempt(a: FailedAttempt, chain: readonly string[]): string {
  const why = [a.status !== undefined ? `HTTP ${a.status}` : '', a.reason ? `(${a.reason})` : '']
    .filter(Boolean)
    .join(' ');
  return `${named(a.model, chain)}: ${why || 'failed'}`;
}

/** Reasons that say the provider, not the configuration, failed: an outage, a timeout, a limit. */
const PROVIDER_SIDE = new Set(['server_error', 'timeout', 'rate_limit', 'overloaded']);

/** The chain the spec routes the default agent along: primary first. Empty when the spec names no primary. */
export function expectedChain(spec: Spec): string[] {
  const e = expectedRouting(spec);
  return e.primary ? [e.primary, ...(e.fallbacks ?? [])] : [];
}

/** The judgement of one turn: the control's observed text and outcome, and a finding when the primary failed. */
export interface TurnJudgement {
  readonly expected: string;
  readonly observed: string;
  readonly pass: boolean;
  readonly findings: readonly Finding[];
  /**
   * No model answered, and each failed for a provider-side reason (5xx, timeout, rate limit): nothing a release
   * changed, so a deploy's verification does not hold it against the release.
   */
  readonly providerSide?: true;
}

/**
 * A turn passes when a model of the spec's chain answered with some text. Answered by a fallback still passes (the
 * chain did its job), with a finding naming the primary's failure; answered by a model outside the chain fails
 * (the gateway routes somewhere the spec does not); no answer fails naming the chain and each model's failure.
 */
export function judgeAgentTurn(spec: Spec, turn: AgentTurn | { error: string }): TurnJudgement {
  const chain = expectedChain(spec);
  const expected = `a reply from ${chain[0] ?? 'the default model'}${chain.length > 1 ? `, or a fallback (${chain.slice(1).join(', ')})` : ''}`;
  const fail = (observed: string) => ({ expected, observed, pass: false, findings: [] });
  if (!('answeredBy' in turn)) return fail(`no turn: ${turn.error}`);
  const t = turn;
  const failures = t.failed.map((a) => describeAttempt(a, chain)).join('; ');
  if (t.answeredBy === null) {
    const asked = chain.length > 0 ? `no model of the chain (${chain.join(' then ')})` : 'no model';
    const judged = fail(`${asked} answered: ${failures || t.failure || 'no reason given'}`);
    const providerSide =
      t.failed.length > 0 &&
      t.failed.every(
        (a) =>
          (a.reason && PROVIDER_SIDE.has(a.reason)) ||
          (a.status !== undefined && (a.status >= 500 || a.status === 429)),
      );
    return providerSide ? { ...judged, providerSide: true } : judged;
  }
  if (chain.length > 0 && !chain.includes(t.answeredBy)) {
    return fail(`answered by ${named(t.answeredBy, chain)}${failures ? ` (after ${failures})` : ''}`);
  }
  if (t.reply === '') return fail(`${t.answeredBy} answered with no text`);
  const replied = `"${t.reply}"`;
  if (t.answeredBy === chain[0] || chain.length === 0) {
    return { expected, observed: `answered by ${t.answeredBy}: ${replied}`, pass: true, findings: [] };
  }
  return {
    expected,
    observed: `answered by fallback ${t.answeredBy} after ${failures || `${chain[0]} failed`}: ${replied}`,
    pass: true,
    findings: [
      {
        id: 'providers.primary-failing',
        severity: 'medium',
        message: `the primary model did not answer (${failures || chain[0]}); fallback ${t.answeredBy} did`,
        resource: 'routing:default-model',
      },
    ],
  };
}

/** One control per tool to check: `mcp.servers.<name>.call`. */
export interface ToolJudgement {
  readonly control: string;
  readonly expected: string;
  readonly observed: string;
  readonly status: 'pass' | 'fail' | 'not-applicable';
  /** A model answered and did not call the tool: its choice, not proof the tool is broken. */
  readonly skippedByModel?: true;
}

/**
 * Each server's `verifyTool` called and returned in the turn; not applicable when no turn runs (`verifyTurn: false`
 * or no primary model), failed when the turn failed or the tool did not run.
 */
export function judgeToolCalls(spec: Spec, turn: AgentTurn | { error: string } | { skipped: string }): ToolJudgement[] {
  return toolChecks(spec).map((c) => {
    const expected = `${c.tool} called by the agent turn and returned`;
    const control = `mcp.servers.${c.server}.call`;
    if ('skipped' in turn)
      return { control, expected, observed: `no agent turn: ${turn.skipped}`, status: 'not-applicable' };
    if (!('answeredBy' in turn)) return { control, expected, observed: `no agent turn: ${turn.error}`, status: 'fail' };
    if (turn.answeredBy === null) return { control, expected, observed: 'no model answered the turn', status: 'fail' };
    const ran = turn.toolsCalled ?? [];
    if (ran.includes(c.tool)) return { control, expected, observed: 'called by the agent, returned', status: 'pass' };
    // Tool names are the host's text: only a count of the others.
    const others = ran.length === 1 ? '1 other tool' : `${ran.length} other tools`;
    return { control, expected, observed: `not called (the turn ran ${others})`, status: 'fail', skippedByModel: true };
  });
}
