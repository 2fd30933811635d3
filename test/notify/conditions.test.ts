import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DAY_MS, ManualClock } from '../../src/core/clock.ts';
import {
  agentSilentAlerts,
  deadMansSwitchAlert,
  deploymentAlerts,
  expiryAlerts,
  renewalFailureAlerts,
} from '../../src/notify/conditions.ts';

const T0 = new Date('2026-01-01T00:00:00Z');
const MIN = 60_000;
const HOUR = 60 * MIN;

describe('expiryAlerts: thresholds scale with the lifetime', () => {
  const rows: Array<[string, number, number, string | undefined]> = [
    // [sentence, lifetime days, days left, expected stage]
    ['a 30-day certificate with 11 days left raises nothing', 30, 11, undefined],
    ['a 30-day certificate with 10 days left warns', 30, 10, 'warning'],
    ['a 30-day certificate with 6 days left still only warns', 30, 6, 'warning'],
    ['a 30-day certificate with 5 days left is critical', 30, 5, 'critical'],
    ['a 30-day certificate with 3 days left is critical', 30, 3, 'critical'],
    ['a 30-day certificate with 2 days left is imminent', 30, 2, 'imminent'],
    ['a 30-day certificate past its notAfter has expired', 30, -1, 'expired'],
    ['a 6-day certificate with 2.1 days left raises nothing', 6, 2.1, undefined],
    ['a 6-day certificate with 2 days left warns', 6, 2, 'warning'],
    ['a 6-day certificate with 1 day left is critical', 6, 1, 'critical'],
    ['a 6-day certificate with 0.4 days left is imminent', 6, 0.4, 'imminent'],
    ['a 90-day certificate with 30 days left warns', 90, 30, 'warning'],
    ['a 90-day certificate with 31 days left raises nothing', 90, 31, undefined],
  ];
  for (const [sentence, lifetime, left, stage] of rows) {
    test(sentence, () => {
      const clock = new ManualClock(T0);
      const cert = { name: 'web', notBefore: T0, notAfter: new Date(T0.getTime() + lifetime * DAY_MS) };
      clock.set(cert.notAfter.getTime() - left * DAY_MS);
      const alerts = expiryAlerts([cert], clock.now());
      if (stage === undefined) {
        assert.deepEqual(alerts, []);
        return;
      }
      assert.equal(alerts.length, 1);
      const a = alerts[0];
      assert.equal(a.key, 'expiring:cert:web', 'one key per certificate whatever the stage');
      assert.equal(a.kind, 'expiring');
      assert.equal(a.details?.stage, stage);
      assert.equal(a.severity, stage === 'warning' ? 'warning' : 'critical');
      assert.deepEqual(a.subject, { certificate: 'web' });
      assert.equal(a.at, clock.now().toISOString());
      assert.match(a.message, /certfleet renew web/, 'the message names the fix');
    });
  }

  test('titles read as sentences and the level rises with each stage', () => {
    const cert = { name: 'web', notBefore: T0, notAfter: new Date(T0.getTime() + 30 * DAY_MS) };
    const at = (daysLeft: number) =>
      expiryAlerts([cert], new Date(cert.notAfter.getTime() - daysLeft * DAY_MS))[0];
    assert.equal(at(10).title, 'certificate web expires in 10 days');
    assert.equal(at(3).title, 'certificate web expires in 3 days');
    assert.equal(at(2).title, 'certificate web expires in 2 days (imminent)');
    assert.equal(at(-2).title, 'certificate web expired 2 days ago');
    assert.deepEqual(
      [10, 5, 2, -1].map((d) => at(d).level),
      [1, 2, 3, 4],
    );
  });
});

describe('agentSilentAlerts', () => {
  const clock = new ManualClock(T0);
  const silentAfter = 15 * MIN;
  const endpoints = [
    { name: 'web1', kind: 'agent', lastSeenAt: T0 },
    { name: 'lb', kind: 'connector' },
    { name: 'new-agent', kind: 'agent' },
    { name: 'created-agent', kind: 'agent', createdAt: T0 },
  ];

  test('an agent seen within the configured time is not silent', () => {
    clock.set(T0.getTime() + silentAfter - 1);
    assert.deepEqual(agentSilentAlerts(endpoints, clock.now(), silentAfter), []);
  });

  test('an agent silent for the configured time fires; connectors and never-created agents do not', () => {
    clock.set(T0.getTime() + silentAfter);
    const alerts = agentSilentAlerts(endpoints, clock.now(), silentAfter);
    assert.deepEqual(
      alerts.map((a) => a.key),
      ['agent_silent:web1', 'agent_silent:created-agent'],
    );
    assert.equal(alerts[0].title, 'agent on endpoint web1 silent for 15 minutes');
    assert.equal(alerts[1].title, 'agent on endpoint created-agent has never checked in');
    assert.deepEqual(alerts[0].subject, { endpoint: 'web1' });
    assert.match(alerts[0].message, /systemctl status certfleet-agent/);
  });
});

describe('deadMansSwitchAlert: the planner must keep running', () => {
  const maxAge = 10 * MIN;
  const hubStartedAt = T0;

  test('does not fire during the first N minutes after the hub starts, even if the planner never ran', () => {
    assert.equal(
      deadMansSwitchAlert(undefined, new Date(T0.getTime() + maxAge - 1), maxAge, hubStartedAt),
      undefined,
    );
    // A run recorded before a restart is old, but the restarted hub still gets its grace period.
    const beforeRestart = new Date(T0.getTime() - 3 * HOUR);
    assert.equal(
      deadMansSwitchAlert(beforeRestart, new Date(T0.getTime() + 5 * MIN), maxAge, hubStartedAt),
      undefined,
    );
  });

  test('fires once the planner has not run for N minutes', () => {
    const clock = new ManualClock(T0.getTime() + HOUR);
    const lastRun = new Date(clock.now().getTime() - 5 * MIN);
    assert.equal(deadMansSwitchAlert(lastRun, clock.now(), maxAge, hubStartedAt), undefined);
    clock.advance(5 * MIN);
    const a = deadMansSwitchAlert(lastRun, clock.now(), maxAge, hubStartedAt);
    assert.ok(a);
    assert.equal(a.key, 'dead_mans_switch:planner');
    assert.equal(a.severity, 'critical');
    assert.equal(a.title, 'planner has not run for 10 minutes');
    assert.ok(deadMansSwitchAlert(undefined, new Date(T0.getTime() + maxAge), maxAge, hubStartedAt));
  });
});

describe('deploymentAlerts', () => {
  const now = new Date(T0.getTime() + DAY_MS);
  const base = { certificate: 'web', updatedAt: T0 };

  test('failed, rolled back, diverged and a passed change window raise alerts; healthy states do not', () => {
    const alerts = deploymentAlerts(
      [
        { ...base, endpoint: 'e1', state: 'failed', reason: 'nginx -t: cannot load certificate' },
        { ...base, endpoint: 'e2', state: 'rolled_back', reason: 'verify failed' },
        { ...base, endpoint: 'e3', state: 'diverged' },
        { ...base, endpoint: 'e4', state: 'waiting_window', windowEndsAt: new Date(now.getTime() - 1) },
        { ...base, endpoint: 'e5', state: 'waiting_window', windowEndsAt: new Date(now.getTime() + HOUR) },
        { ...base, endpoint: 'e6', state: 'verified' },
        { ...base, endpoint: 'e7', state: 'pending' },
      ],
      now,
    );
    assert.deepEqual(
      alerts.map((a) => [a.key, a.severity]),
      [
        ['deployment_failed:web:e1', 'critical'],
        ['rolled_back:web:e2', 'warning'],
        ['diverged:web:e3', 'critical'],
        ['window_missed:web:e4', 'warning'],
      ],
    );
    assert.match(alerts[0].message, /nginx -t: cannot load certificate/);
    assert.deepEqual(alerts[2].subject, { certificate: 'web', endpoint: 'e3' });
  });
});

describe('renewalFailureAlerts', () => {
  test('failing renewals warn, urgent ones are critical, healthy ones stay quiet', () => {
    const alerts = renewalFailureAlerts([
      { name: 'ok', failures: 0, urgent: false },
      { name: 'api', failures: 2, lastError: 'rateLimited: too many certificates', urgent: false },
      { name: 'web', failures: 5, urgent: true },
    ]);
    assert.deepEqual(
      alerts.map((a) => [a.key, a.severity]),
      [
        ['renewal_failed:cert:api', 'warning'],
        ['renewal_failed:cert:web', 'critical'],
      ],
    );
    assert.equal(alerts[0].title, 'renewal of certificate api failed 2 times');
    assert.match(alerts[0].message, /rateLimited: too many certificates/);
  });
});
