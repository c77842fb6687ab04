/**
 * MCP servers as the gateway reaches them: `openclaw mcp probe --json`, run in the gateway container, starts (or
 * connects to) every configured server the way an agent turn would and lists its tools. This module reads that
 * output as untrusted input — server names, tool counts and tool names, and each failure's message, bounded and
 * printable — and judges it against the spec's `stack.mcp.servers`: every enabled server connected, its tools listed.
 * Pure.
 */
import { z } from 'zod';
import { printable } from './host-text';
import { issuePath, printedJson } from './printed-json';
import type { Spec } from './schema';

/** What one probe showed. */
export interface McpProbe {
  /** Server name → how many tools it listed. */
  readonly servers: Readonly<Record<string, number>>;
  /** Server name → its tools' names (OpenClaw names them `<server>__<tool>`; the prefix is taken off). */
  readonly tools: Readonly<Record<string, readonly string[]>>;
  /** Server name → why it could not be reached. */
  readonly failures: Readonly<Record<string, string>>;
}

/** A pass or fail per enabled server, named `mcp.servers.<name>`. */
export interface McpJudgement {
  readonly control: string;
  readonly expected: string;
  readonly observed: string;
  readonly pass: boolean;
}

const name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/);
/** Shown tool names per server; the rest are counted. */
const SHOWN_TOOLS = 5;

/** Printable, one line, at most 200 characters: a message that came from the host. */
function clean(message: string): string {
  return printable(message, 200) || '(no message)';
}

/** {@link McpProbe} from `openclaw mcp probe --json` (printed whatever its exit code). @throws Error naming the fault. */
export function parseMcpProbe(stdout: string): McpProbe {
  const doc = z
    .object({
      servers: z.record(z.string(), z.object({ tools: z.number().int().min(0).max(100_000) })).optional(),
      tools: z.array(z.string()).max(10_000).optional(),
      diagnostics: z
        .array(z.object({ serverName: z.string().optional(), message: z.string().optional() }))
        .max(1000)
        .optional(),
    })
    .safeParse(printedJson(stdout));
  if (!doc.success) throw new Error(`unexpected output: ${issuePath(doc.error.issues)}`);
  const servers: Record<string, number> = {};
  const tools: Record<string, string[]> = {};
  const failures: Record<string, string> = {};
  // openclaw.json may name servers the spec does not (`stack.settings` merges into it): a name that is not one of
  // steward's is no server the spec can enable, and is passed over rather than spoiling the others.
  for (const [server, s] of Object.entries(doc.data.servers ?? {})) {
    if (!name.safeParse(server).success) continue;
    servers[server] = s.tools;
    tools[server] = [];
  }
  // A tool is `<server>__<tool>`, and a server's name may hold `__` itself: the longest listed server that prefixes it.
  const byLength = Object.keys(tools).sort((a, b) => b.length - a.length);
  for (const tool of doc.data.tools ?? []) {
    const server = byLength.find((s) => tool.startsWith(`${s}__`) && tool.length > s.length + 2);
    if (server !== undefined) tools[server]!.push(clean(tool.slice(server.length + 2)).slice(0, 100));
  }
  for (const d of doc.data.diagnostics ?? []) {
    if (d.serverName !== undefined && name.safeParse(d.serverName).success) {
      failures[d.serverName] = clean(d.message ?? '');
    }
  }
  return { servers, tools, failures };
}

/** The enabled servers of the spec, by name. */
export function enabledMcpServers(spec: Spec): string[] {
  return Object.entries(spec.stack.mcp.servers)
    .filter(([, s]) => s.enabled)
    .map(([n]) => n)
    .sort();
}

/** Each enabled server against what the probe showed: connected, and at least one tool listed. */
export function judgeMcp(spec: Spec, probe: McpProbe | { readonly error: string }): McpJudgement[] {
  const expected = 'connected, tools listed';
  return enabledMcpServers(spec).map((server): McpJudgement => {
    const control = `mcp.servers.${server}`;
    if ('error' in probe) return { control, expected, observed: `not probed: ${probe.error}`, pass: false };
    const failure = probe.failures[server];
    if (failure !== undefined) return { control, expected, observed: `not connected: ${failure}`, pass: false };
    const count = probe.servers[server];
    if (count === undefined) return { control, expected, observed: 'not in the probe', pass: false };
    if (count === 0) return { control, expected, observed: 'tool list empty', pass: false };
    const names = probe.tools[server] ?? [];
    const shown = names.slice(0, SHOWN_TOOLS).join(', ');
    const more = count - Math.min(names.length, SHOWN_TOOLS);
    return {
      control,
      expected,
      observed: `${count} tool${count === 1 ? '' : 's'} listed${shown ? `: ${shown}${more > 0 ? ` (+${more} more)` : ''}` : ''}`,
      pass: true,
    };
  });
}
