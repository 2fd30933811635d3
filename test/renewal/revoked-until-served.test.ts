/**
 * Revocation as a planner input, through the real store and renewal service: a revoked certificate stays due
 * (Revoked, urgent) after its replacement is issued, without another issuance, until the replacement is verified
 * on every subscribed endpoint.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluateRenewal } from '../../src/hub/planner/index.ts';
import { createCertificate, subscribe } from '../helpers/agent.ts';
import { startTestHub } from '../helpers/hub.ts';

test('a revoked certificate stays due until its replacement is served on every endpoint, not merely issued', async (t) => {
  const hub = await startTestHub(t);
  await createCertificate(hub, 'web', ['web.test']);
  for (const name of ['web1', 'web2']) await hub.client.post('/api/v1/endpoints', { name, kind: 'agent' });
  const subs = [await subscribe(hub, 'web1', 'web'), await subscribe(hub, 'web2', 'web')];
  const cert = (await hub.ctx.store.getCertificate('web'))!;
  const decide = async () => {
    const { input } = await hub.renewal.planInputFor(cert);
    return evaluateRenewal(input, hub.renewal.policy);
  };

  const revoked = await hub.renewal.revoke('web', 'keyCompromise', 'admin:test');
  const replacement = (await hub.ctx.store.currentVersion(cert.id))!;
  assert.equal(revoked.renewed?.id, replacement.id, 'the replacement is issued');

  let d = await decide();
  assert.deepEqual([d.reason, d.reissue, d.urgent], ['Revoked', false, true]);
  assert.match(d.message, /replacement is issued but not yet served on 2 of 2 subscribed endpoints/);
  const report = await hub.planner!.runOnce();
  assert.deepEqual(report.issued, [], 'no second replacement: what is missing is delivery');

  await hub.ctx.store.transitionDeployment(subs[0], replacement.id, 'verified', {}, 'agent:web1');
  d = await decide();
  assert.deepEqual([d.reason, d.urgent], ['Revoked', true]);
  assert.match(d.message, /not yet served on 1 of 2/);

  await hub.ctx.store.transitionDeployment(subs[1], replacement.id, 'verified', {}, 'agent:web2');
  d = await decide();
  assert.deepEqual([d.reason, d.reissue], ['NotDue', false]);
});
