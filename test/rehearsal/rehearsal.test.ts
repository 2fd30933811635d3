/**
 * The rehearsal as a specification of the fleet: simulated weeks through the real planner, issuance, internal CA,
 * deploy pipeline, probe judgement and alert rules. Small fleets, so the file runs in seconds of CPU; every
 * assertion is about simulated time, none about how long the run took.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import type { FaultInstance } from '../../src/rehearsal/fault-plan.ts';
import { DEFAULT_START, runRehearsal } from '../../src/rehearsal/rehearsal.ts';
import { formatReport, goalsOf } from '../../src/rehearsal/rehearsal-report.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const T0 = DEFAULT_START.getTime();
const fault = (
  f: Omit<FaultInstance, 'start' | 'end'> & { fromDay: number; days: number },
): FaultInstance => ({
  id: f.id,
  kind: f.kind,
  start: T0 + f.fromDay * DAY,
  end: T0 + (f.fromDay + f.days) * DAY,
  ...(f.affected ? { affected: f.affected } : {}),
});

describe('rehearsal', () => {
  test('60 days of 20 endpoints with 6-day certificates and no faults: nothing served expired, renewals at about half the lifetime, no alerts, no real timer', async (t) => {
    const timers = t.mock.method(globalThis, 'setTimeout');
    const r = await runRehearsal({ days: 60, endpoints: 20, lifetimeMs: 6 * DAY, faults: [], seed: 7 });
    assert.equal(timers.mock.callCount(), 0, 'simulated time never waits on a real timer');
    assert.equal(r.servedExpired.endpointMinutes, 0);
    // Each certificate renews every ~2.85 days (1/2 of 6 days, up to 5 % earlier): about 21 times in 60 days.
    assert.ok(r.renewalSpread.count >= 20 * 19, `only ${r.renewalSpread.count} renewals`);
    assert.ok(
      r.renewalSpread.p0 >= 0.45 - 0.001,
      `earliest renewal at ${r.renewalSpread.p0} of the lifetime`,
    );
    assert.ok(
      r.renewalSpread.p100 <= 0.5 + 0.001,
      `latest renewal at ${r.renewalSpread.p100} of the lifetime`,
    );
    assert.deepEqual(r.alerts, [], 'a quiet fleet raises no alert');
    assert.deepEqual(r.deploys, { reloaded: r.issuances.total }, 'every version deployed and reloaded once');
    assert.ok(goalsOf(r).every((g) => g.ok));
    assert.equal(
      r.daily.issued.reduce((a, b) => a + b, 0),
      r.issuances.total,
    );
  });

  test('the CA down for a quarter of the lifetime: renewal failures alert with at least 1/3 of the lifetime left, and the report says so', async () => {
    const r = await runRehearsal({
      days: 12,
      endpoints: 6,
      lifetimeMs: 6 * DAY,
      faults: ['ca-down'],
      seed: 3,
      faultPlan: [fault({ id: 'ca-down#1', kind: 'ca-down', fromDay: 4, days: 1.5 })],
    });
    assert.ok(r.issuances.caAnswers.down > 0, 'orders were refused while the CA was down');
    const f = r.faults.find((x) => x.id === 'ca-down#1')!;
    assert.ok((f.alerts.renewal_failed ?? 0) > 0, `alerts: ${JSON.stringify(f.alerts)}`);
    assert.ok(
      f.minFractionLeftAtFirstAlert! >= 1 / 3,
      `first alert with ${f.minFractionLeftAtFirstAlert} left`,
    );
    assert.equal(r.servedExpired.endpointMinutes, 0, 'renewals caught up after the outage');
    const report = formatReport(r);
    assert.match(
      report,
      /ca-down#1 .*: renewal_failed ×\d+; first alert per endpoint with ≥ 0\.\d+ of the lifetime left/,
    );
    assert.match(report, /ok {3}every fault is alerted with at least 1\/3 of the lifetime left/);
  });

  test('the same seed twice: the same report, to the last alert (nothing random or wall-clock leaks into the simulated run)', async () => {
    const run = async () => {
      const r = await runRehearsal({
        days: 12,
        endpoints: 6,
        lifetimeMs: 6 * DAY,
        faults: ['ca-down', 'rate-limit', 'dns', 'reload-fails', 'agent-offline', 'hub-restart'],
        seed: 3,
      });
      // The one wall-clock figure of the report: how long the run took.
      return JSON.stringify({ ...r, run: { ...r.run, wallSeconds: 0 } });
    };
    const first = await run();
    assert.ok(JSON.parse(first).issuances.renewals > 0, 'the run renewed certificates');
    assert.equal(await run(), first);
  });

  test('the CA rate-limiting with Retry-After: 1 h: no certificate orders again before the hour, while the CA down is retried within minutes', async () => {
    const r = await runRehearsal({
      days: 12,
      endpoints: 12,
      lifetimeMs: 6 * DAY,
      faults: ['rate-limit', 'ca-down'],
      seed: 3,
      faultPlan: [
        fault({ id: 'rate-limit#1', kind: 'rate-limit', fromDay: 4, days: 1 }),
        fault({ id: 'ca-down#1', kind: 'ca-down', fromDay: 7, days: 1.5 }),
      ],
    });
    const { rateLimited, down } = r.issuances.retrySpacing;
    assert.ok(rateLimited && rateLimited.count > 0, `spacing: ${JSON.stringify(r.issuances.retrySpacing)}`);
    assert.ok(
      rateLimited.minMinutes >= 60,
      `retried ${rateLimited.minMinutes} min after a rateLimited answer`,
    );
    assert.ok(down && down.minMinutes < 60, `retried ${down?.minMinutes} min after the CA was down`);
    assert.equal(r.servedExpired.endpointMinutes, 0);
    assert.match(
      formatReport(r),
      /retry after a refused order \(minutes to the certificate's next order\): .*rateLimited \(Retry-After 60 min\) ×\d+: min 60/,
    );
  });

  test('the CA down for longer than a certificate lives: endpoints serve expired certificates and the goal fails', async () => {
    const r = await runRehearsal({
      days: 6,
      endpoints: 3,
      lifetimeMs: 2 * DAY,
      faults: ['ca-down'],
      seed: 5,
      faultPlan: [fault({ id: 'ca-down#1', kind: 'ca-down', fromDay: 1, days: 2.5 })],
    });
    assert.ok(r.servedExpired.endpointMinutes > 0);
    const [expired] = goalsOf(r);
    assert.equal(expired.ok, false);
    assert.match(formatReport(r), /FAIL no endpoint serves an expired certificate: \d+ endpoint-minutes/);
  });

  test('reloads failing for two days: deploys roll back, the alert brings the operator, and the retry after the fault holds', async () => {
    const r = await runRehearsal({
      days: 8,
      endpoints: 6,
      lifetimeMs: 6 * DAY,
      faults: ['reload-fails'],
      seed: 11,
      operatorResponseMs: 4 * HOUR,
      faultPlan: [fault({ id: 'reload-fails#1', kind: 'reload-fails', fromDay: 1, days: 2 })],
    });
    const rolledBack = r.deploys.rolled_back ?? 0;
    assert.ok(rolledBack > 0, `deploys: ${JSON.stringify(r.deploys)}`);
    const f = r.faults[0];
    assert.ok((f.alerts.rolled_back ?? 0) > 0, `alerts: ${JSON.stringify(f.alerts)}`);
    assert.ok(f.minFractionLeftAtFirstAlert! >= 1 / 3);
    assert.equal(r.recoveredAfterRollback, f.endpointsAlerted, 'every rolled-back endpoint recovered');
    assert.ok(r.operatorRetries >= r.recoveredAfterRollback);
    assert.equal(r.servedExpired.endpointMinutes, 0);
    assert.deepEqual(r.illegalMoves, []);
  });
});
