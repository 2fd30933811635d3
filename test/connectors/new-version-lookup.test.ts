/**
 * What the connector service reads when a version is added: an emergency campaign adds thousands, so a fleet of
 * agent endpoints must not cost a fleet read per version (the deploy to connector endpoints themselves is in
 * http-api.test.ts: a renewal reaches the stand-in load balancer).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createCertificate, eventually, subscribe } from '../helpers/agent.ts';
import { startTestHub } from '../helpers/hub.ts';

describe('connector service: new versions', () => {
  test('new versions of a certificate only agents subscribe to read no fleet rows and the endpoints once', async (t) => {
    const hub = await startTestHub(t);
    await createCertificate(hub, 'web');
    await hub.client.post('/api/v1/endpoints', { name: 'a1', kind: 'agent' });
    await subscribe(hub, 'a1', 'web');
    await hub.connectors.idle();
    const { store } = hub.ctx;
    const reads = { fleet: 0, listEndpoints: 0 };
    for (const name of ['fleet', 'listEndpoints'] as const) {
      const original = store[name].bind(store) as (...a: unknown[]) => Promise<never>;
      (store as unknown as Record<string, unknown>)[name] = (...a: unknown[]) => {
        // the connector service's reads only (the probe loop lists endpoints too)
        if (new Error().stack?.includes('connector-service')) reads[name]++;
        return original(...a);
      };
    }
    for (let i = 0; i < 3; i++) await hub.renewal.renewNow('web', 'test');
    // the first new version reads which endpoints are connectors; the lookups run after each commit
    await eventually(() => reads.listEndpoints >= 1, 10_000, 'the connector endpoints read');
    await new Promise((r) => setTimeout(r, 300));
    await hub.connectors.idle();
    assert.deepEqual(reads, { fleet: 0, listEndpoints: 1 });
  });
});
