/**
 * Route access is decided from the route the router matched (src/hub/api/access.ts):
 * - every registered route declares public | agent | read | admin, and a route without one cannot be registered;
 * - over real HTTPS, no spelling of any read or admin path (percent-encoding, case, dot segments, double or encoded
 *   slashes, trailing junk) reaches a handler without the right token: no 2xx, no validation of the body, no
 *   state change, no event. The same spellings with the admin token do reach handlers, so the fuzz is real;
 * - failed token and enrollment attempts are limited per client address (429 with Retry-After).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { Agent } from 'node:https';
import { describe, test } from 'node:test';
import Fastify from 'fastify';
import { ACCESS_LEVELS, installAccessControl } from '../../src/hub/api/access.ts';
import { FailureLimiter } from '../../src/hub/api/failure-limiter.ts';
import { hashToken } from '../../src/hub/auth.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { rawRequest, type RawAnswer } from '../helpers/raw-request.ts';

type Answer = RawAnswer;

/** Sends `path` byte for byte (fetch would normalise it) over one keep-alive agent. */
function send(
  hub: TestHub,
  agent: Agent,
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<Answer> {
  return rawRequest(hub.url, {
    path,
    method,
    agent,
    ca: hub.caPem,
    // Not from loopback as far as /metrics' anonymous scrape is concerned.
    headers: { 'x-forwarded-for': '203.0.113.9', ...headers },
    ...(body !== undefined ? { body } : {}),
  });
}

const pct = (c: string) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`;

/** Spellings of one path that a router or proxy might treat as the same route. */
export function spellings(path: string): string[] {
  const out = new Set<string>([path]);
  for (let i = 0; i < path.length; i++) {
    if (path[i] === '/') continue;
    out.add(path.slice(0, i) + pct(path[i]) + path.slice(i + 1));
    out.add(path.slice(0, i) + pct(path[i]).toUpperCase() + path.slice(i + 1));
  }
  out.add(
    path
      .split('/')
      .map((seg) => [...seg].map(pct).join(''))
      .join('/'),
  );
  out.add(path.toUpperCase());
  const segs = path.split('/').slice(1);
  out.add(`/${segs[0].toUpperCase()}/${segs.slice(1).join('/')}`);
  for (let i = 1; i <= segs.length; i++) {
    const head = `/${segs.slice(0, i).join('/')}`;
    const tail = segs.slice(i).join('/');
    const rest = tail ? `/${tail}` : '';
    out.add(`${head}/${rest}`); // double slash
    out.add(`${head}/.${rest}`);
    out.add(`${head}/x/..${rest}`);
    out.add(`${head}/%2e${rest}`);
    out.add(`${head}/x/%2e%2e${rest}`);
    if (rest) {
      out.add(`${head}%2f${tail}`);
      out.add(`${head}%2F${tail}`);
      out.add(`${head}%252f${tail}`);
      out.add(`${head}\\${tail}`);
    }
  }
  out.add(`/${path}`);
  out.add(`/./${path.slice(1)}`);
  out.add(`/x/..${path}`);
  for (const junk of ['/', '?', '?x=1', '#', ';', ';x=1', '%00', '%20', '.', '..', '%2e', '/.', '/..', '%23'])
    out.add(path + junk);
  return [...out];
}

/** Fills route parameters with objects that exist, so a handler reached would act on something. */
function concrete(url: string, ids: Record<string, string>): string {
  return url
    .replace(/\/certificates\/:name/, '/certificates/web')
    .replace(/\/endpoints\/:name\/connector/, '/endpoints/lb1/connector')
    .replace(/\/endpoints\/:name/, '/endpoints/web1')
    .replace(/\/tokens\/:name/, '/tokens/monitoring')
    .replace(/\/emergency\/campaigns\/:id/, `/emergency/campaigns/${ids.campaign}`)
    .replace(/:id/, ids.subscription)
    .replace(/:versionId/, ids.version)
    .replace(/:token/, 'tok');
}

async function fixture(t: Parameters<typeof startTestHub>[0]) {
  // The limiter is generous here: this test is about the router, the limiter has its own test below.
  const hub = await startTestHub(t, { config: { api: { authFailures: { max: 1_000_000 } } } });
  await hub.client.post('/api/v1/certificates', { name: 'web', sans: ['web.example.test'] });
  await hub.client.post('/api/v1/endpoints', { name: 'web1', kind: 'agent' });
  // A connector endpoint with a secret, so reads of its settings are checked for leaks too.
  await hub.client.post('/api/v1/endpoints', { name: 'lb1', kind: 'connector' });
  await hub.client.put('/api/v1/endpoints/lb1/connector', {
    kind: 'ssh',
    host: '127.0.0.1',
    user: 'deploy',
    privateKey: generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }),
  });
  const sub = await hub.client.post<{ id: string }>('/api/v1/subscriptions', {
    endpoint: 'web1',
    certificate: 'web',
    outputs: [{ path: '/tmp/certfleet-never-written.pem', format: 'fullchain' }],
  });
  const version = (await hub.client.get<Array<{ id: string }>>('/api/v1/certificates/web/versions'))[0];
  const readToken = `cfr_${randomBytes(16).toString('hex')}`;
  await hub.ctx.store.createToken({ kind: 'read', name: 'monitoring', hash: hashToken(readToken) }, 'test');
  // A campaign, so its progress and report are read too.
  const { campaign } = await hub.client.post<{ campaign: { id: string } }>('/api/v1/emergency/campaigns', {
    issuer: 'internal',
    reason: 'route access test',
  });
  return { hub, readToken, ids: { subscription: sub.id, version: version.id, campaign: campaign.id } };
}

/** Everything an admin handler could change, in one comparable value. */
async function snapshot(hub: TestHub) {
  const s = hub.ctx.store;
  return JSON.stringify({
    revision: await s.revision(),
    events: (await hub.client.get<unknown[]>('/api/v1/events?limit=1000')).length,
    certs: await hub.client.get('/api/v1/certificates'),
    versions: await hub.client.get('/api/v1/certificates/web/versions'),
    endpoints: await hub.client.get('/api/v1/endpoints'),
    subscriptions: (await hub.client.get<Array<{ id: string }>>('/api/v1/subscriptions')).map((x) => x.id),
    adminTokens: await s.countTokens('admin'),
    // a rotation keeps the name but not the creation time
    apiTokens: (await s.listTokens()).map((r) => `${r.name} ${r.kind} ${r.createdAt}`),
    enrollTokens: await s.countTokens('enroll'),
  });
}

/** Answers that prove the request was refused before any handler or body validation ran. */
function refusedBeforeHandler(a: Answer): boolean {
  if (a.status === 401 || a.status === 403 || a.status === 404) return true;
  // fastify answers 400 itself for a URL it cannot decode; a 400 from the route's schema means auth let it through.
  return a.status === 400 && !a.body.includes('VALIDATION_FAILED');
}

describe('route access', () => {
  test('every route declares its access; the public ones are exactly the expected few', async (t) => {
    const { hub } = await fixture(t);
    const table = hub.app.routeAccess;
    assert.ok(table.length >= 30, `only ${table.length} routes registered`);
    for (const r of table) assert.ok(ACCESS_LEVELS.includes(r.access!), `${r.method} ${r.url}: ${r.access}`);
    const publicRoutes = table
      .filter((r) => r.access === 'public' && r.method !== 'HEAD')
      .map((r) => `${r.method} ${r.url}`)
      .sort();
    assert.deepEqual(publicRoutes, [
      'GET /.well-known/acme-challenge/:token',
      'GET /api/v1/agent/ca',
      'GET /api/v1/openapi.json',
      'GET /healthz',
      // the dashboard's page, its two static assets and sign-in (a token in the body, counted by the limiter)
      'GET /ui',
      'GET /ui/assets/app.css',
      'GET /ui/assets/app.js',
      'POST /api/v1/agent/enroll',
      'POST /ui/session',
    ]);
    // Only the dashboard's own routes take the session cookie.
    for (const r of table.filter((x) => x.url.startsWith('/ui/') && x.access !== 'public'))
      assert.ok(r.access === 'read' || r.access === 'admin', `${r.method} ${r.url}`);
    const agentRoutes = table.filter((r) => r.access === 'agent').map((r) => `${r.method} ${r.url}`);
    for (const r of agentRoutes) assert.match(r, /^(GET|HEAD|POST) \/api\/v1\/agent\//);
  });

  test('a route that declares no access cannot be registered', async () => {
    const app = Fastify();
    installAccessControl(app, {
      store: undefined as never,
      clock: new ManualClock(0),
      authenticateAgent: async () => {
        throw new Error('unused');
      },
      failures: new FailureLimiter(),
    });
    app.get('/declared', { config: { access: 'public' } }, async () => 'ok');
    assert.throws(() => app.get('/undeclared', async () => 'secret'), /declares no access/);
    assert.throws(
      () => app.post('/typo', { config: { access: 'admn' as never } }, async () => 'secret'),
      /declares no access/,
    );
    await app.close();
  });

  test('no spelling of a read or admin path reaches a handler without the right token', async (t) => {
    const { hub, readToken, ids } = await fixture(t);
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    onCleanup(t, () => agent.destroy());
    const routes = hub.app.routeAccess.filter(
      (r) => (r.access === 'read' || r.access === 'admin') && r.method !== 'HEAD',
    );
    const before = await snapshot(hub);
    let sent = 0;
    let reachedWithAdmin = 0;
    const failures: string[] = [];
    for (const r of routes) {
      const body = r.method === 'POST' ? '{}' : undefined;
      for (const path of spellings(concrete(r.url, ids))) {
        const credentials: Array<[string, Record<string, string>]> = [['no token', {}]];
        if (r.access === 'admin') credentials.push(['read token', { authorization: `Bearer ${readToken}` }]);
        for (const [who, headers] of credentials) {
          const a = await send(hub, agent, r.method, path, headers, body);
          sent++;
          if (!refusedBeforeHandler(a))
            failures.push(`${who} ${r.method} ${path} → ${a.status} ${a.body.slice(0, 120)}`);
        }
      }
    }
    assert.deepEqual(failures, []);
    assert.equal(await snapshot(hub), before, 'state changed');

    // Positive control: the router does decode these spellings, so the same requests with the admin token land.
    for (const path of spellings('/api/v1/certificates')) {
      const a = await send(hub, agent, 'GET', path, { authorization: `Bearer ${hub.token}` });
      if (a.status === 200) reachedWithAdmin++;
    }
    const encoded = await send(hub, agent, 'GET', '/%61pi/v1/certificates', {
      authorization: `Bearer ${hub.token}`,
    });
    assert.equal(encoded.status, 200, 'the router decodes %61 to "a"');
    assert.ok(reachedWithAdmin >= 20, `only ${reachedWithAdmin} spellings reached the list route`);
    assert.ok(sent > 2000, `only ${sent} requests sent`);
  });

  test('a read token reads every read route and receives no secret', async (t) => {
    const { hub, readToken, ids } = await fixture(t);
    const agent = new Agent({ keepAlive: true });
    onCleanup(t, () => agent.destroy());
    // The live stream never ends by itself: test/dashboard covers it.
    const reads = hub.app.routeAccess.filter(
      (r) => r.access === 'read' && r.method === 'GET' && r.url !== '/ui/live',
    );
    assert.ok(reads.length >= 10, `${reads.length} read routes`);
    const tokenHashes = [hashToken(readToken), hashToken(hub.token)];
    // Dashboard routes take a session cookie instead of the token: sign in with the read token once.
    const signIn = await send(
      hub,
      agent,
      'POST',
      '/ui/session',
      { origin: hub.url },
      JSON.stringify({ token: readToken }),
    );
    assert.equal(signIn.status, 200, signIn.body);
    const cookie = String(signIn.headers['set-cookie']).split(';')[0];
    for (const r of reads) {
      const path = concrete(r.url, ids);
      const credential: Record<string, string> = r.url.startsWith('/ui/')
        ? { cookie }
        : { authorization: `Bearer ${readToken}` };
      const a = await send(hub, agent, 'GET', path, credential);
      assert.equal(a.status, 200, `${path}: ${a.status} ${a.body.slice(0, 200)}`);
      assert.doesNotMatch(a.body, /PRIVATE KEY|sealed|cfa_|cfr_|cfe_/, path);
      for (const h of tokenHashes) assert.ok(!a.body.includes(h), `${path} shows a token hash`);
    }
  });

  test('failed token attempts are limited per address: 429 with Retry-After, also for a valid token', async (t) => {
    const hub = await startTestHub(t, { config: { api: { authFailures: { max: 3, windowSeconds: 600 } } } });
    const agent = new Agent({ keepAlive: true });
    onCleanup(t, () => agent.destroy());
    const wrong = { authorization: `Bearer cfa_${'0'.repeat(32)}` };
    const right = { authorization: `Bearer ${hub.token}` };
    // Successful requests never count.
    for (let i = 0; i < 10; i++)
      assert.equal((await send(hub, agent, 'GET', '/api/v1/certificates', right)).status, 200);
    for (let i = 0; i < 3; i++)
      assert.equal((await send(hub, agent, 'GET', '/api/v1/certificates', wrong)).status, 401);
    const limited = await send(hub, agent, 'GET', '/api/v1/certificates', wrong);
    assert.equal(limited.status, 429);
    const retryAfter = Number(limited.headers['retry-after']);
    assert.ok(retryAfter >= 1 && retryAfter <= 600, `Retry-After ${limited.headers['retry-after']}`);
    const body = JSON.parse(limited.body);
    assert.equal(body.code, 'RATE_LIMITED');
    assert.match(body.hint, /wait \d+ s/);
    // The address is held back whatever it sends next, so guessing stops paying.
    assert.equal((await send(hub, agent, 'POST', '/api/v1/certificates', right, '{}')).status, 429);
    // Public routes that take no secret stay open.
    assert.equal((await send(hub, agent, 'GET', '/healthz')).status, 200);
  });

  test('failed enrollment attempts are limited per address', async (t) => {
    const hub = await startTestHub(t, { config: { api: { authFailures: { max: 2, windowSeconds: 600 } } } });
    const agent = new Agent({ keepAlive: true });
    onCleanup(t, () => agent.destroy());
    const key = () => randomBytes(32).toString('base64url');
    const enroll = () =>
      send(
        hub,
        agent,
        'POST',
        '/api/v1/agent/enroll',
        {},
        JSON.stringify({
          token: `cfe_${randomBytes(16).toString('hex')}`,
          signingKey: key(),
          sealingKey: key(),
        }),
      );
    assert.equal((await enroll()).status, 401);
    assert.equal((await enroll()).status, 401);
    const limited = await enroll();
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers['retry-after']) >= 1);
  });
});
