/**
 * The overview's emergency panel in a real browser (Debian's chromium via playwright-core): a running campaign
 * shows issued / delivered / reloaded / verified / failed, fed by the campaign service the CLI reads, and the
 * counts move over the live stream without a reload.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { createCertificate, subscribe } from '../helpers/agent.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { startTestHub } from '../helpers/hub.ts';

let browser: Browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  });
});
after(() => browser?.close());

test(
  'a running campaign is on the overview; its counts follow the live stream',
  { timeout: 120_000 },
  async (t) => {
    const hub = await startTestHub(t);
    await createCertificate(hub, 'web', ['web.test']);
    await hub.client.post('/api/v1/endpoints', { name: 'web1', kind: 'agent' });
    const subId = await subscribe(hub, 'web1', 'web', {
      outputs: [{ path: '/tmp/certfleet-panel-never-written.pem', format: 'fullchain' }],
    });
    await hub.client.post('/api/v1/emergency/campaigns', { all: true, reason: 'CA incident 7' });

    const context = await browser.newContext({ ignoreHTTPSErrors: true });
    onCleanup(t, () => context.close());
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    await page.goto(`${hub.url}/ui`);
    await page.fill('#token', hub.token);
    await page.press('#token', 'Enter');
    await page.waitForSelector('[data-campaign="issued"]');
    assert.match((await page.textContent('.emergency h2')) ?? '', /Emergency reissue running: CA incident 7/);
    assert.equal(await page.textContent('[data-campaign="issued"]'), '0/1');

    // The planner (off in test hubs) reissues; the agent's report moves the new deployment: the page follows.
    await hub.planner!.runOnce();
    await page.waitForFunction(
      () => document.querySelector('[data-campaign="issued"]')?.textContent === '1/1',
    );
    const v2 = (await hub.ctx.store.currentVersion((await hub.ctx.store.getCertificate('web'))!.id))!;
    await hub.ctx.store.transitionDeployment(subId, v2.id, 'delivered', {}, 'agent:web1');
    await page.waitForFunction(
      () => document.querySelector('[data-campaign="delivered"]')?.textContent === '1/1',
    );
    assert.equal(await page.textContent('[data-campaign="verified"]'), '0/1');
    assert.deepEqual(problems, []);
  },
);
