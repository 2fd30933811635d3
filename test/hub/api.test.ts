import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startTestHub } from '../helpers/hub.ts';

const auth = (token: string) => ({ authorization: `Bearer ${token}` });

describe('hub API', () => {
  test('creates, lists, shows, renews and deletes a certificate over HTTPS', async (t) => {
    const hub = await startTestHub(t);
    const created = await hub.client.post<any>('/api/v1/certificates', {
      name: 'web',
      sans: ['web.example.test'],
    });
    assert.equal(created.keyType, 'ecdsa-p256');
    assert.equal(created.issuer, 'internal');
    assert.match(created.current.fingerprint, /^[0-9a-f]{64}$/);

    const list = await hub.client.get<any[]>('/api/v1/certificates');
    assert.deepEqual(
      list.map((c) => c.name),
      ['web'],
    );

    const shown = await hub.client.get<any>('/api/v1/certificates/web');
    assert.match(shown.currentPem, /BEGIN CERTIFICATE[\s\S]+BEGIN CERTIFICATE/); // leaf + intermediate
    assert.doesNotMatch(JSON.stringify(shown), /PRIVATE KEY/);

    const renewed = await hub.client.post<any>('/api/v1/certificates/web/renew');
    assert.notEqual(renewed.serial, created.current.serial);
    const versions = await hub.client.get<any[]>('/api/v1/certificates/web/versions');
    assert.equal(versions.length, 2);
    assert.equal(versions[0].serial, renewed.serial);

    await hub.client.delete('/api/v1/certificates/web');
    assert.deepEqual(await hub.client.get('/api/v1/certificates'), []);
    const kinds = (await hub.client.get<any[]>('/api/v1/events?limit=100')).map((e) => e.kind);
    for (const k of ['certificate.created', 'version.issued', 'certificate.deleted'])
      assert.ok(kinds.includes(k), k);
  });

  test('serves /healthz and an OpenAPI document listing the routes', async (t) => {
    const hub = await startTestHub(t);
    const health = await hub.app.inject({ method: 'GET', url: '/healthz' });
    assert.equal(health.statusCode, 200);
    const doc = (await hub.app.inject({ method: 'GET', url: '/api/v1/openapi.json' })).json();
    assert.equal(doc.openapi.slice(0, 2), '3.');
    for (const p of [
      '/api/v1/certificates',
      '/api/v1/certificates/{name}/renew',
      '/api/v1/endpoints',
      '/api/v1/subscriptions',
      '/api/v1/events',
      '/api/v1/apply',
    ]) {
      assert.ok(doc.paths[p], `missing ${p}`);
    }
    assert.ok(doc.paths['/api/v1/certificates'].post.requestBody, 'request schema is documented');
  });

  describe('rejects bad input with a clear error and changes nothing', () => {
    const cases: Array<{
      name: string;
      method: 'POST' | 'GET' | 'DELETE';
      url: string;
      body?: unknown;
      headers?: Record<string, string>;
      status: number;
      code: string;
      message: RegExp;
    }> = [
      {
        name: 'an invalid DNS name',
        method: 'POST',
        url: '/api/v1/certificates',
        body: { name: 'a', sans: ['bad_name.example'] },
        status: 400,
        code: 'VALIDATION_FAILED',
        message: /sans\[0\]: "bad_name\.example" is not a valid DNS name/,
      },
      {
        name: 'a wildcard in the wrong place',
        method: 'POST',
        url: '/api/v1/certificates',
        body: { name: 'a', sans: ['a.*.example'] },
        status: 400,
        code: 'VALIDATION_FAILED',
        message: /wildcard that is not the leftmost/,
      },
      {
        name: 'an unknown key type',
        method: 'POST',
        url: '/api/v1/certificates',
        body: { name: 'a', sans: ['a.example'], keyType: 'dsa-1024' },
        status: 400,
        code: 'VALIDATION_FAILED',
        message: /keyType: must be one of: ecdsa-p256/,
      },
      {
        name: 'an unknown issuer',
        method: 'POST',
        url: '/api/v1/certificates',
        body: { name: 'a', sans: ['a.example'], issuer: 'nope' },
        status: 400,
        code: 'VALIDATION_FAILED',
        message: /issuer "nope" is not configured/,
      },
      {
        name: 'a subscription to a missing certificate',
        method: 'POST',
        url: '/api/v1/subscriptions',
        body: { endpoint: 'e1', certificate: 'ghost' },
        status: 404,
        code: 'CERTIFICATE_NOT_FOUND',
        message: /certificate "ghost" not found/,
      },
      {
        name: 'a missing token',
        method: 'GET',
        url: '/api/v1/certificates',
        headers: {},
        status: 401,
        code: 'UNAUTHENTICATED',
        message: /missing API token/,
      },
      {
        name: 'a wrong token',
        method: 'GET',
        url: '/api/v1/certificates',
        headers: { authorization: 'Bearer cfa_wrong' },
        status: 401,
        code: 'UNAUTHENTICATED',
        message: /invalid API token/,
      },
      {
        name: 'an oversized body',
        method: 'POST',
        url: '/api/v1/certificates',
        body: { name: 'a', sans: ['a.example'], pad: 'x'.repeat(2 * 1024 * 1024) },
        status: 413,
        code: 'PAYLOAD_TOO_LARGE',
        message: /too large/,
      },
      {
        name: 'malformed JSON',
        method: 'POST',
        url: '/api/v1/certificates',
        body: '{"name": ',
        status: 400,
        code: 'BAD_REQUEST',
        message: /JSON/i,
      },
      {
        name: 'an unknown route',
        method: 'GET',
        url: '/api/v1/nothing',
        status: 404,
        code: 'NOT_FOUND',
        message: /no route/,
      },
    ];
    for (const c of cases) {
      test(c.name, async (t) => {
        const hub = await startTestHub(t);
        await hub.client.post('/api/v1/endpoints', { name: 'e1' });
        const before = await hub.client.get<any[]>('/api/v1/events?limit=1000');
        const res = await hub.app.inject({
          method: c.method,
          url: c.url,
          headers: { 'content-type': 'application/json', ...(c.headers ?? auth(hub.token)) },
          ...(c.body !== undefined
            ? { payload: typeof c.body === 'string' ? c.body : JSON.stringify(c.body) }
            : {}),
        });
        assert.equal(res.statusCode, c.status, res.body);
        const body = res.json();
        assert.equal(body.code, c.code);
        assert.match(body.message, c.message);
        assert.ok(body.hint, 'every error carries a hint');
        assert.doesNotMatch(res.body, /\n\s+at /, 'no stack trace');
        assert.deepEqual(await hub.client.get('/api/v1/certificates'), []);
        assert.equal((await hub.client.get<any[]>('/api/v1/events?limit=1000')).length, before.length);
      });
    }
  });

  test('refuses a duplicate certificate name and keeps the original', async (t) => {
    const hub = await startTestHub(t);
    const first = await hub.client.post<any>('/api/v1/certificates', { name: 'web', sans: ['a.example'] });
    await assert.rejects(
      hub.client.post('/api/v1/certificates', { name: 'web', sans: ['b.example'] }),
      (e: any) => {
        assert.equal(e.code, 'ALREADY_EXISTS');
        assert.match(e.hint, /another name/);
        return true;
      },
    );
    const shown = await hub.client.get<any>('/api/v1/certificates/web');
    assert.deepEqual(shown.sans, ['a.example']);
    assert.equal(shown.current.serial, first.current.serial);
  });

  test('refuses to delete a subscribed certificate unless forced', async (t) => {
    const hub = await startTestHub(t);
    await hub.client.post('/api/v1/certificates', { name: 'web', sans: ['a.example'] });
    await hub.client.post('/api/v1/endpoints', { name: 'e1' });
    await hub.client.post('/api/v1/subscriptions', {
      endpoint: 'e1',
      certificate: 'web',
      outputs: [{ path: '/tmp/x.pem', format: 'fullchain' }],
    });
    await assert.rejects(hub.client.delete('/api/v1/certificates/web'), /used by 1 subscription/);
    await hub.client.delete('/api/v1/certificates/web?force=true');
    assert.deepEqual(await hub.client.get('/api/v1/subscriptions'), []);
  });

  test('a subscription to a certificate with a version starts a pending deployment and bumps the revision', async (t) => {
    const hub = await startTestHub(t);
    await hub.client.post('/api/v1/certificates', { name: 'web', sans: ['a.example'] });
    await hub.client.post('/api/v1/endpoints', {
      name: 'e1',
      probeTargets: [{ host: '127.0.0.1', port: 443 }],
    });
    const rev0 = (await hub.app.inject({ url: '/healthz' })).json().revision;
    await hub.client.post('/api/v1/subscriptions', {
      endpoint: 'e1',
      certificate: 'web',
      outputs: [{ path: '/etc/ssl/web.pem', format: 'fullchain', mode: '0644' }],
      reload: 'nginx -s reload',
    });
    const subs = await hub.client.get<any[]>('/api/v1/subscriptions');
    assert.equal(subs[0].deployment.state, 'pending');
    assert.ok((await hub.app.inject({ url: '/healthz' })).json().revision > rev0);
    await hub.client.post('/api/v1/certificates/web/renew');
    const after = await hub.client.get<any[]>('/api/v1/subscriptions');
    assert.notEqual(
      after[0].deployment.versionId,
      subs[0].deployment.versionId,
      'a new version gets its own deployment',
    );
  });

  test('never logs the admin token or a private key', async (t) => {
    const hub = await startTestHub(t);
    await hub.client.post('/api/v1/certificates', { name: 'web', sans: ['a.example'] });
    await hub.client.get('/api/v1/certificates/nope').catch(() => {});
    const all = hub.logs.join('');
    assert.ok(all.length > 0);
    assert.ok(!all.includes(hub.token));
    assert.doesNotMatch(all, /PRIVATE KEY/);
  });
});
