/**
 * The campaign service inside a hub: how a start reaches the planner, and what a finished campaign shows.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createCertificate, subscribe } from '../helpers/agent.ts';
import { startTestHub } from '../helpers/hub.ts';

interface View {
  campaign: { id: string; state: string; certificates: number };
  progress: { certificates: number; issued: number; complete: boolean };
}

describe('emergency campaigns in the hub', () => {
  test('a started campaign asks the planner for exactly one pass, also when another hub started it', async (t) => {
    const hub = await startTestHub(t);
    await createCertificate(hub, 'web');
    let passes = 0;
    hub.planner!.requestRun = () => void passes++; // counts the requests instead of running a pass
    await hub.client.post('/api/v1/emergency/campaigns', { all: true });
    assert.equal(passes, 1, 'one request for a pass, not one from the service and one from the event');

    // Another hub's commit reaches this one only as the store's `campaign.changed` event.
    const cert = (await hub.ctx.store.getCertificate('web'))!;
    await hub.ctx.store.createCampaign(
      {
        id: 'elsewhere',
        selector: { kind: 'all' },
        options: { rekey: false, overrideWindows: false, reason: 'x' },
        items: [{ certificateId: cert.id }],
      },
      (s) => s,
      'admin:other-hub',
    );
    assert.equal(passes, 2);
  });

  test('a finished campaign keeps the counts it ended with (status does not compute them again)', async (t) => {
    const hub = await startTestHub(t);
    await createCertificate(hub, 'web');
    await createCertificate(hub, 'api');
    const started = await hub.client.post<View>('/api/v1/emergency/campaigns', { all: true });
    const id = started.campaign.id;
    await hub.renewal.renewNow('web', 'test');
    await hub.renewal.renewNow('api', 'test');
    await hub.campaigns!.tick(); // no endpoints subscribe: issued is all it takes
    const done = await hub.client.get<View>(`/api/v1/emergency/campaigns/${id}`);
    assert.equal(done.campaign.state, 'done');
    assert.deepEqual([done.progress.certificates, done.progress.issued], [2, 2]);

    // Deleting a certificate drops it from the campaign's items; the finished campaign still reads 2 of 2.
    await hub.ctx.store.deleteCertificate('api', 'test');
    const [listed] = await hub.client.get<View[]>('/api/v1/emergency/campaigns');
    assert.equal(listed.campaign.certificates, 1, 'the item is gone');
    assert.deepEqual(
      [listed.progress.certificates, listed.progress.issued, listed.progress.complete],
      [2, 2, true],
    );
  });

  test('after each look at a running campaign the next waits at least four times as long as that look took', async (t) => {
    const hub = await startTestHub(t);
    await createCertificate(hub, 'web');
    await createCertificate(hub, 'api');
    hub.planner!.requestRun = () => undefined; // no pass: 'api' stays unissued, so the campaign keeps running
    await hub.client.post('/api/v1/emergency/campaigns', { all: true });
    // A look reads the campaign's rows; here that takes at least 150 ms (a large fleet on a busy hub).
    const store = hub.ctx.store;
    const rows = store.campaignProgressRows.bind(store);
    const looks: Array<{ start: number; end: number }> = [];
    store.campaignProgressRows = async (id) => {
      const start = Date.now();
      await new Promise((r) => setTimeout(r, 150));
      const result = await rows(id);
      looks.push({ start, end: Date.now() });
      return result;
    };
    // The test hub runs no leader jobs: follow as the leader would. A stream of changes (a new version of 'web'
    // every 50 ms) asks for a look after each one.
    hub.campaigns!.startWatching();
    const deadline = Date.now() + 30_000;
    try {
      while (looks.length < 3 && Date.now() < deadline) {
        await hub.renewal.renewNow('web', 'test');
        await new Promise((r) => setTimeout(r, 50));
      }
    } finally {
      await hub.campaigns!.stop();
    }
    assert.ok(looks.length >= 3, `three looks within 30 s (saw ${looks.length})`);
    for (let i = 1; i < looks.length; i++) {
      const took = looks[i - 1].end - looks[i - 1].start;
      const quiet = looks[i].start - looks[i - 1].end;
      assert.ok(quiet >= 4 * took, `look ${i + 1} came ${quiet} ms after one that took ${took} ms`);
    }
  });

  test('a look at a running campaign counts what its report counts, without reading the whole fleet', async (t) => {
    const hub = await startTestHub(t);
    for (const name of ['web', 'api', 'mail']) await createCertificate(hub, name);
    for (const name of ['e1', 'e2']) await hub.client.post('/api/v1/endpoints', { name, kind: 'agent' });
    const subWeb1 = await subscribe(hub, 'e1', 'web');
    await subscribe(hub, 'e2', 'web');
    await subscribe(hub, 'e1', 'api');
    hub.planner!.requestRun = () => undefined; // issued below, one at a time
    const { store } = hub.ctx;
    const started = await hub.client.post<View>('/api/v1/emergency/campaigns', { all: true });
    const id = started.campaign.id;
    let fleetReads = 0;
    for (const read of ['fleet', 'certificateRows'] as const) {
      const original = store[read].bind(store) as (...a: unknown[]) => Promise<never>;
      (store as unknown as Record<string, unknown>)[read] = (...a: unknown[]) => {
        fleetReads++;
        return original(...a);
      };
    }
    const look = async () => {
      fleetReads = 0;
      const { progress } = await hub.client.get<{ progress: Record<string, unknown> }>(
        `/api/v1/emergency/campaigns/${id}`,
      );
      assert.equal(fleetReads, 0, 'a look reads no whole-fleet rows');
      const report = await hub.client.get<{ progress: Record<string, unknown> }>(
        `/api/v1/emergency/campaigns/${id}/report`,
      );
      assert.deepEqual(progress, report.progress, 'the look and the report agree');
      return progress;
    };
    const counts = (p: Record<string, unknown>) =>
      ['certificates', 'issued', 'deployments', 'delivered', 'verified', 'complete'].map((k) => p[k]);

    assert.deepEqual(counts(await look()), [3, 0, 3, 0, 0, false]);
    const web = await hub.renewal.renewNow('web', 'test');
    assert.deepEqual(counts(await look()), [3, 1, 3, 0, 0, false], 'issued; its deployments are pending');
    await store.transitionDeployment(subWeb1, web.id, 'delivered', {}, 'agent:e1');
    await store.transitionDeployment(subWeb1, web.id, 'installed', {}, 'agent:e1');
    await store.transitionDeployment(subWeb1, web.id, 'reloaded', {}, 'agent:e1');
    await store.transitionDeployment(subWeb1, web.id, 'verified', {}, 'agent:e1');
    assert.deepEqual(counts(await look()), [3, 1, 3, 1, 1, false]);
    await hub.renewal.renewNow('mail', 'test'); // no subscriber: issued is all it takes
    assert.deepEqual(counts(await look()), [3, 2, 3, 1, 1, false]);
  });
});
