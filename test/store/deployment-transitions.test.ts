/**
 * The store enforces the lifecycle table (src/deploy/states.ts): a move the table does not allow the actor is
 * refused with CONFLICT, changes nothing, announces nothing, and is itself recorded as
 * `deployment.transition_refused`.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import type { DeploymentState } from '../../src/deploy/states.ts';
import type { StoreEvent } from '../../src/store/store-events.ts';
import { DeploymentTransitionRefused } from '../../src/store/store.ts';
import { storeWithDeployments } from '../helpers/deployment-store.ts';

async function setup(t: TestContext) {
  const { store, subscriptionIds, v1, state, refusals } = await storeWithDeployments(t);
  const subscription = { id: subscriptionIds[0] };
  const move = (to: DeploymentState, actor: string) =>
    store.transitionDeployment(subscription.id, v1.id, to, {}, actor);
  const announced: StoreEvent[] = [];
  store.events.onAny((e) => announced.push(e));
  return { store, subscription, v1, move, announced, refusals, state };
}

describe('the store enforces the lifecycle table', () => {
  test('a new version starts pending, and the legal moves of agent and probe go through', async (t) => {
    const { move, state } = await setup(t);
    assert.equal(await state(), 'pending');
    for (const s of ['delivered', 'installed', 'reloaded', 'verified'] as const) await move(s, 'agent:web1');
    await move('diverged', 'probe');
    await move('verified', 'probe');
    assert.equal(await state(), 'verified');
  });

  test('a probe may not resurrect a rolled_back deployment: refused, unchanged, and the refusal recorded', async (t) => {
    const { move, state, announced, refusals, store, subscription, v1 } = await setup(t);
    await move('installed', 'agent:web1');
    const rolledBack = await move('rolled_back', 'agent:web1');
    announced.length = 0;

    await assert.rejects(move('verified', 'probe'), (e: unknown) => {
      assert.ok(e instanceof DeploymentTransitionRefused);
      assert.equal(e.code, 'CONFLICT');
      assert.equal(e.status, 409);
      assert.equal(e.message, 'probe may not move a deployment from rolled_back to verified');
      assert.match(e.hint, /certfleet deploy/);
      assert.deepEqual(e.details, {
        subscription_id: subscription.id,
        version_id: v1.id,
        actor: 'probe',
        from: 'rolled_back',
        to: 'verified',
      });
      return true;
    });

    assert.equal(await state(), 'rolled_back');
    assert.deepEqual(await store.getDeployment(subscription.id, v1.id), rolledBack, 'row untouched');
    assert.deepEqual(announced, [], 'nothing announced');
    const [refusal, ...more] = await refusals();
    assert.equal(more.length, 0);
    assert.equal(refusal.actor, 'probe');
    // Under the certificate's subject, with the deployment and endpoint in the data.
    assert.equal(refusal.subject, 'certificate:web');
    assert.equal(refusal.data.deployment_id, rolledBack.id);
    assert.equal(refusal.data.from, 'rolled_back');
    assert.equal(refusal.data.to, 'verified');
    assert.equal((await store.listEvents({ kind: 'deployment.verified' })).length, 0);
  });

  test("an agent may not overrule the probes' diverged with its own verify", async (t) => {
    const { move, state, refusals } = await setup(t);
    await move('reloaded', 'agent:web1');
    await move('diverged', 'probe');
    await assert.rejects(
      move('verified', 'agent:web1'),
      /agent:web1 may not move a deployment from diverged/,
    );
    assert.equal(await state(), 'diverged');
    assert.deepEqual(
      (await refusals()).map((e) => [e.actor, e.data.from, e.data.to]),
      [['agent:web1', 'diverged', 'verified']],
    );
  });

  test('a refused item aborts its whole batch; the refusal is recorded once', async (t) => {
    const { store, subscription, v1, state, announced, refusals } = await setup(t);
    const item = (state: 'installed' | 'reloaded' | 'diverged') => ({
      subscriptionId: subscription.id,
      versionId: v1.id,
      state,
      info: {},
      actor: 'agent:web1',
    });
    const batch = [item('installed'), item('reloaded'), item('diverged')];
    await assert.rejects(store.transitionDeployments(batch), (e: unknown) => {
      assert.ok(e instanceof DeploymentTransitionRefused);
      assert.equal(e.input, batch[2], 'names the refused item itself');
      assert.equal(e.from, 'reloaded', 'judged against the state the earlier items of the batch left');
      return true;
    });
    assert.equal(await state(), 'pending');
    assert.deepEqual(announced, []);
    assert.equal((await refusals()).length, 1);
  });

  test('an admin redeploy reopens a failed deployment as pending, and the agent may then deploy it again', async (t) => {
    const { store, subscription, v1, move, state } = await setup(t);
    await move('delivered', 'agent:web1');
    await move('failed', 'agent:web1');
    await assert.rejects(move('installed', 'agent:web1'), /from failed to installed/);

    await store.requestRedeploy(subscription.id, v1.id, { overrideWindow: false }, 'admin:ops');
    assert.equal(await state(), 'pending');
    const [reopened] = await store.listEvents({ kind: 'deployment.pending' });
    assert.equal(reopened.actor, 'admin:ops');
    assert.equal(reopened.data.from, 'failed');
    const [requested] = await store.listEvents({ kind: 'deployment.redeploy_requested' });
    assert.equal(requested.data.from, 'failed', 'the request names the state it was made in');

    await move('installed', 'agent:web1');
    await move('reloaded', 'agent:web1');
    assert.equal(await state(), 'reloaded');
  });

  test('a redeploy leaves a verified deployment as it is (the agent runs the pipeline again from there)', async (t) => {
    const { store, subscription, v1, move, state } = await setup(t);
    await move('reloaded', 'agent:web1');
    await move('verified', 'probe');
    await store.requestRedeploy(subscription.id, v1.id, { overrideWindow: true }, 'admin:ops');
    assert.equal(await state(), 'verified');
    await move('reloaded', 'agent:web1');
    assert.equal(await state(), 'reloaded');
  });
});
