/**
 * Dashboard sign-in and safety over real HTTPS: the browser holds only an opaque HttpOnly, Secure,
 * SameSite=Strict session cookie; the cookie works on the dashboard's routes and nowhere else (and they take
 * nothing else); every change needs the session's CSRF token and the hub's own Origin; a read session cannot act;
 * signing out ends the session and its live stream; every /ui answer carries a strict CSP.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { Agent, request } from 'node:https';
import { describe, test } from 'node:test';
import { hashToken } from '../../src/hub/auth.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { rawRequest, type RawAnswer } from '../helpers/raw-request.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

type Answer = RawAnswer;

function send(
  hub: TestHub,
  agent: Agent,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: unknown,
): Promise<Answer> {
  return rawRequest(hub.url, {
    path,
    method,
    agent,
    ca: hub.caPem,
    headers,
    ...(body !== undefined ? { json: body } : {}),
  });
}

async function fixture(t: Parameters<typeof startTestHub>[0]) {
  const hub = await startTestHub(t);
  const agent = new Agent({ keepAlive: true });
  onCleanup(t, () => agent.destroy());
  await hub.client.post('/api/v1/certificates', { name: 'web', sans: ['web.example.test'] });
  const readToken = `cfr_${randomBytes(16).toString('hex')}`;
  await hub.ctx.store.createToken({ kind: 'read', name: 'viewer', hash: hashToken(readToken) }, 'test');
  const signIn = async (token: string) => {
    const a = await send(hub, agent, 'POST', '/ui/session', { origin: hub.url }, { token });
    assert.equal(a.status, 200, a.body);
    const setCookie = String(a.headers['set-cookie']);
    return { setCookie, cookie: setCookie.split(';')[0], csrf: JSON.parse(a.body).csrf as string };
  };
  return { hub, agent, readToken, signIn };
}

describe('dashboard session', { timeout: 60_000 }, () => {
  test('sign-in sets an opaque HttpOnly, Secure, SameSite=Strict cookie that never contains the token', async (t) => {
    const { hub, signIn } = await fixture(t);
    const { setCookie, cookie } = await signIn(hub.token);
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /Secure/);
    assert.match(setCookie, /SameSite=Strict/);
    assert.ok(!setCookie.includes(hub.token) && !setCookie.includes(hashToken(hub.token)));
    assert.match(cookie, /^certfleet_session=[\w-]{40,}$/);
  });

  test('a wrong token, an enrollment token or a cross-site sign-in is refused', async (t) => {
    const { hub, agent } = await fixture(t);
    const wrong = await send(hub, agent, 'POST', '/ui/session', { origin: hub.url }, { token: 'cfa_nope' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers['set-cookie'], undefined);
    const minted = await hub.client
      .post<{ token: string }>('/api/v1/endpoints', { name: 'e1', kind: 'agent' })
      .then(() => hub.client.post<{ token: string }>('/api/v1/endpoints/e1/enroll-token', {}));
    const enroll = await send(
      hub,
      agent,
      'POST',
      '/ui/session',
      { origin: hub.url },
      { token: minted.token },
    );
    assert.equal(enroll.status, 401);
    const crossSite = await send(
      hub,
      agent,
      'POST',
      '/ui/session',
      { origin: 'https://evil.example' },
      { token: hub.token },
    );
    assert.equal(crossSite.status, 403);
  });

  test('the cookie opens the dashboard routes only, and they take no bearer token', async (t) => {
    const { hub, agent, signIn } = await fixture(t);
    const { cookie } = await signIn(hub.token);
    assert.equal((await send(hub, agent, 'GET', '/ui/api/overview', { cookie })).status, 200);
    assert.equal((await send(hub, agent, 'GET', '/api/v1/certificates', { cookie })).status, 401);
    const bearer = { authorization: `Bearer ${hub.token}` };
    assert.equal((await send(hub, agent, 'GET', '/ui/api/overview', bearer)).status, 401);
    assert.equal((await send(hub, agent, 'GET', '/ui/api/overview')).status, 401);
  });

  test("a change needs the CSRF token and the hub's own Origin; with both an admin session acts", async (t) => {
    const { hub, agent, signIn } = await fixture(t);
    const { cookie, csrf } = await signIn(hub.token);
    const cert = (await hub.ctx.store.getCertificate('web'))!;
    const versions = async () => (await hub.ctx.store.listVersions(cert.id)).length;
    const before = await versions();
    const renew = (headers: Record<string, string>) =>
      send(hub, agent, 'POST', '/ui/api/certificates/web/renew', { cookie, ...headers }, {});
    // A forged cross-site form or fetch: the browser sends the cookie (if SameSite did not stop it) but no token.
    assert.equal((await renew({ origin: 'https://evil.example' })).status, 403);
    assert.equal((await renew({ origin: hub.url })).status, 403);
    assert.equal((await renew({ origin: 'https://evil.example', 'x-csrf-token': csrf })).status, 403);
    assert.equal((await renew({ 'x-csrf-token': csrf })).status, 403, 'no Origin at all');
    assert.equal((await renew({ origin: hub.url, 'x-csrf-token': 'x'.repeat(csrf.length) })).status, 403);
    assert.equal(await versions(), before, 'nothing was issued by a refused request');
    const ok = await renew({ origin: hub.url, 'x-csrf-token': csrf });
    assert.equal(ok.status, 201, ok.body);
    assert.equal(await versions(), before + 1);
    const events = await hub.ctx.store.listEvents({ kind: 'version.issued', limit: 1 });
    assert.equal(events[0].actor, 'admin:bootstrap', 'audited with the signed-in token');
  });

  test('a read session reads everything and can act on nothing', async (t) => {
    const { hub, agent, readToken, signIn } = await fixture(t);
    const { cookie, csrf } = await signIn(readToken);
    const who = JSON.parse((await send(hub, agent, 'GET', '/ui/api/session', { cookie })).body);
    assert.equal(who.role, 'read');
    assert.equal((await send(hub, agent, 'GET', '/ui/api/certificates/web', { cookie })).status, 200);
    const headers = { cookie, origin: hub.url, 'x-csrf-token': csrf };
    for (const path of [
      '/ui/api/certificates/web/renew',
      '/ui/api/certificates/web/deploy',
      '/ui/api/alerts/acknowledge',
    ]) {
      const a = await send(hub, agent, 'POST', path, headers, {});
      assert.equal(a.status, 403, `${path}: ${a.body}`);
    }
  });

  test('sign-out ends the session and closes its live stream', async (t) => {
    const { hub, agent, signIn } = await fixture(t);
    const { cookie, csrf } = await signIn(hub.token);
    const url = new URL(hub.url);
    // Resolves once the stream answered (the hub subscribed before it wrote the headers); then to the text at its end.
    const stream = await new Promise<{ ended: Promise<string> }>((resolve, reject) => {
      const req = request(
        { host: url.hostname, port: url.port, path: '/ui/live', ca: hub.caPem, headers: { cookie } },
        (res) => {
          assert.equal(res.statusCode, 200);
          assert.match(String(res.headers['content-type']), /text\/event-stream/);
          let text = '';
          res.setEncoding('utf8');
          res.on('data', (d) => (text += d));
          resolve({ ended: new Promise((done) => res.on('end', () => done(text))) });
        },
      );
      req.on('error', reject);
      req.end();
    });
    // A commit while the stream is open reaches it as a `change` message.
    await hub.client.post('/api/v1/certificates', { name: 'api', sans: ['api.example.test'] });
    const out = await send(
      hub,
      agent,
      'POST',
      '/ui/session/end',
      { cookie, origin: hub.url, 'x-csrf-token': csrf },
      {},
    );
    assert.equal(out.status, 200);
    assert.match(String(out.headers['set-cookie']), /Max-Age=0/);
    const text = await stream.ended;
    assert.match(text, /event: change\ndata: \{"kind":"certificate.changed","certificate":"api"\}/);
    assert.equal((await send(hub, agent, 'GET', '/ui/api/overview', { cookie })).status, 401);
  });

  test('every /ui answer carries a strict CSP, no-sniff and no-referrer; the page has no inline script', async (t) => {
    const { hub, agent } = await fixture(t);
    for (const path of ['/ui', '/ui/assets/app.js', '/ui/assets/app.css', '/ui/api/overview']) {
      const a = await send(hub, agent, 'GET', path);
      const csp = String(a.headers['content-security-policy']);
      assert.match(csp, /default-src 'self'/, path);
      assert.match(csp, /frame-ancestors 'none'/, path);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/, path);
      assert.equal(a.headers['x-content-type-options'], 'nosniff', path);
      assert.equal(a.headers['referrer-policy'], 'no-referrer', path);
    }
    const page = await send(hub, agent, 'GET', '/ui');
    assert.doesNotMatch(page.body, /<script>|<script [^>]*>[^<]+<\/script>|style=/);
    assert.doesNotMatch(
      (await send(hub, agent, 'GET', '/ui/assets/app.js')).body,
      /\.innerHTML|\.outerHTML|insertAdjacentHTML|\beval\(|document\.write/,
    );
  });
});
