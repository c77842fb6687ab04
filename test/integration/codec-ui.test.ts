/**
 * The Temporal Web UI in headless Chromium (Debian's, from scripts/setup.sh; never a downloaded browser). A dev
 * server whose UI points at a codec server shows a run's input decoded once the browser has signed in at the codec
 * server and the UI sends credentials, as the README tells operators to do; without sign-in, after a wrong token,
 * and in a UI without the codec endpoint it shows only ciphertext. The browser reaches 127.0.0.1 only.
 *
 * Each test gets a browser context of its own (no cookies, no UI settings) and takes every step its claim needs
 * itself, so the tests pass alone, in any order, and none depends on what another left behind.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { Client, Connection } from '@temporalio/client';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { findFreePort, startDevServer, stopProcess, type DevServer } from '../../client/dev/temporal';
import { encryptingDataConverter } from '../../codec/aes-gcm';
import { generateKey, KeyRing } from '../../codec/keys';
import { startCodecServer, type CodecServer } from '../../codec/server';
import { APPROVAL_QUERY, DECIDE_UPDATE, shortDigest, type ApprovalState } from '../../model/approval';
import { createWorker } from '../../workers/worker';
import { steward } from '../support/cli';
import { startSimulators } from '../support/simulators';
import { makeKeyPair, writeSpec } from '../support/spec-files';
import { workflowBundle } from '../support/temporal';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
/** What an undecoded payload shows in the UI: its metadata, base64 as in proto3 JSON. */
const ENCRYPTED_MARK = Buffer.from('binary/encrypted').toString('base64');
const WORKFLOW_ID = 'codec-ui/probe';
/** The UI's own error page, shown when its server fails a page load. */
const UI_ERROR_PAGE = /Uh oh\. There's an error\./;
const CANARY = `gateway-token-${randomBytes(8).toString('hex')}`;

const ring = KeyRing.of([generateKey()]);
const token = randomBytes(24).toString('base64url');
let codec: CodecServer;
/** Its UI decodes through `codec`; `bare`'s UI has no codec endpoint. */
let server: DevServer;
let bare: DevServer;
let chromiumBrowser: Browser;
/** The current test's context: fresh for each test. */
let browser: BrowserContext;
/** Requests the current test's browser made: to 127.0.0.1 (let through) and elsewhere (refused). */
let local: string[] = [];
let outside: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: run scripts/setup.sh (apt package chromium)`);
  const [uiPort, barePort] = [await findFreePort(), await findFreePort()];
  codec = await startCodecServer({ ring, token, port: 0, origins: [`http://127.0.0.1:${uiPort}`] });
  [server, bare] = await Promise.all([
    startDevServer({
      port: await findFreePort(),
      uiPort,
      uiCodecEndpoint: codec.url,
      logFile: '.steward/codec-ui-test-server.log',
    }),
    startDevServer({ port: await findFreePort(), uiPort: barePort, logFile: '.steward/codec-ui-test-bare.log' }),
  ]);
  // The same run on both servers, its input encrypted as steward's clients encrypt it. No worker: the input is
  // in the first event either way.
  for (const { address } of [server, bare]) {
    const connection = await Connection.connect({ address });
    try {
      const client = new Client({ connection, dataConverter: encryptingDataConverter(ring) });
      await client.workflow.start('codecProbe', {
        workflowId: WORKFLOW_ID,
        taskQueue: 'codec-ui-nobody',
        args: [{ note: CANARY }],
      });
    } finally {
      await connection.close();
    }
  }

  chromiumBrowser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
  });
});

/** A browser context with nothing in it: no cookie from the codec server, no codec settings in the UI. */
beforeEach(async () => {
  local = [];
  outside = [];
  browser = await chromiumBrowser.newContext({
    // The codec settings panel is 540 px high under a sticky bar: leave it room.
    viewport: { width: 1440, height: 1400 },
  });
  await browser.route('**/*', (route) => {
    const url = new URL(route.request().url());
    if (url.hostname === '127.0.0.1') {
      local.push(url.origin);
      return route.continue();
    }
    outside.push(url.origin);
    return route.abort();
  });
});

afterEach(async () => {
  await browser?.close();
  // Whatever a test did, its browser sent nothing beyond 127.0.0.1.
  expect(outside).toEqual([]);
});

afterAll(async () => {
  await chromiumBrowser?.close();
  await Promise.all([server, bare].filter(Boolean).map((s) => stopProcess(s.pid)));
  await codec?.close();
});

/**
 * Opens the workflow's page; resolves once its Input section shows a payload, decoded or not, and, when the UI
 * has a codec endpoint, after the codec server has answered the UI. Returns the codec server's answers.
 */
async function openRun(
  page: Page,
  ui: string,
  viaCodec = true,
  workflowId = WORKFLOW_ID,
  shows?: RegExp,
): Promise<number[]> {
  const answers: number[] = [];
  // Awaited only after the page shows the run: a first load that fails (below) sends no decode request, its reload
  // does. Settled either way, so a page that never asks fails the test here, not as an unhandled rejection.
  const answered = viaCodec
    ? page
        .waitForResponse((r) => r.url().startsWith(`${codec.url}/decode`) && answers.push(r.status()) > 0, {
          timeout: 90_000,
        })
        .then(
          () => undefined,
          (err: unknown) => err,
        )
    : Promise.resolve(undefined);
  await page.goto(`${ui}/namespaces/default/workflows/${encodeURIComponent(workflowId)}`, { waitUntil: 'load' });
  // On a loaded machine the UI's server sometimes fails the page's first load (its error page, status 500): a
  // reload, as a person would, at most twice. A page that keeps failing still fails the test, with its text.
  let reloads = 0;
  const shown = async () => {
    const text = await pageText(page);
    if (UI_ERROR_PAGE.test(text) && reloads < 2) {
      reloads += 1;
      console.warn(`the UI at ${ui} showed its error page; reload ${reloads}:\n${text.slice(0, 600)}`);
      await page.reload({ waitUntil: 'load' });
    }
    return text;
  };
  await expect.poll(shown, { timeout: 60_000 }).toMatch(shows ?? new RegExp(`${CANARY}|${ENCRYPTED_MARK}`));
  const failed = await answered;
  if (failed) throw failed;
  return answers;
}

async function pageText(page: Page): Promise<string> {
  return page.locator('body').innerText();
}

/** Signs the browser in at the codec server's /login form. */
async function signIn(page: Page, withToken: string): Promise<string> {
  await page.goto(`${codec.url}/login`);
  await page.getByLabel('Token').fill(withToken);
  await page.getByRole('button', { name: 'Sign in' }).click();
  return pageText(page);
}

/**
 * What the README tells operators: in the UI's codec server settings, use the browser setting with the codec
 * endpoint and "Include cross-origin credentials" on, then apply. Keyboard where the panel's sticky bar covers it.
 */
async function sendCredentialsFromUi(page: Page): Promise<void> {
  await page.locator('[data-testid^="data-encoder-status"]').first().click();
  await page.getByTestId('data-encoder-title').waitFor();
  await page.getByTestId('override-accordion').click();
  await page.locator('#use-local-endpoint-radio').check({ force: true });
  await page.locator('#data-encoder-endpoint-input').fill(codec.url);
  const credentials = page.locator('#pass-access-credentials');
  if (!(await credentials.isChecked())) {
    await credentials.focus();
    await page.keyboard.press('Space');
  }
  expect(await credentials.isChecked()).toBe(true);
  await page.getByTestId('confirm-data-encoder-button').focus();
  await page.keyboard.press('Enter');
  await page.getByTestId('data-encoder-title').waitFor({ state: 'detached' });
}

describe('the Temporal Web UI and the codec server', () => {
  const expectCiphertext = async (page: Page) => {
    const text = await pageText(page);
    expect(text).toContain(ENCRYPTED_MARK);
    expect(text).not.toContain(CANARY);
  };

  it('shows ciphertext to a browser that has not signed in at the codec server', async () => {
    const page = await browser.newPage();
    expect(await openRun(page, server.uiUrl!)).toEqual([401]); // the UI asked and was refused
    await expectCiphertext(page);
    await page.close();
  });

  it('shows ciphertext to a signed-in browser while the UI does not send credentials', async () => {
    const page = await browser.newPage();
    expect(await signIn(page, token)).toContain('Signed in');
    expect(await openRun(page, server.uiUrl!)).toEqual([401]);
    await expectCiphertext(page);
    await page.close();
  });

  it('shows ciphertext after a sign-in with a wrong token, credentials or not', async () => {
    const page = await browser.newPage();
    expect(await signIn(page, `${token}-wrong`)).toContain('That token is wrong.');
    expect(await openRun(page, server.uiUrl!)).toEqual([401]);
    await expectCiphertext(page);
    await sendCredentialsFromUi(page);
    expect(await openRun(page, server.uiUrl!)).toEqual([401]);
    await expectCiphertext(page);
    await page.close();
  });

  it('shows the input decoded once signed in with the token and sending credentials', async () => {
    const page = await browser.newPage();
    expect(await signIn(page, token)).toContain('Signed in');
    await openRun(page, server.uiUrl!);
    await sendCredentialsFromUi(page);
    expect(await openRun(page, server.uiUrl!)).toEqual([200]);
    await expect.poll(() => pageText(page), { timeout: 60_000 }).toContain(CANARY);
    expect(await pageText(page)).not.toContain(ENCRYPTED_MARK);
    await page.close();
  });

  it('shows ciphertext, even to that browser, in a UI without the codec endpoint', async () => {
    // "That browser": signed in, and decoding in the UI that has the codec endpoint.
    const page = await browser.newPage();
    expect(await signIn(page, token)).toContain('Signed in');
    await openRun(page, server.uiUrl!);
    await sendCredentialsFromUi(page);
    expect(await openRun(page, server.uiUrl!)).toEqual([200]);
    await expect.poll(() => pageText(page), { timeout: 60_000 }).toContain(CANARY);
    expect(await openRun(page, bare.uiUrl!, false)).toEqual([]);
    await expectCiphertext(page);
    await page.close();
  });

  it('shows a run waiting for approval: its plan, the digest and the commands that decide it', async () => {
    // A real plan: provision of a fresh simulator, by steward's worker and CLI on this server, encrypted with `ring`.
    const keys = makeKeyPair();
    const fleet = await startSimulators(1, { authorizedKey: keys.publicKey, aptCache: true });
    const taskQueue = `codec-ui-approval-${randomBytes(3).toString('hex')}`;
    const { worker, pool, connection } = await createWorker({
      address: server.address,
      namespace: 'default',
      taskQueue,
      workflowBundle: await workflowBundle(),
      keys: ring,
    });
    const running = worker.run();
    const client = new Client({
      connection: await Connection.connect({ address: server.address }),
      dataConverter: encryptingDataConverter(ring),
    });
    try {
      const spec = writeSpec(keys, fleet.simulators, {}, 'codec-ui-approval.yaml');
      const started = await steward(
        [...['--spec', spec, '--address', server.address, '--task-queue', taskQueue, '--json', '--no-wait']].concat([
          'provision',
          '--require-approval',
        ]),
        {
          STEWARD_CODEC_KEYS: ring.keys.map((k) => `${k.id}=${k.key.toString('base64')}`).join(','),
          STEWARD_CODEC_KEY_FILE: undefined,
        },
      );
      expect(started.code, started.stderr).toBe(0);
      const { workflowId } = JSON.parse(started.stdout) as { workflowId: string };
      const handle = client.workflow.getHandle(workflowId);
      const waiting = await expect
        .poll(async () => (await handle.query<ApprovalState>(APPROVAL_QUERY).catch(() => undefined))?.status, {
          timeout: 120_000,
          interval: 500,
        })
        .toBe('waiting')
        .then(() => handle.query<ApprovalState>(APPROVAL_QUERY));
      const digest = shortDigest(waiting.plan!.digest);

      const page = await browser.newPage();
      expect(await signIn(page, token)).toContain('Signed in');
      await openRun(page, server.uiUrl!, true, workflowId, /Running|Waiting/);
      await sendCredentialsFromUi(page);
      await openRun(page, server.uiUrl!, true, workflowId, /User Metadata/);
      // The run's current details, under its User Metadata: the plan as the run published it, decoded.
      await page.getByText('User Metadata', { exact: true }).click();
      // The UI renders Markdown in a sandboxed frame of its own: the page's text and its frames'.
      const withFrames = async () => {
        const frames = await Promise.all(
          page.frames().map((f) =>
            f
              .locator('body')
              .innerText({ timeout: 2_000 })
              .catch(() => ''),
          ),
        );
        return frames.join('\n');
      };
      const shown = await expect
        .poll(withFrames, { timeout: 60_000 })
        .toMatch(/Waiting for approval/)
        .then(
          () => undefined,
          (err: unknown) => err,
        );
      await page.screenshot({ path: '.steward/approval-waiting-ui.png', fullPage: true });
      if (shown) throw shown;
      const text = await withFrames();
      expect(text).toContain(digest);
      expect(text).toContain(`steward approve ${workflowId} --plan ${digest}`);
      expect(text).toMatch(/install `?package:\S+/);
      await page.close();

      await handle.executeUpdate(DECIDE_UPDATE, {
        args: [{ decision: 'reject', plan: waiting.plan!.digest, by: 'codec-ui-test', reason: 'seen in the UI' }],
      });
      await expect(handle.result()).rejects.toThrow();
    } finally {
      worker.shutdown();
      await running;
      await pool.closeAll();
      await connection.close();
      await client.connection.close();
      await fleet.cleanup();
    }
  }, 300_000);

  it('sent nothing beyond 127.0.0.1', async () => {
    // Every kind of page the tests open: the codec server's sign-in, the UI with its codec endpoint, the bare UI.
    const page = await browser.newPage();
    expect(await signIn(page, token)).toContain('Signed in');
    expect(await openRun(page, server.uiUrl!)).toEqual([401]);
    expect(await openRun(page, bare.uiUrl!, false)).toEqual([]);
    await page.close();
    // The filter saw those requests (it can catch one that leaves), and let none go elsewhere.
    const origins = [codec.url, server.uiUrl!, bare.uiUrl!].map((u) => new URL(u).origin);
    expect([...new Set(local)]).toEqual(expect.arrayContaining(origins));
    expect(outside).toEqual([]);
  });
});
