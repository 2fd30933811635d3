/**
 * When a rehearsal fault counts as alerted, as a table of sentences: overlapping faults share alerts, an alert
 * already firing when a fault begins counts at once, and a fault first alerted late is reported late.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { answersTo, faultAlerting, type AlertSpan } from '../../src/rehearsal/fault-alerts.ts';
import type { FaultInstance } from '../../src/rehearsal/fault-plan.ts';

const DAY = 86_400_000;
const L = 47 * DAY;
const caDown: FaultInstance = { id: 'ca-down#1', kind: 'ca-down', start: 10 * DAY, end: 17 * DAY };
const reloadFails: FaultInstance = {
  id: 'reload-fails#1',
  kind: 'reload-fails',
  start: 12 * DAY,
  end: 14 * DAY,
  affected: new Set([3]),
};
const restart: FaultInstance = { id: 'hub-restart#1', kind: 'hub-restart', start: 15 * DAY, end: 15 * DAY };
const span = (s: Partial<AlertSpan> & Pick<AlertSpan, 'kind' | 'start'>): AlertSpan => ({
  endpointIndex: 3,
  fractionLeft: 0.5,
  ...s,
});

describe('which alerts answer to a fault', () => {
  const rows: Array<[string, FaultInstance, AlertSpan, boolean]> = [
    [
      'a renewal failure during a CA outage answers to it',
      caDown,
      span({ kind: 'renewal_failed', start: 11 * DAY }),
      true,
    ],
    [
      'a rollback does not answer to a CA outage (the CA cannot cause it)',
      caDown,
      span({ kind: 'rolled_back', start: 11 * DAY }),
      false,
    ],
    [
      'an alert on an endpoint a fault did not hit does not answer to it',
      reloadFails,
      span({ kind: 'rolled_back', start: 13 * DAY, endpointIndex: 4 }),
      false,
    ],
    [
      'an expiry alert answers to every fault acting while it fires, the hub restart inside the outage too',
      restart,
      span({ kind: 'expiring', start: 16 * DAY }),
      true,
    ],
    [
      'an alert already firing when a fault begins answers to it',
      restart,
      span({ kind: 'expiring', start: 14 * DAY }),
      true,
    ],
    [
      'an alert that stopped before a fault began does not',
      restart,
      span({ kind: 'expiring', start: 13 * DAY, end: 14 * DAY }),
      false,
    ],
    [
      'an alert more than a lifetime after the fault ended does not',
      caDown,
      span({ kind: 'renewal_failed', start: 17 * DAY + L + 1 }),
      false,
    ],
  ];
  for (const [sentence, fault, alert, expected] of rows)
    test(sentence, () => assert.equal(answersTo(fault, alert, L), expected));
});

describe('when a fault counts as alerted', () => {
  test('an endpoint already alerted when the fault began counts at once, whatever was left of its lifetime', () => {
    const a = faultAlerting(restart, [span({ kind: 'expiring', start: 13 * DAY, fractionLeft: 1 / 3 })], L);
    assert.deepEqual(a, { byKind: { expiring: 1 }, endpointsAlerted: 1, alreadyAlerted: 1 });
  });

  test('a fault first alerted after it began is measured at that alert: a late one is reported late', () => {
    const a = faultAlerting(
      reloadFails,
      [
        span({ kind: 'rolled_back', start: 17 * DAY + 60_000, fractionLeft: 0.213 }),
        span({ kind: 'renewal_failed', start: 11 * DAY, fractionLeft: 0.4 }), // the CA's kind, not this fault's
      ],
      L,
    );
    assert.deepEqual(a, {
      byKind: { rolled_back: 1 },
      endpointsAlerted: 1,
      alreadyAlerted: 0,
      minFractionLeftAtFirstAlert: 0.213,
      latestFirstAlertKind: 'rolled_back',
    });
  });

  test("an endpoint's first alert after the fault began counts, not a later one", () => {
    const a = faultAlerting(
      reloadFails,
      [
        span({ kind: 'rolled_back', start: 17 * DAY, fractionLeft: 0.2 }),
        span({ kind: 'expiring', start: 13 * DAY, fractionLeft: 1 / 3 }),
      ],
      L,
    );
    assert.equal(a.minFractionLeftAtFirstAlert, 1 / 3);
    assert.equal(a.latestFirstAlertKind, 'expiring');
    assert.deepEqual(a.byKind, { rolled_back: 1, expiring: 1 });
  });

  test('the smallest share left over the endpoints, and no figure for a fault that raised nothing', () => {
    const a = faultAlerting(
      caDown,
      [
        span({ kind: 'renewal_failed', start: 11 * DAY, fractionLeft: 0.5, endpointIndex: 1 }),
        span({ kind: 'renewal_failed', start: 12 * DAY, fractionLeft: 0.34, endpointIndex: 2 }),
      ],
      L,
    );
    assert.equal(a.endpointsAlerted, 2);
    assert.equal(a.minFractionLeftAtFirstAlert, 0.34);
    assert.deepEqual(faultAlerting(caDown, [], L), { byKind: {}, endpointsAlerted: 0, alreadyAlerted: 0 });
  });
});
