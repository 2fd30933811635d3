/**
 * API tokens (src/hub/api-tokens.ts, src/hub/api/token-routes.ts):
 * - a read token reads everything, /metrics included from anywhere, and acts on nothing (403 with the fix);
 * - an expired, revoked or rotated secret gets 401 with a hint, at once;
 * - the list shows name, role, created, expires and last use, never a secret or a hash;
 * - names are unique and the last admin token cannot be revoked.
 */
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { describe, test } from 'node:test';
import { ManualClock } from '../../src/core/clock.ts';
import { hashToken } from '../../src/hub/auth.ts';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

interface Answer {
  status: number;
  body: string;
}

/** One request with exactly these headers; from "outside" (X-Forwarded-For) so /metrics needs a token. */
function send(hub: TestHub, method: string, path: string, token?: string, body?: unknown): Promise<Answer> {
  const url = new URL(path, hub.url);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca: hub.caPem,
        headers: {
          'x-forwarded-for': '203.0.113.9',
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
        },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

/** The hub's time `ms` from now on `clock`, as the API writes it. */
const at = (clock: ManualClock, ms: number): string => new Date(clock.now().getTime() + ms).toISOString();

interface Issued {
  token: {
    name: string;
    role: string;
    createdAt: string;
    expiresAt: string | null;
    lastUsedAt: string | null;
  };
  secret: string;
}

async function create(hub: TestHub, body: Record<string, unknown>): Promise<Issued> {
  const a = await send(hub, 'POST', '/api/v1/tokens', hub.token, body);
  assert.equal(a.status, 201, a.body);
  return JSON.parse(a.body) as Issued;
}

describe('API tokens', () => {
  test('a read token reads everything, /metrics included, and every sampled admin route answers 403', async (t) => {
    const hub = await startTestHub(t);
    await hub.client.post('/api/v1/certificates', { name: 'web', sans: ['web.example.test'] });
    await hub.client.post('/api/v1/endpoints', { name: 'web1', kind: 'agent' });
    const { secret, token } = await create(hub, { role: 'read', name: 'grafana' });
    assert.match(secret, /^cfr_/);
    assert.equal(token.role, 'read');

    for (const path of [
      '/api/v1/certificates',
      '/api/v1/endpoints/web1',
      '/api/v1/status',
      '/api/v1/events',
    ]) {
      const a = await send(hub, 'GET', path, secret);
      assert.equal(a.status, 200, `${path}: ${a.body}`);
    }
    const metrics = await send(hub, 'GET', '/metrics', secret);
    assert.equal(metrics.status, 200, metrics.body);
    assert.match(metrics.body, /^# HELP certfleet_/m);
    assert.equal((await send(hub, 'GET', '/metrics')).status, 401, 'from outside, /metrics needs a token');

    const events = (await hub.ctx.store.listEvents({ limit: 1000 })).length;
    const admin: Array<[string, string, unknown?]> = [
      ['POST', '/api/v1/certificates', { name: 'other', sans: ['other.example.test'] }],
      ['DELETE', '/api/v1/certificates/web'],
      ['DELETE', '/api/v1/endpoints/web1'],
      ['POST', '/api/v1/certificates/web/renew', {}],
      ['POST', '/api/v1/endpoints/web1/enroll-token', {}],
      ['POST', '/api/v1/probes/run', {}],
      ['GET', '/api/v1/tokens'],
      ['POST', '/api/v1/tokens', { role: 'admin', name: 'escalated' }],
      ['POST', '/api/v1/tokens/grafana/rotate', {}],
      ['DELETE', '/api/v1/tokens/bootstrap'],
    ];
    for (const [method, path, body] of admin) {
      const a = await send(hub, method, path, secret, body);
      assert.equal(a.status, 403, `${method} ${path}: ${a.status} ${a.body}`);
      const err = JSON.parse(a.body);
      assert.equal(err.code, 'FORBIDDEN');
      assert.match(err.hint, /admin token/);
    }
    assert.equal((await hub.ctx.store.listEvents({ limit: 1000 })).length, events, 'nothing was done');
    assert.deepEqual(
      (await hub.ctx.store.listTokens()).map((r) => r.name),
      ['bootstrap', 'grafana'],
    );
  });

  test('an expired token gets 401 naming it, when it expired and how to get a new one', async (t) => {
    const clock = new ManualClock(Date.now());
    const hub = await startTestHub(t, { clock });
    const expiresAt = at(clock, 3600_000);
    const { secret, token } = await create(hub, { role: 'read', name: 'short', expiresInSeconds: 3600 });
    assert.equal(token.expiresAt, expiresAt);
    assert.equal((await send(hub, 'GET', '/api/v1/certificates', secret)).status, 200);
    clock.advance(3600_000);
    const a = await send(hub, 'GET', '/api/v1/certificates', secret);
    assert.equal(a.status, 401);
    const err = JSON.parse(a.body);
    assert.equal(err.code, 'UNAUTHENTICATED');
    assert.equal(err.message, `API token "short" expired at ${expiresAt}`);
    assert.match(err.hint, /certfleet token rotate short/);
  });

  test('a revoked or rotated secret gets 401 at once; the rotated one works and keeps role and lifetime', async (t) => {
    const clock = new ManualClock(Date.now());
    const hub = await startTestHub(t, { clock });
    const first = await create(hub, { role: 'admin', name: 'ci', expiresInSeconds: 90 * 86400 });
    const other = await create(hub, { role: 'read', name: 'gone' });
    clock.advance(86400_000);
    const expiresAt = at(clock, 90 * 86400_000);

    const rotated = await send(hub, 'POST', '/api/v1/tokens/ci/rotate', hub.token, {});
    assert.equal(rotated.status, 200, rotated.body);
    const next = JSON.parse(rotated.body) as Issued;
    assert.notEqual(next.secret, first.secret);
    assert.equal(next.token.role, 'admin');
    assert.equal(next.token.expiresAt, expiresAt, '90 days from the rotation');

    const old = await send(hub, 'GET', '/api/v1/certificates', first.secret);
    assert.equal(old.status, 401);
    assert.match(JSON.parse(old.body).message, /invalid API token \(unknown, revoked or rotated\)/);
    assert.match(JSON.parse(old.body).hint, /certfleet token/);
    assert.equal((await send(hub, 'GET', '/api/v1/tokens', next.secret)).status, 200);

    assert.equal((await send(hub, 'DELETE', '/api/v1/tokens/gone', next.secret)).status, 204);
    assert.equal((await send(hub, 'GET', '/api/v1/certificates', other.secret)).status, 401);
    assert.equal((await send(hub, 'DELETE', '/api/v1/tokens/gone', hub.token)).status, 404);
  });

  test('the bootstrap token rotates like any other: the old secret stops working at once', async (t) => {
    const hub = await startTestHub(t);
    const a = await send(hub, 'POST', '/api/v1/tokens/bootstrap/rotate', hub.token, {});
    assert.equal(a.status, 200, a.body);
    const next = JSON.parse(a.body) as Issued;
    assert.match(next.secret, /^cfa_/);
    assert.equal((await send(hub, 'GET', '/api/v1/tokens', hub.token)).status, 401);
    assert.equal((await send(hub, 'GET', '/api/v1/tokens', next.secret)).status, 200);
  });

  test('the list shows name, role, times and last use, never a secret or a hash', async (t) => {
    const clock = new ManualClock(Date.now());
    const hub = await startTestHub(t, { clock });
    const [createdAt, expiresAt, usedAt] = [0, 86400_000, 5 * 60_000].map((ms) => at(clock, ms));
    const made = await create(hub, { role: 'read', name: 'prometheus', expiresInSeconds: 86400 });
    clock.advance(5 * 60_000);
    assert.equal((await send(hub, 'GET', '/metrics', made.secret)).status, 200);
    const list = await send(hub, 'GET', '/api/v1/tokens', hub.token);
    assert.equal(list.status, 200);
    for (const secret of [made.secret, hub.token]) {
      assert.ok(!list.body.includes(secret), 'a secret is listed');
      assert.ok(!list.body.includes(hashToken(secret)), 'a hash is listed');
    }
    const prometheus = (JSON.parse(list.body) as Array<Issued['token']>).find((x) => x.name === 'prometheus');
    assert.deepEqual(prometheus, {
      name: 'prometheus',
      role: 'read',
      createdAt,
      expiresAt,
      lastUsedAt: usedAt,
    });
  });

  test('names are unique and validated; the last admin token cannot be revoked', async (t) => {
    const hub = await startTestHub(t);
    await create(hub, { role: 'read', name: 'dup' });
    const again = await send(hub, 'POST', '/api/v1/tokens', hub.token, { role: 'admin', name: 'dup' });
    assert.equal(again.status, 409);
    assert.match(JSON.parse(again.body).message, /token "dup" already exists/);
    const bad = await send(hub, 'POST', '/api/v1/tokens', hub.token, { role: 'read', name: 'No Spaces' });
    assert.equal(bad.status, 400);
    assert.equal(JSON.parse(bad.body).code, 'VALIDATION_FAILED');
    const role = await send(hub, 'POST', '/api/v1/tokens', hub.token, { role: 'enroll' });
    assert.equal(role.status, 400);

    const last = await send(hub, 'DELETE', '/api/v1/tokens/bootstrap', hub.token);
    assert.equal(last.status, 409);
    assert.match(JSON.parse(last.body).hint, /create another admin token first/);
    const second = await create(hub, { role: 'admin' });
    assert.match(second.token.name, /^admin-[0-9a-f]{6}$/, 'a default name');
    assert.equal((await send(hub, 'DELETE', '/api/v1/tokens/bootstrap', second.secret)).status, 204);
    assert.equal((await send(hub, 'GET', '/api/v1/tokens', hub.token)).status, 401);
  });
});
