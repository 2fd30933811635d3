/** The verified / diverged rules as a table of sentences, with a fixed clock. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { judgeDeployment } from '../../src/hub/probe-judgement.ts';
import { sanCovers, targetsForSubscription } from '../../src/probe/probe-targets.ts';

const NEW = 'aa'.repeat(32);
const OLD = 'bb'.repeat(32);
const T0 = new Date('2026-11-23T10:00:00Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);
const obs = (...fps: Array<string | undefined>) =>
  fps.map((fingerprint, i) => ({
    key: `t${i}`,
    ...(fingerprint ? { fingerprint } : { errorKind: 'refused' }),
  }));
// a window every day at 10:00 UTC for 60 minutes
const window = { cron: '0 10 * * *', durationMinutes: 60, timezone: 'UTC' };

const rows: Array<[string, Parameters<typeof judgeDeployment>[0], string, string]> = [
  [
    'every target serves the version → verify',
    {
      deployment: { state: 'reloaded', updatedAt: T0.toISOString() },
      expected: NEW,
      observations: obs(NEW, NEW),
      now: at(1),
      graceMs: 300_000,
    },
    'verified',
    'verify',
  ],
  [
    'already verified → nothing to write',
    {
      deployment: { state: 'verified', updatedAt: T0.toISOString() },
      expected: NEW,
      observations: obs(NEW),
      now: at(1),
      graceMs: 300_000,
    },
    'verified',
    'none',
  ],
  [
    'one target of two still old, within grace → grace',
    {
      deployment: { state: 'reloaded', updatedAt: T0.toISOString() },
      expected: NEW,
      observations: obs(NEW, OLD),
      now: at(299),
      graceMs: 300_000,
    },
    'grace',
    'none',
  ],
  [
    'old after the grace period → diverge',
    {
      deployment: { state: 'reloaded', updatedAt: T0.toISOString() },
      expected: NEW,
      observations: obs(NEW, OLD),
      now: at(301),
      graceMs: 300_000,
    },
    'diverged',
    'diverge',
  ],
  [
    'verified then replaced by something else → diverge',
    {
      deployment: { state: 'verified', updatedAt: T0.toISOString() },
      expected: NEW,
      observations: obs(OLD),
      now: at(3600),
      graceMs: 300_000,
    },
    'diverged',
    'diverge',
  ],
  [
    'not reloaded yet (installed) → old is expected',
    {
      deployment: { state: 'installed', updatedAt: T0.toISOString() },
      expected: NEW,
      observations: obs(OLD),
      now: at(86_400),
      graceMs: 0,
    },
    'not_reloaded',
    'none',
  ],
  [
    'waiting for the window → old is not a failure',
    {
      deployment: { state: 'waiting_window', updatedAt: T0.toISOString() },
      expected: NEW,
      observations: obs(OLD),
      now: at(7200),
      graceMs: 0,
      window,
    },
    'waiting_window',
    'none',
  ],
  [
    'reloaded inside an open window → tolerated until it closes',
    {
      deployment: { state: 'reloaded', updatedAt: at(60).toISOString() },
      expected: NEW,
      observations: obs(OLD),
      now: at(1800),
      graceMs: 300_000,
      window,
    },
    'waiting_window',
    'none',
  ],
  [
    '…and diverged once the window closed',
    {
      deployment: { state: 'reloaded', updatedAt: at(60).toISOString() },
      expected: NEW,
      observations: obs(OLD),
      now: at(3601),
      graceMs: 300_000,
      window,
    },
    'diverged',
    'diverge',
  ],
  [
    'refused / timeout prove nothing',
    {
      deployment: { state: 'reloaded', updatedAt: T0.toISOString() },
      expected: NEW,
      observations: obs(NEW, undefined),
      now: at(9999),
      graceMs: 0,
    },
    'unreachable',
    'none',
  ],
  [
    'a rolled-back deployment is the agent’s word',
    {
      deployment: { state: 'rolled_back', updatedAt: T0.toISOString() },
      expected: NEW,
      observations: obs(NEW),
      now: at(1),
      graceMs: 0,
    },
    'agent_owned',
    'none',
  ],
  [
    'a diverged deployment that serves the version again recovers',
    {
      deployment: { state: 'diverged', updatedAt: T0.toISOString() },
      expected: NEW,
      observations: obs(NEW),
      now: at(1),
      graceMs: 0,
    },
    'verified',
    'verify',
  ],
];

for (const [sentence, input, status, action] of rows) {
  test(sentence, () => {
    const j = judgeDeployment(input);
    assert.equal(j.status, status);
    assert.equal(j.action, action);
  });
}

test('diverged names the target and what it served', () => {
  const j = judgeDeployment(rows[3][1]);
  assert.deepEqual(j.mismatch, { target: 't1', served: OLD });
  assert.equal(j.deadline?.toISOString(), at(300).toISOString());
});

test('targets of a subscription: all with one subscription, by name with several, plus its verify target', () => {
  const endpoint = {
    probeTargets: [
      { host: '127.0.0.1', port: 443, sni: 'www.example.test' },
      { host: '127.0.0.1', port: 443, sni: 'mail.example.test' },
    ],
  };
  assert.equal(targetsForSubscription(endpoint, {}, { sans: ['www.example.test'] }, 1).length, 2);
  const www = targetsForSubscription(endpoint, {}, { sans: ['*.example.test'] }, 2);
  assert.equal(www.length, 2);
  const only = targetsForSubscription(
    endpoint,
    { verify: { host: '127.0.0.1', port: 8443 } },
    { sans: ['www.example.test'] },
    2,
  );
  assert.deepEqual(
    only.map((t) => `${t.port}/${t.sni ?? ''}`),
    ['443/www.example.test', '8443/'],
  );
  assert.equal(sanCovers('*.example.test', 'a.b.example.test'), false);
});
