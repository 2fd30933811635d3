/**
 * Months of renewals in seconds: a ManualClock drives a tiny hub loop (evaluate → budget → issue → record) so the
 * policy and the budget are checked together against what must never happen: an expired certificate, or more
 * orders than the CA allows.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../../src/core/clock.ts';
import { evaluateRenewal, type PlanInput } from '../../src/hub/planner/renewal-policy.ts';
import {
  LETS_ENCRYPT_BUDGET,
  RateLimitBudget,
  resolveBudgetConfig,
  type BudgetConfig,
} from '../../src/hub/planner/rate-limit-budget.ts';
import { issuanceRequestFor } from '../../src/hub/planner/plan.ts';
import { DAY, HOUR, MIN, T0, plus } from './plan-input.ts';

interface SimCert {
  input: Omit<PlanInput, 'now'>;
  /** Do not evaluate before this (the hub's next wake-up for this certificate). */
  nextCheck: number;
  issuedAt: number[];
  renewedAtFraction: number[];
}

function newCert(name: string, sans: string[], lifetimeDays: number): SimCert {
  return {
    input: { certificate: { name, sans, keyType: 'ecdsa-p256', lifetimeDays }, jitterSeed: `id-${name}` },
    nextCheck: 0,
    issuedAt: [],
    renewedAtFraction: [],
  };
}

interface SimResult {
  expiredSightings: number;
  maxDomainOrdersIn7d: number;
  urgentIssuances: number;
  deferrals: number;
}

/**
 * Run the hub loop from T0 for `days`. `fails(cert, now)` says whether an attempt fails. Returns what an
 * outside observer saw: orders counted per registered domain in any 7-day window (independent of the budget's
 * own bookkeeping), expired certificates, urgent issuances.
 */
function simulate(
  certs: SimCert[],
  days: number,
  stepMs: number,
  budget: RateLimitBudget,
  countsAgainstDomain: (c: SimCert) => boolean,
  fails: (c: SimCert, now: number) => boolean = () => false,
): SimResult {
  const clock = new ManualClock(T0);
  const end = T0.getTime() + days * DAY;
  const counted: number[] = []; // every order that counts against the registered domain
  const res: SimResult = { expiredSightings: 0, maxDomainOrdersIn7d: 0, urgentIssuances: 0, deferrals: 0 };
  while (clock.now().getTime() < end) {
    const now = clock.now();
    const t = now.getTime();
    for (const c of certs) {
      if (c.input.current && t >= c.input.current.notAfter.getTime()) res.expiredSightings++;
      if (t < c.nextCheck) continue;
      const input: PlanInput = { ...c.input, now };
      const d = evaluateRenewal(input);
      if (!d.reissue) {
        c.nextCheck = d.dueAt.getTime();
        continue;
      }
      const req = issuanceRequestFor(input, d);
      const ok = budget.canIssue(req, now);
      if (!ok.ok) {
        res.deferrals++;
        c.nextCheck = ok.freesAt.getTime();
        continue;
      }
      if (fails(c, t)) {
        budget.record(req, now, 'failed');
        const f = c.input.failures;
        c.input.failures = { count: (f?.count ?? 0) + 1, lastFailureAt: now, lastError: 'validation failed' };
        continue;
      }
      if (countsAgainstDomain(c)) counted.push(t);
      budget.record(req, now);
      if (d.urgent) res.urgentIssuances++;
      const prev = c.input.current;
      if (prev) {
        const life = prev.notAfter.getTime() - prev.notBefore.getTime();
        c.renewedAtFraction.push((t - prev.notBefore.getTime()) / life);
      }
      c.input.current = {
        notBefore: now,
        notAfter: plus(now, c.input.certificate.lifetimeDays * DAY),
        sans: c.input.certificate.sans,
        keyType: c.input.certificate.keyType,
      };
      c.input.failures = undefined;
      c.issuedAt.push(t);
      c.nextCheck = 0;
    }
    clock.advance(stepMs);
  }
  // Sliding 7-day maximum over the independent ledger.
  let lo = 0;
  for (let hi = 0; hi < counted.length; hi++) {
    while (counted[hi] - counted[lo] >= 7 * DAY) lo++;
    res.maxDomainOrdersIn7d = Math.max(res.maxDomainOrdersIn7d, hi - lo + 1);
  }
  return res;
}

describe('simulated months', () => {
  test('a 6-day certificate renewed for 90 days never expires and renews each time at about half its lifetime', () => {
    const c = newCert('short', ['short.example.com'], 6);
    const r = simulate([c], 90, 5 * MIN, new RateLimitBudget(), () => false);
    assert.equal(r.expiredSightings, 0);
    assert.ok(
      c.renewedAtFraction.length >= 29 && c.renewedAtFraction.length <= 32,
      `${c.renewedAtFraction.length} renewals`,
    );
    for (const f of c.renewedAtFraction)
      assert.ok(f >= 0.45 && f <= 0.5 + 5 / (6 * 24 * 60), `renewed at ${f}`);
    // Jitter is per certificate: the same point every time.
    assert.ok(Math.max(...c.renewedAtFraction) - Math.min(...c.renewedAtFraction) < 0.002);
    assert.equal(r.urgentIssuances, 0);
  });

  test('a 6-day certificate whose CA fails a day of attempts at every renewal still never expires', () => {
    const c = newCert('flaky', ['flaky.example.com'], 6);
    let episodeStart = 0;
    // Every issuance episode starts with 24 hours of failed attempts.
    const r = simulate(
      [c],
      90,
      MIN,
      new RateLimitBudget(),
      () => false,
      (cert, now) => {
        if (!cert.input.failures) episodeStart = now;
        return now - episodeStart < DAY;
      },
    );
    assert.equal(r.expiredSightings, 0);
    assert.ok(c.issuedAt.length >= 21, `${c.issuedAt.length} issuances in 90 days`);
    // After a day of failures, the renewal still lands with well over the point of no return to spare.
    // A day of failures (1/6 of the lifetime) pushes each renewal from ~1/2 to ~2/3, short of the point of no return.
    for (const f of c.renewedAtFraction) assert.ok(f > 0.6 && f < 5 / 6, `renewed at ${f}`);
    assert.equal(r.urgentIssuances, 0);
  });

  const fleet = () => Array.from({ length: 60 }, (_, i) => newCert(`site${i}`, [`site${i}.example.com`], 90));

  const runFleet = (config: BudgetConfig, countsRenewals: boolean) => {
    const certs = fleet();
    const issuedBefore = new Set<SimCert>();
    const r = simulate(certs, 365, HOUR, new RateLimitBudget(config), (c) => {
      // Independent ledger: under Let's Encrypt, only the first order for a set counts against the domain.
      const counts = countsRenewals || !issuedBefore.has(c);
      issuedBefore.add(c);
      return counts;
    });
    return { certs, r };
  };

  test("60 certificates under one registered domain stay within Let's Encrypt's limits for a year and none expires", () => {
    const { certs, r } = runFleet(LETS_ENCRYPT_BUDGET, false);
    assert.equal(r.expiredSightings, 0);
    assert.ok(r.maxDomainOrdersIn7d <= 50, `${r.maxDomainOrdersIn7d} orders in 7 days`);
    assert.equal(r.maxDomainOrdersIn7d, 40, 'the first week issues 40 and keeps 10 in reserve');
    assert.ok(r.deferrals > 0, 'the last 20 new certificates waited for the window');
    for (const c of certs)
      assert.ok(c.issuedAt.length >= 5, `${c.input.certificate.name}: ${c.issuedAt.length}`);
    assert.equal(r.urgentIssuances, 0);
  });

  test('60 certificates under one registered domain stay within a strict CA budget (no renewal exemptions) for a year and none expires', () => {
    const strict = resolveBudgetConfig({ ariRenewalsExempt: false, exactSetRenewalsExempt: false });
    const { certs, r } = runFleet(strict, true);
    assert.equal(r.expiredSightings, 0);
    assert.ok(r.maxDomainOrdersIn7d <= 50, `${r.maxDomainOrdersIn7d} orders in 7 days`);
    assert.ok(r.deferrals > 0);
    for (const c of certs) {
      assert.ok(c.issuedAt.length >= 5, `${c.input.certificate.name}: ${c.issuedAt.length}`);
      for (const f of c.renewedAtFraction)
        assert.ok(f < 5 / 6, `${c.input.certificate.name} renewed at ${f}`);
    }
  });
});
