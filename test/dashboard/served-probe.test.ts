/**
 * "Issued vs served" for an endpoint whose only probe target is its subscription's verify target (the dashboard's
 * browser test and screenshots: an agent endpoint enrolled without targets of its own). The hub probes that target
 * after the agent's reload, so the certificate view shows what is served instead of "—".
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:tls';
import { describe, test } from 'node:test';
import { eventually } from '../helpers/agent.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { startTestHub } from '../helpers/hub.ts';
import { makeTestPki } from '../helpers/test-pki.ts';

describe('issued vs served', () => {
  test("a subscription's verify target is probed after the agent's reload and shown as served", async (t) => {
    const hub = await startTestHub(t);
    const { bundle } = await makeTestPki('ecdsa-p256', { dnsNames: ['web.test'] });
    const server = createServer({ cert: bundle.certPem + bundle.chainPems.join(''), key: bundle.keyPem });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    onCleanup(t, () => new Promise<void>((resolve) => server.close(() => resolve())));
    const port = (server.address() as { port: number }).port;

    await hub.client.post('/api/v1/certificates', { name: 'web', sans: ['web.test'] });
    const store = hub.ctx.store;
    const cert = (await store.getCertificate('web'))!;
    const version = (await store.currentVersion(cert.id))!;
    const endpoint = await store.createEndpoint(
      { name: 'web1', kind: 'agent', probeTargets: [], labels: {} },
      'test',
    );
    const verify = { host: '127.0.0.1', port, sni: 'web.test' };
    const { subscription } = await store.upsertSubscription(
      endpoint.id,
      cert.id,
      { outputs: [], verify },
      'test',
    );
    for (const state of ['delivered', 'installed', 'reloaded'] as const)
      await store.transitionDeployment(subscription.id, version.id, state, {}, 'agent:web1');

    const signIn = await hub.app.inject({
      method: 'POST',
      url: '/ui/session',
      headers: { origin: 'http://localhost:80' },
      payload: { token: hub.token },
    });
    const cookie = String(signIn.headers['set-cookie']).split(';')[0];
    const served = await eventually(
      async () => {
        const view = (
          await hub.app.inject({ method: 'GET', url: '/ui/api/certificates/web', headers: { cookie } })
        ).json() as { deployments: Array<{ served: Array<{ target: string; served: string | null }> }> };
        const target = view.deployments[0]?.served[0];
        return target?.served ? target : undefined;
      },
      15_000,
      'the verify target probed',
    );
    assert.ok(served);
    assert.equal(served.target, `127.0.0.1:${port}/web.test`);
    // the test server serves another certificate than the issued one: seen, and judged different
    assert.notEqual(served.served, version.fingerprint);
  });
});
