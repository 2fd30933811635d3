import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Store } from '../../src/store/store.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

const pad = (i: number) => String(i).padStart(3, '0');

/**
 * `n` certificates (every third one issued) and `n` endpoints, endpoint i subscribed to certificate i, written
 * straight into the hub's store (fast); created in shuffled order so creation order is not the listing order.
 */
async function fleet(store: Store, n: number): Promise<void> {
  const order = Array.from({ length: n }, (_, i) => (i * 37) % n);
  const certs = new Map<number, string>();
  for (const i of order) {
    const cert = await store.createCertificate(
      {
        name: `cert-${pad(i)}`,
        sans: [`c${i}.example.test`],
        keyType: 'ecdsa-p256',
        issuer: 'internal',
        lifetimeDays: 30,
      },
      'test',
    );
    certs.set(i, cert.id);
  }
  for (const i of order) {
    const endpoint = await store.createEndpoint(
      { name: `ep-${pad(i)}`, kind: 'agent', probeTargets: [], labels: {} },
      'test',
    );
    await store.upsertSubscription(endpoint.id, certs.get(i)!, { outputs: [] }, 'test');
  }
}

interface Answer {
  status: number;
  body: any;
  next?: string;
  link?: string;
}

async function get(hub: TestHub, url: string): Promise<Answer> {
  const res = await hub.app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${hub.token}` } });
  const next = res.headers['x-next-cursor'];
  const link = res.headers.link;
  return {
    status: res.statusCode,
    body: res.json(),
    ...(typeof next === 'string' ? { next } : {}),
    ...(typeof link === 'string' ? { link } : {}),
  };
}

/** Follows x-next-cursor from the first page; returns every page's items. */
async function walk(hub: TestHub, path: string, limit: number): Promise<any[][]> {
  const pages: any[][] = [];
  let cursor: string | undefined;
  do {
    const sep = path.includes('?') ? '&' : '?';
    const a = await get(
      hub,
      `${path}${sep}limit=${limit}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.ok(Array.isArray(a.body), 'a page is a JSON array, as the unpaginated routes answered');
    pages.push(a.body);
    cursor = a.next;
    assert.ok(pages.length < 100, 'the walk ends');
  } while (cursor);
  return pages;
}

describe('list routes paginate by cursor', () => {
  test('walking every page yields every item exactly once, in a stable order', async (t) => {
    const hub = await startTestHub(t);
    await fleet(hub.ctx.store, 23);
    const names = Array.from({ length: 23 }, (_, i) => pad(i));
    const cases: Array<[string, (x: any) => string, string[]]> = [
      ['/api/v1/certificates', (c) => c.name, names.map((n) => `cert-${n}`)],
      ['/api/v1/endpoints', (e) => e.name, names.map((n) => `ep-${n}`)],
      [
        '/api/v1/subscriptions',
        (s) => `${s.certificate}/${s.endpoint}`,
        names.map((n) => `cert-${n}/ep-${n}`),
      ],
      ['/api/v1/status', (s) => `${s.certificate}/${s.endpoint}`, names.map((n) => `cert-${n}/ep-${n}`)],
    ];
    for (const [path, key, expected] of cases) {
      const pages = await walk(hub, path, 5);
      assert.deepEqual(
        pages.map((p) => p.length),
        [5, 5, 5, 5, 3],
        `${path}: full pages, then the rest, and no empty page`,
      );
      assert.deepEqual(pages.flat().map(key), expected, `${path}: every item once, by name`);
      assert.deepEqual(await walk(hub, path, 5), pages, `${path}: the same pages when walked again`);
    }
  });

  test('the Link header names the next page, and the last page has neither header', async (t) => {
    const hub = await startTestHub(t);
    await fleet(hub.ctx.store, 4);
    const first = await get(hub, '/api/v1/certificates?limit=3');
    assert.match(first.link ?? '', /^<\/api\/v1\/certificates\?limit=3&cursor=[A-Za-z0-9_-]+>; rel="next"$/);
    const second = await get(hub, /^<([^>]+)>/.exec(first.link!)![1]);
    assert.deepEqual(
      second.body.map((c: any) => c.name),
      ['cert-003'],
    );
    assert.equal(second.next, undefined);
    assert.equal(second.link, undefined);
  });

  test('without limit the first page holds 100 items, so small fleets still get the whole list', async (t) => {
    const hub = await startTestHub(t);
    await fleet(hub.ctx.store, 101);
    const first = await get(hub, '/api/v1/endpoints');
    assert.equal(first.body.length, 100);
    assert.ok(first.next, 'the 101st endpoint is on the next page');
    const rest = await get(hub, `/api/v1/endpoints?cursor=${encodeURIComponent(first.next!)}`);
    assert.deepEqual(
      rest.body.map((e: any) => e.name),
      ['ep-100'],
    );
  });

  test('status filters by certificate; an unknown certificate has no rows', async (t) => {
    const hub = await startTestHub(t);
    await fleet(hub.ctx.store, 6);
    const only = await get(hub, '/api/v1/status?certificate=cert-004');
    assert.deepEqual(
      only.body.map((s: any) => [s.certificate, s.endpoint, s.version, s.deployment]),
      [['cert-004', 'ep-004', null, null]],
    );
    assert.deepEqual((await get(hub, '/api/v1/status?certificate=nope')).body, []);
  });

  test('a bad cursor or limit is refused with 400, a message and a hint', async (t) => {
    const hub = await startTestHub(t);
    await fleet(hub.ctx.store, 3);
    const endpointsCursor = (await get(hub, '/api/v1/endpoints?limit=1')).next!;
    for (const url of [
      '/api/v1/certificates?cursor=garbage',
      `/api/v1/certificates?cursor=${endpointsCursor}`,
      `/api/v1/status?cursor=${endpointsCursor}`,
      '/api/v1/subscriptions?cursor=%7B%7D',
    ]) {
      const a = await get(hub, url);
      assert.equal(a.status, 400, url);
      assert.equal(a.body.code, 'BAD_REQUEST', url);
      assert.match(a.body.message, /cursor/, url);
      assert.match(a.body.hint, /x-next-cursor/, url);
    }
    for (const url of [
      '/api/v1/endpoints?limit=0',
      '/api/v1/endpoints?limit=1001',
      '/api/v1/endpoints?limit=x',
    ]) {
      assert.equal((await get(hub, url)).status, 400, url);
    }
  });
});
