/**
 * verify: a deployed stack proven working — the controls a deploy's verification runs, on demand or on a schedule:
 * TLS and the canvas through the proxy, WebSocket auth with the token, a wrong one and none, the gateway port closed
 * from outside, OpenClaw's security audit and model routing, each enabled MCP server reached with its tools listed,
 * the Telegram bot connected, the Google OAuth client's plugin loaded, and one agent turn answered by a model of the
 * spec's chain (which calls each server's verifyTool). Every failing control fails the run, those a deploy only
 * reports included (a provider's outage); nothing is applied, restarted or rolled back (that is deploy's and drift
 * repair's work) — the agent turn is the one thing it does through the gateway.
 */
import { ApplicationFailure } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { HostReport } from '../model/report';
import { HostOperation, type HostOperationInput } from './host-operation';
import { describeFailedControls } from './memory';
import { HOST_INSPECT, HOST_STEP } from './options';
import { proxySteps } from './retry';

const { inspectHost } = proxySteps<Activities>(HOST_INSPECT);
const { checkStack } = proxySteps<Activities>(HOST_STEP);

export const VERIFY_STEPS = ['inspectHost', 'checkStack'];

export async function verifyHost(input: HostOperationInput): Promise<HostReport> {
  const op = new HostOperation('verify', input, VERIFY_STEPS);
  return op.run(async () => {
    const facts = await op.step('inspectHost', inspectHost);
    if (!input.spec.hosts.find((h) => h.name === input.host)?.hostKey) op.pinHostKey(facts.hostKey);
    const { controls } = await op.step('checkStack', checkStack);
    const failed = describeFailedControls(controls);
    if (failed) throw ApplicationFailure.nonRetryable(`verification failed: ${failed}`, 'VerificationFailed');
  });
}
