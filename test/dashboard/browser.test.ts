/**
 * The dashboard in a real browser (Debian's chromium driven by playwright-core, one browser for the file) against
 * a real hub with a real agent and nginx: sign-in, the overview's numbers equal the API's, a renew walks to
 * `verified` on screen without a reload, a read session sees no buttons (and the API refuses it), a forged
 * cross-site POST is refused, a hostile certificate name renders as text, keyboard navigation, 1280 and 390 px
 * layouts. Screenshots of each view are written to docs/screenshots/ when CERTFLEET_SCREENSHOTS=1.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { AgentRunner } from '../../src/agent/run-agent.ts';
import { createLogger } from '../../src/core/log.ts';
import { hashToken } from '../../src/hub/auth.ts';
import { createCertificate, enrollTestAgent, eventually, subscribe } from '../helpers/agent.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { startNginxOnPlaceholder } from '../helpers/nginx.ts';
import { tempDir } from '../helpers/tmp.ts';

const XSS = '<img src=x onerror=alert(1)>';
const SHOTS =
  process.env.CERTFLEET_SCREENSHOTS === '1' ? join(import.meta.dirname, '../../docs/screenshots') : undefined;

let browser: Browser;
before(async () => {
  browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  });
});
after(() => browser?.close());

type T = Parameters<typeof startTestHub>[0];

async function newPage(t: T, hub: TestHub, width = 1280, height = 900): Promise<Page> {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width, height } });
  onCleanup(t, () => context.close());
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('dialog', (d) => problems.push(`dialog: ${d.message()}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !/401|403/.test(m.text())) problems.push(m.text());
  });
  onCleanup(t, () => assert.deepEqual(problems, [], 'script errors, dialogs or CSP violations on the page'));
  await page.goto(`${hub.url}/ui`);
  return page;
}

async function signIn(page: Page, token: string): Promise<void> {
  await page.fill('#token', token);
  await page.press('#token', 'Enter');
  await page.waitForSelector('[data-table="overview"]');
}

async function shot(page: Page, name: string): Promise<void> {
  if (!SHOTS) return;
  await mkdir(SHOTS, { recursive: true });
  await writeFile(join(SHOTS, `${name}.png`), await page.screenshot({ fullPage: true }));
}

describe('dashboard in chromium', { timeout: 120_000 }, () => {
  test('sign in; overview numbers equal the API; a renew walks to verified on screen without a reload', async (t) => {
    const hub = await startTestHub(t);
    const root = await tempDir(t, 'certfleet-dash-');
    const live = join(root, 'live');
    await mkdir(live);
    const nginx = await startNginxOnPlaceholder(t, live);
    const nginxCmd = nginx.command;
    await createCertificate(hub, 'web', ['web.test']);
    const web1 = await enrollTestAgent(t, hub, 'web1');
    const subId = await subscribe(hub, 'web1', 'web', {
      outputs: [
        { path: join(live, 'fullchain.pem'), format: 'fullchain', mode: '0644' },
        { path: join(live, 'key.pem'), format: 'key', mode: '0600' },
      ],
      configTest: `${nginxCmd} -t`,
      // The pause keeps the deployment `installed` long enough for the page to show a state between two
      // `verified`s; without it a fast machine can finish the deploy before the page renders any of them.
      reload: `sleep 2 && ${nginxCmd} -s reload`,
      verify: { host: '127.0.0.1', port: nginx.port, sni: 'web.test' },
    });
    const runner = new AgentRunner({ stateDir: web1.stateDir, logger: createLogger({ level: 'silent' }) });
    await runner.start();
    onCleanup(t, () => runner.stop());
    const certId = (await hub.ctx.store.getCertificate('web'))!.id;
    const v1 = (await hub.ctx.store.currentVersion(certId))!;
    await eventually(
      async () => (await hub.ctx.store.getDeployment(subId, v1.id))?.state === 'verified',
      30_000,
      'v1 verified',
    );

    const page = await newPage(t, hub);
    await signIn(page, hub.token);
    // The same numbers as the API's lists.
    const certs = await hub.client.get<unknown[]>('/api/v1/certificates');
    const endpoints = await hub.client.get<unknown[]>('/api/v1/endpoints');
    assert.equal(await page.textContent('[data-count="certificates"]'), String(certs.length));
    assert.equal(await page.textContent('[data-count="endpoints"]'), String(endpoints.length));
    await shot(page, 'overview');

    await page.click('a[href="#/certificates/web"]');
    await page.waitForSelector('section.deployment[data-endpoint="web1"] .badge[data-state="verified"]');
    await shot(page, 'certificate');
    // Watch the states the page shows from here on, without reloading it.
    await page.evaluate(() => {
      const seen: string[] = [];
      (window as unknown as { seen: string[] }).seen = seen;
      new MutationObserver(() => {
        const s = document
          .querySelector('section.deployment[data-endpoint="web1"] h3 .badge')
          ?.getAttribute('data-state');
        if (s && seen.at(-1) !== s) seen.push(s);
      }).observe(document.getElementById('view')!, { childList: true, subtree: true });
    });
    const navigations: string[] = [];
    page.on('framenavigated', (f) => navigations.push(f.url()));
    await page.click('button[data-action="renew"]');
    await page.waitForFunction(
      () => {
        const seen = (window as unknown as { seen: string[] }).seen;
        return seen.length > 1 && seen.at(-1) === 'verified';
      },
      undefined,
      { timeout: 30_000 },
    );
    const seen = await page.evaluate(() => (window as unknown as { seen: string[] }).seen);
    t.diagnostic(`states on screen: ${seen.join(' → ')}`);
    assert.ok(
      seen.some((s) => ['pending', 'delivered', 'installed', 'reloaded'].includes(s)),
      seen.join(','),
    );
    assert.equal(seen.at(-1), 'verified');
    assert.deepEqual(
      navigations.filter((u) => !u.includes('#')),
      [],
      'the page did not reload',
    );
    const v2 = (await hub.ctx.store.currentVersion(certId))!;
    assert.notEqual(v2.id, v1.id);
    assert.equal(
      await page.getAttribute('section.deployment[data-endpoint="web1"] td .mono[title]', 'title'),
      v2.fingerprint,
    );

    // The other views, for the screenshots and to see they render.
    await page.click('a[href="#/endpoints/web1"]');
    await page.waitForSelector('h1 >> text=Endpoint');
    await shot(page, 'endpoint');
    await page.click('header a[href="#/timeline"]');
    await page.waitForSelector('svg.chart g[data-certificate="web"]');
    await shot(page, 'timeline');
    await page.click('header a[href="#/events"]');
    await page.waitForSelector('[data-table="events"] tbody tr');
    await shot(page, 'events');
    await page.click('header a[href="#/alerts"]');
    await page.waitForSelector('h1 >> text=Alerts');
    await shot(page, 'alerts');

    // Sign out: back to the form, and the session is gone on the hub.
    await page.click('#signout');
    await page.waitForSelector('#token');
    const after = await page.evaluate(async () => (await fetch('/ui/api/overview')).status);
    assert.equal(after, 401);
  });

  test('a read session sees no buttons and the API refuses it; a hostile name renders as text', async (t) => {
    const hub = await startTestHub(t);
    // The API refuses such a name, so it is written to the store directly: the page must cope with any text.
    await hub.ctx.store.createCertificate(
      { name: XSS, sans: [XSS], keyType: 'ecdsa-p256', issuer: 'internal', lifetimeDays: 30 },
      'test',
    );
    await hub.ctx.store.createCertificate(
      { name: 'xss', sans: [XSS], keyType: 'ecdsa-p256', issuer: 'internal', lifetimeDays: 30 },
      'test',
    );
    await hub.client.post('/api/v1/endpoints', { name: 'e1', kind: 'agent' });
    const readToken = `cfr_${randomBytes(16).toString('hex')}`;
    await hub.ctx.store.createToken({ kind: 'read', name: 'viewer', hash: hashToken(readToken) }, 'test');
    const page = await newPage(t, hub);
    await signIn(page, readToken);
    const names = await page.locator('[data-table="overview"] tbody a').allTextContents();
    assert.ok(names.includes(XSS), `the hostile name is listed as text: ${names.join(', ')}`);
    assert.equal(await page.locator('img').count(), 0, 'the name did not become an element');
    await page.goto(`${hub.url}/ui#/certificates/xss`);
    await page.waitForSelector('h1 >> text=Certificate');
    assert.equal(
      await page.locator('button[data-action]').count(),
      0,
      'no action buttons for a read session',
    );
    assert.equal(await page.locator('img').count(), 0, 'the SAN did not become an element');
    assert.ok((await page.textContent('dl.facts dd.mono'))!.includes(XSS), 'the SAN is shown as text');
    const status = await page.evaluate(async () => {
      const who = await (await fetch('/ui/api/session')).json();
      const r = await fetch('/ui/api/certificates/xss/renew', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': who.csrf },
        body: '{}',
      });
      return r.status;
    });
    assert.equal(status, 403);

    // A forged cross-site POST: another origin's page submits a form to the hub with the browser's cookies.
    const admin = await newPage(t, hub);
    await signIn(admin, hub.token);
    const before = (await hub.ctx.store.listEvents({ limit: 1000 })).length;
    const evil = await admin.context().newPage();
    await evil.setContent(
      `<form method="POST" action="${hub.url}/ui/api/certificates/xss/renew" enctype="text/plain">` +
        `<input name='{"a":"' value='"}'></form>`,
    );
    const [response] = await Promise.all([
      evil.waitForResponse((r) => r.url().includes('/renew')),
      evil.evaluate(() => (document.querySelector('form') as HTMLFormElement).submit()),
    ]);
    assert.ok([401, 403].includes(response.status()), `forged POST answered ${response.status()}`);
    assert.equal((await hub.ctx.store.listEvents({ limit: 1000 })).length, before, 'nothing happened');
  });

  test('keyboard navigation, and layouts at 1280 and 390 px', async (t) => {
    const hub = await startTestHub(t);
    for (const n of ['alpha', 'beta', 'gamma']) await createCertificate(hub, n);
    const page = await newPage(t, hub);
    // Sign in with the keyboard alone: the form puts the focus in the token field itself.
    await page.waitForSelector('#token:focus');
    await page.keyboard.type(hub.token);
    await page.keyboard.press('Enter');
    await page.waitForSelector('[data-table="overview"]');
    // Tab to the first certificate link and follow it with Enter.
    let reached = '';
    for (let i = 0; i < 60 && !reached.startsWith('#/certificates/'); i++) {
      await page.keyboard.press('Tab');
      reached = (await page.evaluate(() => document.activeElement?.getAttribute('href'))) ?? '';
    }
    assert.match(reached, /^#\/certificates\//, 'a certificate link is reachable with Tab');
    await page.keyboard.press('Enter');
    await page.waitForSelector('h1 >> text=Certificate');
    const focusVisible = await page.evaluate(() => document.activeElement?.id);
    assert.equal(focusVisible, 'view', 'focus moves to the new view');

    for (const width of [1280, 390]) {
      const p = await newPage(t, hub, width, 800);
      await signIn(p, hub.token);
      const overflow = await p.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      assert.ok(overflow <= 0, `${width} px: the page scrolls sideways by ${overflow} px`);
      const box = await p.locator('[data-table="overview"] a').first().boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= width, `${width} px: the first link is on screen`);
      await shot(p, `overview-${width}`);
    }
  });
});
