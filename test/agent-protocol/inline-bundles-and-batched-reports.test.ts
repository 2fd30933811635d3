import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openSealedKey } from '../../src/protocol/sealed-key.ts';
import type { DesiredState } from '../../src/protocol/wire.ts';
import { certMatchesKey } from '../../src/pki/inspect.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { startTestHub } from '../helpers/hub.ts';
import { createCertificate, enrollTestAgent, subscribe } from '../helpers/agent.ts';

describe('bundles inlined in the long-poll answer', () => {
  test('sealed per agent when the agent lacks the version; absent when it holds it or did not ask', async (t) => {
    const hub = await startTestHub(t);
    await createCertificate(hub, 'web');
    const [a, b] = [await enrollTestAgent(t, hub, 'web1'), await enrollTestAgent(t, hub, 'web2')];
    await subscribe(hub, 'web1', 'web');
    await subscribe(hub, 'web2', 'web');

    const old = await a.client.desired(-1, 0);
    assert.equal(old.subscriptions[0].bundle, undefined, 'no `have` → no inline bundle (older agents)');
    const v = old.subscriptions[0].version!;

    const sa = (await a.client.desired(-1, 0, { have: [] })).subscriptions[0];
    const sb = (await b.client.desired(-1, 0, { have: [] })).subscriptions[0];
    assert.equal(sa.bundle?.versionId, v.id);
    assert.equal(sa.bundle?.fingerprint, v.fingerprint);
    assert.notEqual(sa.bundle!.sealedKey.epk, sb.bundle!.sealedKey.epk, 'a fresh ephemeral key per agent');
    assert.doesNotMatch(JSON.stringify(sa), /PRIVATE KEY/);
    const keyPem = openSealedKey(sa.bundle!.sealedKey, a.identity.keys.sealing, a.identity.endpointId, v.id);
    assert.ok(certMatchesKey(sa.bundle!.certPem, keyPem));
    assert.throws(
      () => openSealedKey(sa.bundle!.sealedKey, b.identity.keys.sealing, b.identity.endpointId, v.id),
      { code: 'FORBIDDEN', message: 'cannot open the sealed private key' },
    );

    const held = (await a.client.desired(-1, 0, { have: [v.id] })).subscriptions[0];
    assert.equal(held.bundle, undefined, 'the agent holds this version');

    // A renewal wakes the parked poll with the new version's bundle inline.
    const parked = a.client.desired(old.revision, 20, { have: [v.id] });
    await new Promise((r) => setTimeout(r, 100));
    const v2 = await hub.renewal.renewNow('web', 'test');
    const woken = (await parked).subscriptions[0];
    assert.equal(woken.version?.id, v2.id);
    assert.equal(woken.bundle?.versionId, v2.id);
    assert.ok(
      certMatchesKey(
        woken.bundle!.certPem,
        openSealedKey(woken.bundle!.sealedKey, a.identity.keys.sealing, a.identity.endpointId, v2.id),
      ),
    );
  });
});

describe('a renewal waking more parked long-polls than the hub answers at once', () => {
  test('every woken poll gets its own sealed bundle, polls that hung up free their place, and the next renewal is answered too', async (t) => {
    const hub = await startTestHub(t);
    await createCertificate(hub, 'web');
    // more than the answers the hub builds and writes at once (32, src/hub/api/agent-routes.ts)
    const agents = await Promise.all(
      Array.from({ length: 40 }, (_, i) => enrollTestAgent(t, hub, `web${i}`)),
    );
    for (const a of agents) await subscribe(hub, a.name, 'web');
    const first = await agents[0].client.desired(-1, 0);
    let held = first.subscriptions[0].version!.id;
    let since = first.revision;

    for (const round of [1, 2]) {
      const leaving = agents.slice(0, 5).map(() => new AbortController());
      const parked = agents.map((a, i) =>
        a.client.desired(since, 20, { have: [held], ...(leaving[i] ? { signal: leaving[i].signal } : {}) }),
      );
      const settled = Promise.allSettled(parked);
      await new Promise((r) => setTimeout(r, 300));
      for (const c of leaving) c.abort();
      const v = await hub.renewal.renewNow('web', `test round ${round}`);
      const answers = await settled;
      answers.slice(0, 5).forEach((a) => assert.equal(a.status, 'rejected', 'the agent hung up'));
      answers.slice(5).forEach((a, i) => {
        assert.equal(a.status, 'fulfilled');
        const state = (a as PromiseFulfilledResult<DesiredState>).value;
        const bundle = state.subscriptions[0].bundle!;
        assert.equal(bundle.versionId, v.id);
        const agent = agents[i + 5];
        const key = openSealedKey(
          bundle.sealedKey,
          agent.identity.keys.sealing,
          agent.identity.endpointId,
          v.id,
        );
        assert.ok(certMatchesKey(bundle.certPem, key));
        since = Math.max(since, state.revision);
      });
      held = v.id;
    }
  });
});

describe('batched agent reports', () => {
  test('concurrent reports each become a transition + event, hooks fire after commit, answers after commit', async (t) => {
    const hub = await startTestHub(t);
    await createCertificate(hub, 'web');
    const agents = await Promise.all(
      Array.from({ length: 12 }, (_, i) => enrollTestAgent(t, hub, `web${i}`)),
    );
    const subs = await Promise.all(agents.map((a) => subscribe(hub, a.name, 'web')));
    const versionId = (await hub.ctx.store.currentVersion((await hub.ctx.store.getCertificate('web'))!.id))!
      .id;

    const seen: Array<{ subscriptionId: string; state: string; actor: string; committed: boolean }> = [];
    const off = hub.ctx.store.events.on('deployment.transitioned', ({ deployment: tr, actor }) => {
      seen.push({ subscriptionId: tr.subscriptionId, state: tr.state, actor, committed: false });
      // Runs after the commit: the transition is already readable from the store.
      void hub.ctx.store.getDeployment(tr.subscriptionId, tr.versionId).then((d) => {
        seen.find((s) => s.subscriptionId === tr.subscriptionId && s.state === tr.state)!.committed =
          d?.state === tr.state || d?.state === 'reloaded';
      });
    });
    onCleanup(t, off);

    const at = new Date().toISOString();
    const answers = await Promise.all(
      agents.map(async (a, i) => {
        const accepted = await a.client.report([
          { subscriptionId: subs[i], versionId, state: 'installed', at },
          { subscriptionId: subs[i], versionId, state: 'reloaded', at },
        ]);
        // Durable before acknowledged: the answer comes after the commit.
        const d = await hub.ctx.store.getDeployment(subs[i], versionId);
        return { accepted, state: d?.state };
      }),
    );
    for (const x of answers) assert.deepEqual(x, { accepted: { accepted: 2 }, state: 'reloaded' });

    const events = await hub.ctx.store.listEvents({ kind: 'deployment.', limit: 1000 });
    for (const [i, a] of agents.entries()) {
      const mine = events.filter((e) => e.actor === `agent:${a.name}`).map((e) => e.kind);
      assert.deepEqual(mine, ['deployment.installed', 'deployment.reloaded'], `events of ${a.name}`);
      assert.deepEqual(
        seen.filter((s) => s.subscriptionId === subs[i]).map((s) => s.state),
        ['installed', 'reloaded'],
        `hook calls for ${a.name}`,
      );
    }
    await new Promise((r) => setImmediate(r));
    assert.ok(seen.every((s) => s.committed && s.actor.startsWith('agent:web')));

    // A refused report (another endpoint's subscription) fails only its own request.
    const [good, bad] = await Promise.allSettled([
      agents[0].client.report([{ subscriptionId: subs[0], versionId, state: 'verified', at }]),
      agents[1].client.report([{ subscriptionId: subs[0], versionId, state: 'verified', at }]),
    ]);
    assert.equal(good.status, 'fulfilled');
    assert.equal(bad.status, 'rejected');
    assert.equal((await hub.ctx.store.getDeployment(subs[0], versionId))?.state, 'verified');
  });
});
