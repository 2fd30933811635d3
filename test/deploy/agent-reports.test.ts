/**
 * Agent reports meet the lifecycle table twice: the report schema admits only the states an agent may report
 * (400 otherwise), and the store refuses a move the table does not allow from the current state (409). A request
 * is all or nothing; in the hub's report batches a refused request fails alone.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CertfleetError } from '../../src/core/errors.ts';
import { ReportWriter } from '../../src/hub/agent-protocol/report-writer.ts';
import { DeploymentTransitionRefused, type DeploymentTransitionInput } from '../../src/store/store.ts';
import { createCertificate, enrollTestAgent, subscribe } from '../helpers/agent.ts';
import { storeWithDeployments } from '../helpers/deployment-store.ts';
import { startTestHub } from '../helpers/hub.ts';

describe('POST /agent/report', () => {
  test('an agent reporting diverged gets a 400 that names the states it may report; nothing changes', async (t) => {
    const hub = await startTestHub(t);
    await createCertificate(hub, 'web');
    const agent = await enrollTestAgent(t, hub, 'web1');
    const subscriptionId = await subscribe(hub, 'web1', 'web');
    const versionId = (await hub.ctx.store.currentVersion((await hub.ctx.store.getCertificate('web'))!.id))!
      .id;
    const report = { subscriptionId, versionId, state: 'diverged', at: new Date().toISOString() };

    for (const [body, path] of [
      [report, 'state'],
      [{ reports: [{ ...report, state: 'installed' }, report] }, 'reports[1].state'],
    ] as const) {
      await assert.rejects(agent.client.request('POST', '/api/v1/agent/report', body), (e: unknown) => {
        assert.ok(e instanceof CertfleetError);
        assert.equal(e.code, 'VALIDATION_FAILED');
        assert.equal(
          e.message,
          `invalid body: ${path}: an agent reports one of delivered, installed, waiting_window, reloaded, ` +
            'verified, failed, rolled_back; pending is set by the hub, diverged by its probes',
        );
        return true;
      });
    }
    assert.equal((await hub.ctx.store.getDeployment(subscriptionId, versionId))?.state, 'pending');
    assert.equal((await hub.ctx.store.listEvents({ kind: 'deployment.' })).length, 0);
  });

  test('a move the table refuses answers 409 with a hint; none of that request is applied', async (t) => {
    const hub = await startTestHub(t);
    await createCertificate(hub, 'web');
    const agent = await enrollTestAgent(t, hub, 'web1');
    const subscriptionId = await subscribe(hub, 'web1', 'web');
    const versionId = (await hub.ctx.store.currentVersion((await hub.ctx.store.getCertificate('web'))!.id))!
      .id;
    const at = new Date().toISOString();
    await agent.client.report([{ subscriptionId, versionId, state: 'failed', reason: 'validation', at }]);

    // A failed attempt is over for the agent: installing again needs an admin redeploy first.
    const batch = [
      { subscriptionId, versionId, state: 'failed' as const, reason: 'validation', at },
      { subscriptionId, versionId, state: 'installed' as const, at },
    ];
    await assert.rejects(agent.client.report(batch), (e: unknown) => {
      assert.ok(e instanceof CertfleetError);
      assert.equal(e.code, 'CONFLICT');
      assert.equal(e.details?.httpStatus, 409);
      assert.equal(e.message, 'agent:web1 may not move a deployment from failed to installed');
      assert.match(e.hint, /certfleet deploy/);
      return true;
    });
    const failedEvents = await hub.ctx.store.listEvents({ kind: 'deployment.failed' });
    assert.equal(failedEvents.length, 1, 'the repeated failed report of the refused request was not applied');
    const refusals = await hub.ctx.store.listEvents({ kind: 'deployment.transition_refused' });
    assert.deepEqual(
      refusals.map((e) => [e.actor, e.data.from, e.data.to]),
      [['agent:web1', 'failed', 'installed']],
    );

    // Sent one by one (as the agent's outbox does after a refused batch), the legal report lands.
    await agent.client.report([batch[0]]);
    assert.equal((await hub.ctx.store.listEvents({ kind: 'deployment.failed' })).length, 2);
  });
});

describe('report batches', () => {
  test('a refused request fails alone: the other requests of its batch commit, the refusal is recorded once', async (t) => {
    const { store, subscriptionIds, v1, state, refusals } = await storeWithDeployments(t, 3);
    // A window long enough that all three requests share one batch, written by drain().
    const writer = new ReportWriter(store, 60_000);
    const item = (i: number, to: DeploymentTransitionInput['state']): DeploymentTransitionInput => ({
      subscriptionId: subscriptionIds[i],
      versionId: v1.id,
      state: to,
      info: {},
      actor: `agent:web${i + 1}`,
    });
    const answers = Promise.allSettled([
      writer.write([item(0, 'installed'), item(0, 'reloaded')]),
      writer.write([item(1, 'installed'), item(1, 'diverged')]),
      writer.write([item(2, 'delivered')]),
    ]);
    await writer.drain();
    const [first, second, third] = await answers;

    assert.equal(first.status, 'fulfilled');
    assert.equal(third.status, 'fulfilled');
    assert.equal(second.status, 'rejected');
    assert.ok(second.reason instanceof DeploymentTransitionRefused);
    assert.deepEqual([await state(0), await state(1), await state(2)], ['reloaded', 'pending', 'delivered']);
    assert.deepEqual(
      (await refusals()).map((e) => [e.actor, e.data.from, e.data.to]),
      [['agent:web2', 'installed', 'diverged']],
    );
  });
});
