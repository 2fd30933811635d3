/**
 * Dashboard alerts and events views: an acknowledgement belongs to the firing it acknowledged (who and when are
 * shown; a later firing of the same alert is not acknowledged), and the events view pages backwards.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startTestHub, type TestHub } from '../helpers/hub.ts';

/** A dashboard session over app.inject (whose requests arrive as http://localhost:80). */
async function session(hub: TestHub) {
  const origin = 'http://localhost:80';
  const signIn = await hub.app.inject({
    method: 'POST',
    url: '/ui/session',
    headers: { origin },
    payload: { token: hub.token },
  });
  assert.equal(signIn.statusCode, 200, signIn.body);
  const cookie = String(signIn.headers['set-cookie']).split(';')[0];
  const { csrf } = signIn.json() as { csrf: string };
  return {
    get: async (url: string) => {
      const r = await hub.app.inject({ method: 'GET', url, headers: { cookie } });
      assert.equal(r.statusCode, 200, r.body);
      return r.json();
    },
    post: (url: string, payload: Record<string, unknown>) =>
      hub.app.inject({ method: 'POST', url, headers: { cookie, origin, 'x-csrf-token': csrf }, payload }),
  };
}

interface AlertsView {
  firing: Array<{ key: string; since?: string; acknowledged: { by: string; at: string } | null }>;
}

describe('dashboard alerts and events', () => {
  test('an acknowledgement holds for its firing only: a new firing of the same alert is not pre-acknowledged', async (t) => {
    // the loop is on (so alerts have firings) but evaluates only when the test says
    const hub = await startTestHub(t, { config: { alerts: { enabled: true, evaluateEverySeconds: 3600 } } });
    const alerts = hub.verification.alerts;
    const cert = await hub.ctx.store.createCertificate(
      {
        name: 'web',
        sans: ['web.example.test'],
        keyType: 'ecdsa-p256',
        issuer: 'internal',
        lifetimeDays: 30,
      },
      'test',
    );
    const failing = { failures: { count: 3, lastFailureAt: new Date().toISOString(), lastError: 'CA down' } };
    await hub.ctx.store.setRenewalState(cert.id, failing);
    await alerts.runOnce();
    const ui = await session(hub);

    const first = ((await ui.get('/ui/api/alerts')) as AlertsView).firing.find((a) => a.key.includes('web'));
    assert.ok(first?.since, 'a firing alert says when it began');
    assert.equal(first.acknowledged, null);
    const ack = await ui.post('/ui/api/alerts/acknowledge', { key: first.key });
    assert.equal(ack.statusCode, 200, ack.body);

    const acked = ((await ui.get('/ui/api/alerts')) as AlertsView).firing.find((a) => a.key === first.key)!;
    assert.equal(acked.acknowledged?.by, 'bootstrap');
    assert.ok(!Number.isNaN(Date.parse(acked.acknowledged!.at)));

    // resolved, then firing again: a new firing, nobody has acknowledged it yet
    await hub.ctx.store.setRenewalState(cert.id, {});
    await alerts.runOnce();
    assert.equal(
      ((await ui.get('/ui/api/alerts')) as AlertsView).firing.some((a) => a.key === first.key),
      false,
    );
    await hub.ctx.store.setRenewalState(cert.id, failing);
    await alerts.runOnce();
    const again = ((await ui.get('/ui/api/alerts')) as AlertsView).firing.find((a) => a.key === first.key)!;
    assert.notEqual(again.since, first.since);
    assert.equal(again.acknowledged, null);
  });

  test('the events view pages backwards from the newest with `older` / beforeId', async (t) => {
    const hub = await startTestHub(t);
    for (let i = 0; i < 7; i++)
      await hub.ctx.store.appendEvent({ actor: 'test', kind: 'test.paging', subject: `n:${i}`, data: {} });
    const ui = await session(hub);
    type Page = { events: Array<{ id: number; subject: string }>; older?: number; next?: number };
    const subjects = (p: Page) => p.events.map((e) => e.subject);

    const newest = (await ui.get('/ui/api/events?kind=test.&limit=3')) as Page;
    assert.deepEqual(subjects(newest), ['n:4', 'n:5', 'n:6']);
    assert.equal(newest.older, newest.events[0].id);
    const before = (await ui.get(`/ui/api/events?kind=test.&limit=3&beforeId=${newest.older}`)) as Page;
    assert.deepEqual(subjects(before), ['n:1', 'n:2', 'n:3']);
    const last = (await ui.get(`/ui/api/events?kind=test.&limit=3&beforeId=${before.older}`)) as Page;
    assert.deepEqual(subjects(last), ['n:0']);
    assert.equal(last.older, undefined);

    // the API's `before` is the same walk
    const api = await hub.app.inject({
      url: `/api/v1/events?kind=test.&limit=3&before=${newest.older}`,
      headers: { authorization: `Bearer ${hub.token}` },
    });
    assert.deepEqual(
      (api.json() as Page['events']).map((e) => e.subject),
      ['n:1', 'n:2', 'n:3'],
    );
  });
});
