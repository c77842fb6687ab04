/**
 * Chat channels as the running gateway has them: `openclaw channels status --probe --json`, run in the gateway
 * container, says per channel whether it is configured and running, its last error, and — the probe — whether the
 * channel's API accepted its credentials (Telegram: `getMe` with the bot token, answered with the bot's name). This
 * module reads that output as untrusted input (names checked, errors scrubbed: a failed call may print its URL, and
 * Telegram's carries the token) and judges it against the spec's `stack.integrations.telegram`. Pure.
 */
import { z } from 'zod';
import { scrubbed } from './host-text';
import { issuePath, printedJson } from './printed-json';
import type { Spec } from './schema';

/** One channel as the gateway reports it. */
export interface ChannelState {
  readonly configured: boolean;
  readonly running: boolean;
  /** `polling`, `webhook`, … */
  readonly mode?: string;
  readonly lastError?: string;
  /** The probe: did the channel's API accept the credentials. */
  readonly probe?: { readonly ok: boolean; readonly error?: string; readonly account?: string };
}

const word = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/);

/** What the gateway reported: channel id → its state. */
export interface ChannelsStatus {
  readonly channels: Readonly<Record<string, ChannelState>>;
}

/** {@link ChannelsStatus} from `openclaw channels status --probe --json`. @throws Error naming what does not fit. */
export function parseChannelsStatus(stdout: string): ChannelsStatus {
  const doc = z
    .object({
      channels: z.record(
        z.string(),
        z.object({
          configured: z.boolean().optional(),
          running: z.boolean().optional(),
          mode: z.string().nullable().optional(),
          lastError: z.string().nullable().optional(),
          probe: z
            .object({
              ok: z.boolean(),
              error: z.string().nullable().optional(),
              bot: z.object({ username: z.string().nullable().optional() }).nullable().optional(),
            })
            .nullable()
            .optional(),
        }),
      ),
    })
    .safeParse(printedJson(stdout));
  if (!doc.success) throw new Error(`unexpected output: ${issuePath(doc.error.issues)}`);
  const out: Record<string, ChannelState> = {};
  for (const [id, c] of Object.entries(doc.data.channels)) {
    if (!word.safeParse(id).success) continue;
    const mode = word.safeParse(c.mode);
    const account = z
      .string()
      .regex(/^[A-Za-z0-9_]{5,32}$/)
      .safeParse(c.probe?.bot?.username);
    out[id] = {
      configured: c.configured === true,
      running: c.running === true,
      ...(mode.success ? { mode: mode.data } : {}),
      ...(c.lastError ? { lastError: scrubbed(c.lastError, 160) } : {}),
      ...(c.probe
        ? {
            probe: {
              ok: c.probe.ok,
              ...(c.probe.error ? { error: scrubbed(c.probe.error, 160) } : {}),
              ...(account.success ? { account: account.data } : {}),
            },
          }
        : {}),
    };
  }
  return { channels: out };
}

/** The control of an enabled Telegram channel: `integrations.telegram`. */
export interface ChannelJudgement {
  readonly control: string;
  readonly expected: string;
  readonly observed: string;
  readonly pass: boolean;
}

/**
 * The spec's Telegram bot, when enabled: configured in the gateway, running, and its token accepted by the Bot API
 * (`getMe` answered). Nothing when the spec has no enabled Telegram channel.
 */
export function judgeTelegram(spec: Spec, status: ChannelsStatus | { error: string }): ChannelJudgement[] {
  const t = spec.stack.integrations.telegram;
  if (!t?.enabled) return [];
  const expected = 'running, its bot token accepted by the Bot API (getMe)';
  const judged = (observed: string, pass: boolean) => [{ control: 'integrations.telegram', expected, observed, pass }];
  if ('error' in status) return judged(`not probed: ${status.error}`, false);
  const c = status.channels.telegram;
  if (!c?.configured) return judged('not configured in the gateway', false);
  if (!c.running) return judged(`not running${c.lastError ? `: ${c.lastError}` : ''}`, false);
  if (!c.probe) return judged('running; the probe gave no answer', false);
  if (!c.probe.ok) return judged(`getMe failed: ${c.probe.error ?? 'no reason given'}`, false);
  return judged(`connected as @${c.probe.account ?? '(no name)'}${c.mode ? ` (${c.mode})` : ''}`, true);
}
