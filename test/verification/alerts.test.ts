/**
 * The hub's alert loop over a real webhook receiver, driven by a ManualClock: expiry thresholds scale with the
 * lifetime (1/3 → warning, 1/6 → critical, 1/15 → imminent) and resolve after the planner renews; the dead man's
 * switch fires when the planner stops running; a silent agent fires; failed renewals and rolled-back deployments
 * fire; state survives a restart of the alert service; `certfleet alerts test|list` against real receivers.
 */
import { join } from 'node:path';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AlertService } from '../../src/hub/alert-service.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { startHttpReceiver } from '../helpers/http-receiver.ts';
import { startSmtpReceiver } from '../helpers/smtp-receiver.ts';
import { closedPort } from '../helpers/tls-servers.ts';
import { runCli } from '../helpers/cli.ts';
import { createFleet, startVerificationHub, type VerificationHub } from './verification-hub.ts';

const MIN = 60_000;
const DAY = 86_400_000;

const cliEnv = (hub: VerificationHub) => ({
  CERTFLEET_HUB: hub.url,
  CERTFLEET_TOKEN: hub.token,
  CERTFLEET_CA_FILE: join(hub.dir, 'data', 'ca.pem'),
});

test('expiry escalates and resolves on renewal; dead man switch, silent agent, renewal failure, rollback', async (t) => {
  const webhook = await startHttpReceiver();
  onCleanup(t, () => webhook.close());
  const hub = await startVerificationHub(t, {
    alerts: {
      evaluateEverySeconds: 3600, // evaluated by hand below
      agentSilentAfterMinutes: 30,
      deadMansSwitchMinutes: 15,
      channels: [{ kind: 'webhook', name: 'hook', url: webhook.url }],
    },
  });
  const alerts = hub.verification.alerts;
  const store = hub.ctx.store;
  const { cert, endpoint, sub, version } = await createFleet(hub, {
    name: 'api',
    targets: [],
    lifetimeDays: 30,
  });
  await store.touchEndpoint(endpoint.id, hub.clock.now().toISOString());
  const seen = (reason: string, kind: string) => async () =>
    (await alerts.runOnce()).notified.filter((n) => n.reason === reason && n.alert.kind === kind);
  const fire = async () => (await alerts.runOnce()).notified.map((n) => `${n.reason}:${n.alert.key}`).sort();

  // fresh: nothing fires
  assert.deepEqual(await fire(), []);

  // 31 minutes later: the planner never ran and the agent went quiet
  hub.clock.advance(31 * MIN);
  assert.deepEqual(await fire(), ['fired:agent_silent:api-edge', 'fired:dead_mans_switch:planner']);
  assert.deepEqual(await fire(), [], 'de-duplicated while still firing');
  await hub.planner!.runOnce();
  await store.touchEndpoint(endpoint.id, hub.clock.now().toISOString());
  assert.deepEqual(await fire(), ['resolved:agent_silent:api-edge', 'resolved:dead_mans_switch:planner']);

  // expiry stages by share of the 30-day lifetime left (planner runs alongside so the switch stays quiet)
  const at = (days: number) => {
    hub.clock.set(Date.parse(version.notBefore) + days * DAY);
  };
  const expiring = async () => {
    await store.touchEndpoint(endpoint.id, hub.clock.now().toISOString());
    await store.setMeta('planner.last_run_at', hub.clock.now().toISOString());
    return (await alerts.runOnce()).notified.filter((n) => n.alert.kind === 'expiring');
  };
  at(19.5); // 10.5 days left > 1/3
  assert.equal((await expiring()).length, 0);
  at(20.5); // 9.5 days left ≤ 1/3
  let n = await expiring();
  assert.deepEqual(
    n.map((x) => [x.reason, x.alert.severity, x.alert.details?.stage]),
    [['fired', 'warning', 'warning']],
  );
  assert.match(n[0].alert.title, /certificate api expires in 9 days/);
  at(25.5); // 4.5 left ≤ 1/6
  n = await expiring();
  assert.deepEqual(
    n.map((x) => [x.reason, x.alert.severity, x.alert.details?.stage]),
    [['escalated', 'critical', 'critical']],
  );
  at(28.5); // 1.5 left ≤ 1/15
  n = await expiring();
  assert.deepEqual(
    n.map((x) => [x.reason, x.alert.details?.stage]),
    [['escalated', 'imminent']],
  );
  // the planner renews (past 2/3 of the lifetime); the new version is far from expiry → resolved
  const report = await hub.planner!.runOnce();
  assert.deepEqual(report.issued, ['api']);
  n = await expiring();
  assert.deepEqual(
    n.map((x) => x.reason),
    ['resolved'],
  );
  const bodies = webhook
    .accepted()
    .map((r) => JSON.parse(r.body) as { kind: string; status: string; severity: string });
  assert.deepEqual(
    bodies.filter((b) => b.kind === 'expiring').map((b) => `${b.status}/${b.severity}`),
    ['firing/warning', 'firing/critical', 'firing/critical', 'resolved/critical'],
  );

  // renewal failures and a rolled-back deployment of the current version
  const current = (await store.currentVersion(cert.id))!;
  await store.setRenewalState(cert.id, {
    failures: { count: 3, lastFailureAt: hub.clock.now().toISOString(), lastError: 'acme: rateLimited' },
  });
  await store.transitionDeployment(
    sub.id,
    current.id,
    'rolled_back',
    { reason: 'nginx -t failed' },
    'agent:api-edge',
  );
  const keys = await fire();
  assert.ok(keys.includes('fired:renewal_failed:cert:api'), keys.join());
  assert.ok(keys.includes('fired:rolled_back:api:api-edge'), keys.join());
  assert.ok((await seen('fired', 'renewal_failed')()).length === 0);

  // a restarted alert service (same store) remembers what fired: nothing is sent again
  const before = webhook.requests.length;
  const restarted = new AlertService(hub.ctx, alerts.config);
  onCleanup(t, () => restarted.stop());
  const again = await restarted.runOnce();
  assert.deepEqual(again.notified, []);
  assert.equal(webhook.requests.length, before);
  assert.ok(again.active >= 2);

  // every alert is an event
  const events = await store.listEvents({ kind: 'alert.', limit: 1000 });
  assert.ok(events.some((e) => e.kind === 'alert.escalated' && e.data.alertKind === 'expiring'));
  assert.ok(events.some((e) => e.kind === 'alert.resolved' && e.data.alertKind === 'dead_mans_switch'));
  assert.ok(events.every((e) => e.actor === 'alerts'));
});

test('certfleet alerts test reports each channel against real receivers; list shows what fires', async (t) => {
  const webhook = await startHttpReceiver();
  onCleanup(t, () => webhook.close());
  const smtp = await startSmtpReceiver();
  onCleanup(t, () => smtp.close());
  const dead = await closedPort();
  const channels = [
    { kind: 'webhook', name: 'hook', url: `${webhook.url}/x`, secret: 'another-secret-0123456789' },
    {
      kind: 'email',
      name: 'mail',
      host: smtp.host,
      port: smtp.port,
      starttls: false,
      from: 'certfleet@example.test',
      to: ['ops@example.test'],
    },
  ];
  const good = await startVerificationHub(t, { alerts: { evaluateEverySeconds: 3600, channels } });
  const ok = await runCli(['alerts', 'test'], cliEnv(good));
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /hook\s+webhook\s+delivered/);
  assert.match(ok.stdout, /mail\s+email\s+delivered/);
  assert.equal(JSON.parse(webhook.accepted()[0].body).kind, 'test');
  assert.match(smtp.messages[0].subject, /TEST/);

  const bad = await startVerificationHub(t, {
    alerts: {
      evaluateEverySeconds: 3600,
      channels: [
        ...channels,
        { kind: 'webhook', name: 'dead', url: `http://127.0.0.1:${dead}/`, timeoutMs: 2000 },
      ],
    },
  });
  const failed = await runCli(['alerts', 'test'], cliEnv(bad));
  assert.equal(failed.code, 1);
  assert.match(failed.stdout, /dead\s+webhook\s+FAILED/);
  assert.match(failed.stdout, /hook\s+webhook\s+delivered/);
  assert.match(failed.stderr, /1 of 3 alert channels failed: dead/);
  assert.equal(webhook.accepted().length, 2);

  // list: the dead man's switch after the planner stayed quiet for 16 minutes
  bad.clock.advance(16 * MIN);
  await bad.verification.alerts.runOnce();
  const list = await runCli(['alerts', 'list'], cliEnv(bad));
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, /critical\s+dead_mans_switch/);
});
