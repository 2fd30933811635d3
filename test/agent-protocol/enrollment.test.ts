import { stat, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AgentClient } from '../../src/agent/agent-client.ts';
import { enrollAgent } from '../../src/agent/enroll.ts';
import { generateAgentKeys, publicKeysOf } from '../../src/agent/agent-identity.ts';
import { ManualClock } from '../../src/core/clock.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { startTestHub } from '../helpers/hub.ts';
import { tempDir } from '../helpers/tmp.ts';

describe('agent enrollment', () => {
  test('a token enrolls exactly once; credentials are 0600 in a 0700 state dir; the hub CA is pinned', async (t) => {
    const hub = await startTestHub(t);
    await hub.client.post('/api/v1/endpoints', { name: 'web1', kind: 'agent' });
    const mintedFrom = Date.now();
    const minted = await hub.client.post<{ token: string; caFingerprint: string; expiresAt: string }>(
      '/api/v1/endpoints/web1/enroll-token',
      {},
    );
    const mintedBy = Date.now();
    assert.equal(minted.caFingerprint, hub.caFingerprint);
    const expires = Date.parse(minted.expiresAt);
    const DAY = 86_400_000;
    assert.ok(
      expires >= mintedFrom + DAY - 1000 && expires <= mintedBy + DAY,
      `default TTL 24 h from minting, got ${minted.expiresAt}`,
    );

    const stateDir = join(await tempDir(t), 'agent');
    const identity = await enrollAgent({
      hub: hub.url,
      token: minted.token,
      caFingerprint: minted.caFingerprint,
      stateDir,
    });
    const endpoint = await hub.client.get<{ id: string }>('/api/v1/endpoints/web1');
    assert.equal(identity.endpointId, endpoint.id);
    assert.equal((await stat(stateDir)).mode & 0o777, 0o700);
    for (const f of ['agent.json', 'agent-key.pem'])
      assert.equal((await stat(join(stateDir, f))).mode & 0o777, 0o600, f);
    const config = JSON.parse(await readFile(join(stateDir, 'agent.json'), 'utf8'));
    assert.equal(config.caPem, hub.caPem);
    assert.doesNotMatch(JSON.stringify(config), /PRIVATE KEY/);
    // The hub stored both public keys, never a private one.
    const stored = await hub.ctx.store.agentPublicKey(endpoint.id);
    assert.deepEqual(Object.keys(JSON.parse(stored!)).sort(), ['sealing', 'signing', 'v']);

    // Second use of the same token → 401 'already used'.
    await assert.rejects(
      enrollAgent({
        hub: hub.url,
        token: minted.token,
        caFingerprint: minted.caFingerprint,
        stateDir: join(stateDir, '2'),
      }),
      (e: Error & { code?: string }) => e.code === 'UNAUTHENTICATED' && /already used/.test(e.message),
    );
    const raw = await hub.app.inject({
      method: 'POST',
      url: '/api/v1/agent/enroll',
      payload: { token: minted.token, ...publicKeysOf(generateAgentKeys()) },
    });
    assert.equal(raw.statusCode, 401);
    assert.match(raw.json().message, /enrollment token already used/);
    assert.ok(!hub.logs.join('').includes(minted.token), 'token never logged');
  });

  test('concurrent redemptions of one token: exactly one wins', async (t) => {
    const hub = await startTestHub(t);
    await hub.client.post('/api/v1/endpoints', { name: 'web1', kind: 'agent' });
    const { token } = await hub.client.post<{ token: string }>('/api/v1/endpoints/web1/enroll-token', {});
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        hub.app.inject({
          method: 'POST',
          url: '/api/v1/agent/enroll',
          payload: { token, ...publicKeysOf(generateAgentKeys()) },
        }),
      ),
    );
    assert.deepEqual(results.map((r) => r.statusCode).sort(), [200, 401, 401, 401, 401, 401, 401, 401]);
  });

  test('an expired token is refused with a clear message; --enroll-ttl sets the expiry', async (t) => {
    const clock = new ManualClock();
    const hub = await startTestHub(t, { clock });
    await hub.client.post('/api/v1/endpoints', { name: 'web1', kind: 'agent' });
    const minted = await hub.client.post<{ token: string; expiresAt: string }>(
      '/api/v1/endpoints/web1/enroll-token',
      {
        ttlSeconds: 600,
      },
    );
    assert.equal(new Date(minted.expiresAt).getTime() - clock.now().getTime(), 600_000);
    clock.advance(601_000);
    const res = await hub.app.inject({
      method: 'POST',
      url: '/api/v1/agent/enroll',
      payload: { token: minted.token, ...publicKeysOf(generateAgentKeys()) },
    });
    assert.equal(res.statusCode, 401);
    assert.match(res.json().message, /enrollment token expired at/);
    assert.match(res.json().hint, /enroll-token/);
  });

  test('a wrong CA fingerprint stops enrollment before the token is sent', async (t) => {
    const hub = await startTestHub(t);
    await hub.client.post('/api/v1/endpoints', { name: 'web1', kind: 'agent' });
    const { token } = await hub.client.post<{ token: string }>('/api/v1/endpoints/web1/enroll-token', {});
    await assert.rejects(
      enrollAgent({
        hub: hub.url,
        token,
        caFingerprint: 'ab'.repeat(32),
        stateDir: join(await tempDir(t), 'a'),
      }),
      /hub CA fingerprint is [0-9a-f]{64}, not the expected/,
    );
    // The token is still unused: the right fingerprint enrolls.
    const id = await enrollAgent({
      hub: hub.url,
      token,
      caFingerprint: hub.caFingerprint,
      stateDir: join(await tempDir(t), 'b'),
    });
    assert.equal(id.endpointName, 'web1');
  });

  test('an enrollment token cannot call the admin API; connector endpoints get no token', async (t) => {
    const hub = await startTestHub(t);
    await hub.client.post('/api/v1/endpoints', { name: 'web1', kind: 'agent' });
    await hub.client.post('/api/v1/endpoints', { name: 'lb1', kind: 'connector' });
    const { token } = await hub.client.post<{ token: string }>('/api/v1/endpoints/web1/enroll-token', {});
    const res = await hub.app.inject({
      method: 'GET',
      url: '/api/v1/endpoints',
      headers: { authorization: `Bearer ${token}` },
    });
    assert.equal(res.statusCode, 403);
    await assert.rejects(hub.client.post('/api/v1/endpoints/lb1/enroll-token', {}), /connector endpoint/);
    const unsigned = new AgentClient(hub.url, hub.caPem);
    onCleanup(t, () => unsigned.close());
    await assert.rejects(
      unsigned.request('GET', '/api/v1/agent/desired', undefined, { unsigned: true }),
      /missing agent signature/,
    );
  });
});
