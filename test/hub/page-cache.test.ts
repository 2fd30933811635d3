import assert from 'node:assert/strict';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { hashToken } from '../../src/hub/auth.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

async function get(hub: TestHub, url: string, headers: Record<string, string> = {}, token = hub.token) {
  return hub.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${token}`, ...headers } });
}

const names = (body: string) => (JSON.parse(body) as Array<{ name: string }>).map((e) => e.name);

async function endpoint(hub: TestHub, name: string) {
  return hub.ctx.store.createEndpoint({ name, kind: 'agent', probeTargets: [], labels: {} }, 'test');
}

describe('rendered-page cache of read routes', () => {
  test('a repeated page is answered with the same body and ETag, and If-None-Match gets 304', async (t) => {
    const hub = await startTestHub(t);
    await endpoint(hub, 'ep-a');
    const first = await get(hub, '/api/v1/endpoints?limit=10');
    assert.equal(first.statusCode, 200);
    const etag = first.headers.etag as string;
    assert.match(etag, /^"[\w-]+"$/);
    assert.equal(first.headers['cache-control'], 'private, no-cache');

    const hits = hub.app.pageCache.stats.hits;
    // same page, query written differently
    const again = await get(hub, '/api/v1/endpoints?limit=010');
    assert.equal(again.body, first.body);
    assert.equal(again.headers.etag, etag);
    assert.equal(again.headers['content-type'], first.headers['content-type']);
    assert.equal(hub.app.pageCache.stats.hits, hits + 1);

    const revalidated = await get(hub, '/api/v1/endpoints?limit=10', { 'if-none-match': etag });
    assert.equal(revalidated.statusCode, 304);
    assert.equal(revalidated.body, '');
    assert.equal(revalidated.headers.etag, etag);
  });

  test('a page is never older than the last commit: creations, last-seen writes (lag 0), API changes', async (t) => {
    const hub = await startTestHub(t, { config: { api: { lastContactLagSeconds: 0 } } });
    const a = await endpoint(hub, 'ep-a');
    const before = await get(hub, '/api/v1/endpoints');
    assert.deepEqual(names(before.body), ['ep-a']);

    await endpoint(hub, 'ep-b');
    const created = await get(hub, '/api/v1/endpoints', { 'if-none-match': before.headers.etag as string });
    assert.equal(created.statusCode, 200);
    assert.deepEqual(names(created.body), ['ep-a', 'ep-b']);

    // a write that emits no store event (an agent's contact) still counts
    await hub.ctx.store.touchEndpoint(a.id, '2026-01-02T03:04:05.000Z');
    const seen = JSON.parse((await get(hub, '/api/v1/endpoints')).body) as Array<{
      lastSeenAt: string | null;
    }>;
    assert.equal(seen[0].lastSeenAt, '2026-01-02T03:04:05.000Z');

    const del = await hub.app.inject({
      method: 'DELETE',
      url: '/api/v1/endpoints/ep-b',
      headers: { authorization: `Bearer ${hub.token}` },
    });
    assert.equal(del.statusCode, 204);
    assert.deepEqual(names((await get(hub, '/api/v1/endpoints')).body), ['ep-a']);
  });

  /** An endpoint subscribed to a certificate, and the four list pages read once (cached). */
  async function fleetOfOne(hub: TestHub) {
    const store = hub.ctx.store;
    const ep = await endpoint(hub, 'ep-a');
    const cert = await store.createCertificate(
      {
        name: 'cert-a',
        sans: ['a.example.test'],
        keyType: 'ecdsa-p256',
        issuer: 'internal',
        lifetimeDays: 30,
      },
      'test',
    );
    await store.upsertSubscription(ep.id, cert.id, { outputs: [] }, 'test');
    const pages = ['/api/v1/certificates', '/api/v1/subscriptions', '/api/v1/endpoints', '/api/v1/status'];
    const before = new Map<string, string>();
    for (const url of pages) before.set(url, (await get(hub, url)).body);
    return { ep, before };
  }

  type Contact = Array<{ name?: string; lastSeenAt: string | null }>;

  test("with last contact exact (lag 0), an agent's contact re-renders the pages that show it, and only those", async (t) => {
    const hub = await startTestHub(t, { config: { api: { lastContactLagSeconds: 0 } } });
    const store = hub.ctx.store;
    const { ep, before } = await fleetOfOne(hub);

    await store.touchEndpoints([{ endpointId: ep.id, at: '2026-01-02T03:04:05.000Z' }]);
    const { hits, misses } = hub.app.pageCache.stats;
    const certificates = await get(hub, '/api/v1/certificates');
    const subscriptions = await get(hub, '/api/v1/subscriptions');
    assert.equal(hub.app.pageCache.stats.hits, hits + 2, 'answered from the cache');
    assert.equal(certificates.body, before.get('/api/v1/certificates'));
    assert.equal(subscriptions.body, before.get('/api/v1/subscriptions'));

    const endpoints = JSON.parse((await get(hub, '/api/v1/endpoints')).body) as Contact;
    const status = JSON.parse((await get(hub, '/api/v1/status')).body) as Contact;
    assert.equal(hub.app.pageCache.stats.misses, misses + 2, 'rendered again');
    assert.equal(endpoints[0].lastSeenAt, '2026-01-02T03:04:05.000Z');
    assert.equal(status[0].lastSeenAt, '2026-01-02T03:04:05.000Z');
  });

  test('last contact may show late (the lag), while any other write to what a page shows is seen at once', async (t) => {
    const hub = await startTestHub(t, { config: { api: { lastContactLagSeconds: 60 } } });
    const store = hub.ctx.store;
    const { ep, before } = await fleetOfOne(hub);

    await store.touchEndpoints([{ endpointId: ep.id, at: '2026-01-02T03:04:05.000Z' }]);
    const { hits } = hub.app.pageCache.stats;
    for (const url of ['/api/v1/endpoints', '/api/v1/status'])
      assert.equal((await get(hub, url)).body, before.get(url), `${url}: last contact shown late`);
    assert.equal(hub.app.pageCache.stats.hits, hits + 2);

    // a change of the endpoint itself is not late, and the page then shows the contact too
    await store.updateEndpoint(ep.name, { labels: { role: 'web' } }, 'test');
    const endpoints = JSON.parse((await get(hub, '/api/v1/endpoints')).body) as Contact;
    assert.equal(endpoints[0].lastSeenAt, '2026-01-02T03:04:05.000Z');
    // a new deployment state on the status page likewise
    const [sub] = (await store.fleet({ endpointId: ep.id })).items;
    assert.ok(sub);
    await store.deleteSubscription(sub.subscription.id, 'test');
    assert.deepEqual(JSON.parse((await get(hub, '/api/v1/status')).body), []);
  });

  test('a commit by another process on the same database file is seen at once', async (t) => {
    const hub = await startTestHub(t);
    await endpoint(hub, 'ep-a');
    assert.deepEqual(names((await get(hub, '/api/v1/endpoints')).body), ['ep-a']);
    const other = new BetterSqlite3(join(hub.dataDir, 'hub.db'));
    try {
      other.prepare(`UPDATE endpoints SET name = 'ep-renamed' WHERE name = 'ep-a'`).run();
    } finally {
      other.close();
    }
    assert.deepEqual(names((await get(hub, '/api/v1/endpoints')).body), ['ep-renamed']);
  });

  test('the next-page headers are replayed with a cached page', async (t) => {
    const hub = await startTestHub(t);
    for (const n of ['ep-a', 'ep-b', 'ep-c']) await endpoint(hub, n);
    const first = await get(hub, '/api/v1/endpoints?limit=2');
    const cached = await get(hub, '/api/v1/endpoints?limit=2');
    assert.ok(first.headers['x-next-cursor']);
    assert.equal(cached.headers['x-next-cursor'], first.headers['x-next-cursor']);
    assert.equal(cached.headers.link, first.headers.link);
  });

  test('a revoked token is refused at once although token lookups are cached', async (t) => {
    const hub = await startTestHub(t);
    const secret = 'cfr_page_cache_test_token_0123456789';
    await hub.ctx.store.createToken({ kind: 'read', name: 'monitor', hash: hashToken(secret) }, 'test');
    assert.equal((await get(hub, '/api/v1/endpoints', {}, secret)).statusCode, 200);
    assert.equal((await get(hub, '/api/v1/endpoints', {}, secret)).statusCode, 200);
    await hub.ctx.store.revokeToken('monitor', 'test');
    assert.equal((await get(hub, '/api/v1/endpoints', {}, secret)).statusCode, 401);
  });

  test('a cached page is never answered to a request without a valid token, however the URL is spelled', async (t) => {
    const hub = await startTestHub(t);
    await endpoint(hub, 'ep-a');
    const spellings = [
      '/api/v1/endpoints?limit=10',
      '/api/v1/%65ndpoints?limit=10',
      '/api/v1//endpoints?limit=10',
    ];
    for (const url of spellings) await get(hub, url); // cached (or refused) for the admin
    assert.ok(hub.app.pageCache.stats.hits + hub.app.pageCache.stats.misses > 0);
    for (const url of spellings) {
      for (const refused of [
        await hub.app.inject({ method: 'GET', url }),
        await get(hub, url, {}, 'cfa_wrong_token_0123456789abcdef'),
      ]) {
        assert.notEqual(refused.statusCode, 200, url);
        assert.doesNotMatch(refused.body, /ep-a/, url);
      }
    }
  });

  test('concurrent requests for one uncached page render it once', async (t) => {
    const hub = await startTestHub(t);
    for (const n of ['ep-a', 'ep-b']) await endpoint(hub, n);
    await get(hub, '/api/v1/certificates'); // the token's first use is recorded (a write) before we count
    const { misses } = hub.app.pageCache.stats;
    const answers = await Promise.all(Array.from({ length: 8 }, () => get(hub, '/api/v1/endpoints?limit=7')));
    assert.equal(new Set(answers.map((a) => a.body)).size, 1);
    assert.equal(hub.app.pageCache.stats.misses, misses + 1);
  });

  test('a client that accepts gzip gets the stored page compressed once, and the same answer as the rest', async (t) => {
    const hub = await startTestHub(t);
    for (let i = 0; i < 20; i++) await endpoint(hub, `ep-${String(i).padStart(2, '0')}`);
    await get(hub, '/api/v1/certificates'); // the token's first use is recorded (a write) before we look
    const url = '/api/v1/endpoints?limit=20';
    const identity = await get(hub, url);
    assert.equal(identity.statusCode, 200);
    assert.equal(identity.headers['content-encoding'], undefined);
    assert.equal(identity.headers.vary, 'accept-encoding');
    const stored = hub.app.pageCache.snapshot().bytes;

    const gz = await get(hub, url, { 'accept-encoding': 'gzip, deflate, br' });
    assert.equal(gz.statusCode, 200);
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.headers.vary, 'accept-encoding');
    assert.equal(gz.headers['content-type'], identity.headers['content-type']);
    assert.ok(gz.rawPayload.length < identity.rawPayload.length);
    assert.equal(gunzipSync(gz.rawPayload).toString(), identity.body);
    assert.notEqual(gz.headers.etag, identity.headers.etag);
    const withGzip = hub.app.pageCache.snapshot().bytes;
    assert.equal(withGzip, stored + gz.rawPayload.length);

    // later gzip hits answer the stored bytes (nothing compressed or stored again)
    const again = await get(hub, url, { 'accept-encoding': 'gzip' });
    assert.deepEqual(again.rawPayload, gz.rawPayload);
    assert.equal(hub.app.pageCache.snapshot().bytes, withGzip);

    // no accept-encoding, or gzip refused: identity
    const others: Array<Record<string, string>> = [
      {},
      { 'accept-encoding': 'gzip;q=0, identity' },
      { 'accept-encoding': 'br' },
    ];
    for (const headers of others) {
      const plain = await get(hub, url, headers);
      assert.equal(plain.headers['content-encoding'], undefined);
      assert.equal(plain.body, identity.body);
      assert.equal(plain.headers.etag, identity.headers.etag);
    }

    // 304 per encoding: each ETag revalidates its own representation only
    const gz304 = await get(hub, url, {
      'accept-encoding': 'gzip',
      'if-none-match': gz.headers.etag as string,
    });
    assert.equal(gz304.statusCode, 304);
    assert.equal(gz304.headers.etag, gz.headers.etag);
    assert.equal(gz304.headers.vary, 'accept-encoding');
    const id304 = await get(hub, url, { 'if-none-match': identity.headers.etag as string });
    assert.equal(id304.statusCode, 304);
    const crossed = await get(hub, url, { 'if-none-match': gz.headers.etag as string });
    assert.equal(crossed.statusCode, 200);
    assert.equal(crossed.body, identity.body);
  });

  test('the first request of a page that accepts gzip gets it compressed too', async (t) => {
    const hub = await startTestHub(t);
    for (let i = 0; i < 20; i++) await endpoint(hub, `ep-${String(i).padStart(2, '0')}`);
    await get(hub, '/api/v1/certificates');
    const { misses } = hub.app.pageCache.stats;
    const gz = await get(hub, '/api/v1/endpoints?limit=20', { 'accept-encoding': 'gzip' });
    assert.equal(hub.app.pageCache.stats.misses, misses + 1);
    assert.equal(gz.headers['content-encoding'], 'gzip');
    const identity = await get(hub, '/api/v1/endpoints?limit=20');
    assert.equal(gunzipSync(gz.rawPayload).toString(), identity.body);
    const gz304 = await get(hub, '/api/v1/endpoints?limit=20', {
      'accept-encoding': 'gzip',
      'if-none-match': gz.headers.etag as string,
    });
    assert.equal(gz304.statusCode, 304);
  });

  test('a small page is answered uncompressed whatever the client accepts', async (t) => {
    const hub = await startTestHub(t);
    await endpoint(hub, 'ep-a');
    const small = await get(hub, '/api/v1/endpoints', { 'accept-encoding': 'gzip' });
    assert.equal(small.statusCode, 200);
    assert.equal(small.headers['content-encoding'], undefined);
    assert.deepEqual(names(small.body), ['ep-a']);
  });
});
