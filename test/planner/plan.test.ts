import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { formatPlanTable, planCalendar } from '../../src/hub/planner/plan.ts';
import { RateLimitBudget } from '../../src/hub/planner/rate-limit-budget.ts';
import type { PlanInput } from '../../src/hub/planner/renewal-policy.ts';
import { DAY, T0, ari, day, version } from './plan-input.ts';

function cert(name: string, over: Partial<PlanInput> = {}): PlanInput {
  return {
    now: T0,
    certificate: { name, sans: [`${name}.example.com`], keyType: 'ecdsa-p256', lifetimeDays: 90 },
    jitterSeed: `id-${name}`,
    ...over,
  };
}

describe('renewal calendar', () => {
  test('lists every certificate by due time, with its decision', () => {
    const now = day(50);
    const entries = planCalendar(
      [
        cert('later', { current: version(day(40), 90, ['later.example.com']) }),
        cert('soon', { current: version(day(0), 90, ['soon.example.com']) }),
        cert('brand-new'),
      ],
      new RateLimitBudget(),
      now,
    );
    assert.deepEqual(
      entries.map((e) => [e.certificateName, e.decision.reason]),
      [
        ['brand-new', 'NoVersion'],
        ['soon', 'NotDue'],
        ['later', 'NotDue'],
      ],
    );
    for (let i = 1; i < entries.length; i++) assert.ok(entries[i - 1].dueAt <= entries[i].dueAt);
    assert.deepEqual(entries[0].registeredDomains, ['example.com']);
  });

  test('defers what the registered-domain budget cannot take and says until when, without touching the budget', () => {
    const budget = new RateLimitBudget();
    const before = JSON.stringify(budget.toJSON());
    const certs = Array.from({ length: 45 }, (_, i) => cert(`host${String(i).padStart(2, '0')}`));
    const entries = planCalendar(certs, budget, T0);
    const deferred = entries.filter((e) => e.deferral);
    assert.equal(deferred.length, 5, '40 of 50 are usable for non-urgent issuance');
    for (const e of deferred) {
      assert.equal(e.deferral?.limit, 'CertificatesPerDomain');
      assert.equal(e.deferral?.key, 'example.com');
      assert.equal(e.dueAt.toISOString(), new Date(T0.getTime() + 7 * DAY).toISOString());
    }
    assert.deepEqual(entries.slice(-5), deferred, 'deferred entries sort last');
    assert.equal(JSON.stringify(budget.toJSON()), before);
  });

  test('ARI renewals are not held back by a spent budget', () => {
    const budget = new RateLimitBudget();
    for (let i = 0; i < 50; i++)
      budget.record({ sans: [`x${i}.example.com`], isRenewal: false, urgent: true }, day(59));
    const entries = planCalendar(
      [cert('web', { current: version(day(0), 90, ['web.example.com']), ari: ari(day(59), day(60)) })],
      budget,
      day(61),
    );
    assert.equal(entries[0].decision.reason, 'AriWindow');
    assert.equal(entries[0].deferral, undefined);
    assert.equal(entries[0].request.isRenewal, true);
  });

  test('orders an ARI renewal only when the new order shares a name with the certificate it replaces', () => {
    const current = version(day(0), 90, ['web.example.com']);
    const offer = ari(day(59), day(60));
    const same = planCalendar([cert('web', { current, ari: offer })], new RateLimitBudget(), day(61));
    assert.equal(same[0].request.isRenewal, true);
    const moved = planCalendar(
      [
        cert('web', {
          current,
          ari: offer,
          certificate: { name: 'web', sans: ['shop.example.net'], keyType: 'ecdsa-p256', lifetimeDays: 90 },
        }),
      ],
      new RateLimitBudget(),
      day(61),
    );
    assert.equal(moved[0].decision.reason, 'SansChanged');
    assert.equal(moved[0].request.isRenewal, false);
  });

  test('formats a table a person can read', () => {
    const budget = new RateLimitBudget();
    const entries = planCalendar(
      [cert('new-site'), cert('api', { current: version(day(0), 90, ['api.example.com']) })],
      budget,
      day(10),
    );
    const table = formatPlanTable(entries, day(10));
    const lines = table.trimEnd().split('\n');
    assert.equal(lines.length, 3);
    assert.match(lines[0], /^CERTIFICATE\s+DUE AT\s+IN\s+REASON\s+MESSAGE\s+BUDGET$/);
    assert.match(
      lines[1],
      /^new-site\s+2025-01-11 00:00 UTC\s+now\s+NoVersion\s+No version of new-site.*example\.com 40\/50 left$/,
    );
    assert.match(
      lines[2],
      /^api\s+2025-0[23]-\d\d \d\d:\d\d UTC\s+in \d+d \d+h\s+NotDue\s+api renews at two thirds/,
    );
    // Columns line up: DUE AT starts at the same offset on every line.
    const col = lines[0].indexOf('DUE AT');
    for (const l of lines.slice(1)) assert.match(l.slice(col), /^2025-/);
    assert.equal(formatPlanTable([]), 'No certificates to plan.\n');
  });

  test('shows an overdue renewal as due now, and how late it is', () => {
    const entries = planCalendar(
      [cert('old', { current: version(day(0), 90, ['old.example.com']) })],
      new RateLimitBudget(),
      day(70),
    );
    assert.match(
      formatPlanTable(entries, day(70)).split('\n')[1],
      /^old\s+2025-0[23]-\d\d \d\d:\d\d UTC\s+now \(\d+d \d+h late\)\s+LifetimeElapsed/,
    );
  });
});
