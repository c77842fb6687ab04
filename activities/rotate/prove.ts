/** The rotation's fourth phase: proof that the gateway serves the pending version, and (for its token) refuses the old. */
import { GATEWAY_SERVICE } from '../../model/render/stack';
import type { ControlResult } from '../../model/report';
import { isGatewayToken, isTelegramToken } from '../../model/rotation';
import { containerState, observeContainers } from '../deploy/stack';
import { channelControls, describeOutcome } from '../deploy/verify';
import { staged } from '../secrets-store';
import { RotationStateInvalid } from './errors';
import { observeSecret } from './host';
import { probeVersions } from './probe';
import { control, requireVersion, type Rotation } from './rotation';
import type { RotateStepInput, TestSecretResult } from './types';

/**
 * Proves the pending version: the live file is it, the gateway reads it and is healthy; for the gateway token, a
 * WebSocket `connect` through the proxy with the new value is accepted and one with the old value refused
 * (AUTH_TOKEN_MISMATCH); for the Telegram bot's token, the channel runs and the Bot API accepts it (getMe). Changes
 * nothing. A failing control makes the workflow roll back.
 */
export async function testSecret(rotation: Rotation, input: RotateStepInput): Promise<TestSecretResult> {
  const { session, spec, record } = rotation;
  const { host, secret } = input;
  const id = requireVersion(input);
  const pending = staged(record, 'pending');
  const current = staged(record, 'current');
  if (pending?.id !== id || !pending.sha256 || !current) {
    throw new RotationStateInvalid(host, `${secret} has no pending version ${id} to test`);
  }
  const [observed, containers] = await Promise.all([observeSecret(session, spec, secret), observeContainers(session)]);
  const versionOf = (sha: string | undefined) =>
    sha === undefined
      ? 'none'
      : (record.versions.find((v) => v.sha256 === sha && v.stages.length > 0)?.id ?? 'an unknown value');
  const health = containerState(containers, GATEWAY_SERVICE);
  const controls: ControlResult[] = [
    control(`secret.${secret}.live-version`, id, versionOf(observed.live), observed.live === pending.sha256),
    control(
      `secret.${secret}.consumer-version`,
      `${GATEWAY_SERVICE} reads ${id}`,
      `${GATEWAY_SERVICE} reads ${versionOf(observed.consumer)}`,
      observed.consumer === pending.sha256,
    ),
    control(`secret.${secret}.consumer-healthy`, 'running/healthy', health, health === 'running/healthy'),
  ];
  if (isGatewayToken(spec, secret)) {
    const p = await probeVersions(session, spec, secret, { new: id, old: current.id });
    const fresh = p.tokens.new;
    const old = p.tokens.old;
    controls.push(
      control(
        `secret.${secret}.new-accepted`,
        `accepted at wss://${spec.proxy.domain}${spec.proxy.websocketPath}`,
        describeOutcome(fresh),
        fresh?.outcome === 'accepted',
        `version ${id}`,
      ),
      control(
        `secret.${secret}.old-refused`,
        'refused (AUTH_TOKEN_MISMATCH)',
        describeOutcome(old),
        old?.outcome === 'refused' && old.code === 'AUTH_TOKEN_MISMATCH',
        `version ${current.id}`,
      ),
    );
  } else {
    if (isTelegramToken(spec, secret)) {
      // The bot's channel, restarted with the new token, connects: getMe answered for it.
      const bot = (await channelControls(session, spec, containers))[0];
      if (bot) controls.push({ ...bot, control: `secret.${secret}.new-accepted`, note: `version ${id}` });
    }
    controls.push({
      control: `secret.${secret}.old-refused`,
      expected: 'the old value refused by its issuer',
      observed: 'not tested',
      status: 'not-applicable',
      note: isTelegramToken(spec, secret)
        ? "a bot token is revoked by Telegram's BotFather; revoke the previous one there"
        : 'an external credential is revoked where it was issued; revoke the previous value there',
    });
  }
  return { changes: [], findings: [], controls };
}
