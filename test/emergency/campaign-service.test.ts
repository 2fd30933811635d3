/**
 * The campaign service inside a hub: how a start reaches the planner, and what a finished campaign shows.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createCertificate } from '../helpers/agent.ts';
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
});
