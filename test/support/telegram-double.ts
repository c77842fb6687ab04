/**
 * Test double for Telegram's Bot API: test/doubles/telegram.ts on the stack's network, so the spec's
 * `integrations.telegram.apiRoot` can name it. The test hands it a user's message and reads the replies the bot sent.
 */
import type { Simulator } from '../../client/dev/simulator';
import { callDouble, startDouble, type StackDouble } from './stack-double';

export const TELEGRAM_DOUBLE: StackDouble = { name: 'telegram-double', script: 'telegram.ts', port: 8081 };
/** The API root a spec's Telegram channel points at to reach the double. */
export const TELEGRAM_DOUBLE_URL = `http://${TELEGRAM_DOUBLE.name}:${TELEGRAM_DOUBLE.port}`;

export function startTelegramDouble(sim: Simulator, image: string): Promise<void> {
  return startDouble(sim, TELEGRAM_DOUBLE, image);
}

/** Queues a private message from user `from` to the bot, as Telegram delivers one to a polling bot. */
export async function messageBot(sim: Simulator, from: number, text: string): Promise<void> {
  if ((await callDouble(sim, TELEGRAM_DOUBLE, '/control/message', { from, text })) === undefined)
    throw new Error('Telegram double: message refused');
}

/** Messages the bot sent, oldest first. */
export async function botSent(sim: Simulator): Promise<{ chat: number; text: string }[]> {
  const out = await callDouble(sim, TELEGRAM_DOUBLE, '/sent');
  if (out === undefined) throw new Error('Telegram double does not answer');
  return JSON.parse(out) as { chat: number; text: string }[];
}

/** Bot API calls, oldest first, each with the digest of the token it used (keyDigest of llm-double.ts). */
export async function botCalls(sim: Simulator): Promise<{ method: string; token: string }[]> {
  const out = await callDouble(sim, TELEGRAM_DOUBLE, '/calls');
  if (out === undefined) throw new Error('Telegram double does not answer');
  return JSON.parse(out) as { method: string; token: string }[];
}
