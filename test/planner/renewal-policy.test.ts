import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  DEFAULT_POLICY,
  ariRenewalPoint,
  backoffDelayMs,
  evaluateRenewal,
  jitterMs,
  lifetimeRenewalPoint,
  nextAriFetch,
  urgentAt,
  type DecisionReason,
  type PlanInput,
} from '../../src/hub/planner/renewal-policy.ts';
import { DAY, HOUR, MIN, T0, ari, day, input, plus, version } from './plan-input.ts';

interface Row {
  it: string;
  given: PlanInput;
  reissue: boolean;
  reason: DecisionReason;
  urgent?: boolean;
  dueAt?: Date;
  dueBetween?: [Date, Date];
  says?: RegExp;
}

const ariPoint = ariRenewalPoint(ari(day(70), day(72)), 'cert-web');

const rows: Row[] = [
  {
    it: 'issues at once when no version exists',
    given: input(day(0), { current: undefined }),
    reissue: true,
    reason: 'NoVersion',
    urgent: false,
    dueAt: day(0),
    says: /No version of web/,
  },
  {
    it: 'does not renew a 90-day certificate before two thirds of its lifetime minus jitter',
    given: input(day(55)),
    reissue: false,
    reason: 'NotDue',
    dueBetween: [day(60 - 4.5), day(60)],
    says: /renews at two thirds of its 90-day lifetime, at 2025-0[23]-\d\d \d\d:\d\d UTC \(in /,
  },
  {
    it: 'renews at two thirds of a 90-day lifetime',
    given: input(day(60)),
    reissue: true,
    reason: 'LifetimeElapsed',
    urgent: false,
    dueBetween: [day(60 - 4.5), day(60)],
    says: /reached two thirds of its 90-day lifetime/,
  },
  {
    it: 'does not renew a 6-day certificate before half of its lifetime minus jitter',
    given: input(day(2.6), { current: version(T0, 6) }),
    reissue: false,
    reason: 'NotDue',
    dueBetween: [day(3 - 0.3), day(3)],
    says: /half of its 6-day lifetime/,
  },
  {
    it: 'renews at half of a 6-day lifetime',
    given: input(day(3), { current: version(T0, 6) }),
    reissue: true,
    reason: 'LifetimeElapsed',
    urgent: false,
    dueBetween: [day(3 - 0.3), day(3)],
  },
  {
    it: 'follows the ARI window when the CA offers one (waits for the point chosen inside it)',
    given: input(day(65), { ari: ari(day(70), day(72)) }),
    reissue: false,
    reason: 'NotDue',
    dueAt: ariPoint,
    says: /The CA suggests renewing web within 2025-03-12 00:00 UTC – 2025-03-14 00:00 UTC/,
  },
  {
    it: 'follows the ARI window when the CA offers one (renews once that point has come)',
    given: input(plus(ariPoint, MIN), { ari: ari(day(70), day(72)) }),
    reissue: true,
    reason: 'AriWindow',
    urgent: false,
    dueAt: ariPoint,
  },
  {
    it: 'renews at once, urgently, when the ARI window has already ended (e.g. ahead of a revocation)',
    given: input(day(20), { ari: ari(day(10), day(11)) }),
    reissue: true,
    reason: 'AriWindow',
    urgent: true,
    dueAt: day(20),
    says: /has already ended/,
  },
  {
    it: 'never lets an ARI window carry a certificate past the point of no return',
    given: input(day(75.5), { ari: ari(day(85), day(89)) }),
    reissue: true,
    reason: 'AriWindow',
    urgent: true,
    dueAt: day(75),
  },
  {
    it: 'ignores an inverted ARI window and falls back to the lifetime rule',
    given: input(day(30), { ari: ari(day(40), day(39)) }),
    reissue: false,
    reason: 'NotDue',
    dueBetween: [day(60 - 4.5), day(60)],
  },
  {
    it: 'issues at once when the SANs changed, naming what changed',
    given: input(day(10), {
      certificate: {
        name: 'web',
        sans: ['www.example.com', 'api.example.com'],
        keyType: 'ecdsa-p256',
        lifetimeDays: 90,
      },
    }),
    reissue: true,
    reason: 'SansChanged',
    urgent: false,
    dueAt: day(10),
    says: /added api\.example\.com/,
  },
  {
    it: 'does not count a change of case or order in the SANs as a change',
    given: input(day(10), {
      certificate: { name: 'web', sans: ['WWW.Example.com.'], keyType: 'ecdsa-p256', lifetimeDays: 90 },
    }),
    reissue: false,
    reason: 'NotDue',
  },
  {
    it: 'issues at once when the key type changed',
    given: input(day(10), {
      certificate: { name: 'web', sans: ['www.example.com'], keyType: 'rsa-2048', lifetimeDays: 90 },
    }),
    reissue: true,
    reason: 'KeyTypeChanged',
    urgent: false,
    says: /from ecdsa-p256 to rsa-2048/,
  },
  {
    it: 'marks a renewal urgent once less than a sixth of the lifetime remains',
    given: input(day(80)),
    reissue: true,
    reason: 'LifetimeElapsed',
    urgent: true,
    says: /Only 10d of validity left/,
  },
  {
    it: 'reissues urgently once the current version expired',
    given: input(day(91)),
    reissue: true,
    reason: 'Expired',
    urgent: true,
    dueAt: day(91),
    says: /expired at 2025-04-01 00:00 UTC \(1d ago\)/,
  },
  {
    it: 'backs off after a failure instead of retrying at once',
    given: input(day(60), { failures: { count: 3, lastFailureAt: day(60), lastError: 'challenge failed' } }),
    reissue: false,
    reason: 'BackingOff',
    urgent: false,
    dueAt: plus(day(60), 4 * MIN),
    says: /failed 3 times \(last error: challenge failed\); retrying at .*Wanted because: web reached two thirds/,
  },
  {
    it: 'retries once the backoff has passed',
    given: input(day(60), { failures: { count: 3, lastFailureAt: plus(day(60), -5 * MIN) } }),
    reissue: true,
    reason: 'LifetimeElapsed',
  },
  {
    it: "waits for the CA's Retry-After when it is later than its own backoff",
    given: input(day(60), {
      failures: {
        count: 1,
        lastFailureAt: day(60),
        lastError: 'rateLimited',
        retryAfter: plus(day(60), HOUR),
      },
    }),
    reissue: false,
    reason: 'BackingOff',
    urgent: false,
    dueAt: plus(day(60), HOUR),
    says: /retrying at 2025-03-02 01:00 UTC \(in 1h\)\. The CA asked to wait until 2025-03-02 01:00 UTC \(Retry-After\)\./,
  },
  {
    it: "keeps its own backoff when that is later than the CA's Retry-After",
    given: input(day(60), {
      failures: { count: 10, lastFailureAt: day(60), retryAfter: plus(day(60), MIN) },
    }),
    reissue: false,
    reason: 'BackingOff',
    dueAt: plus(day(60), 6 * HOUR),
  },
  {
    it: "retries once the CA's Retry-After has passed",
    given: input(plus(day(60), HOUR), {
      failures: { count: 1, lastFailureAt: day(60), retryAfter: plus(day(60), HOUR) },
    }),
    reissue: true,
    reason: 'LifetimeElapsed',
  },
  {
    it: 'honours a Retry-After of days for at most a day',
    given: input(day(60), {
      failures: { count: 1, lastFailureAt: day(60), retryAfter: day(65) },
    }),
    reissue: false,
    reason: 'BackingOff',
    dueAt: day(61),
    says: /The CA asked to wait until 2025-03-07 00:00 UTC; honoured for at most 1d\./,
  },
  {
    it: 'never waits for a Retry-After past the point where the renewal turns urgent',
    given: input(day(74.5), {
      failures: { count: 1, lastFailureAt: day(74.5), retryAfter: plus(day(74.5), 23 * HOUR) },
    }),
    reissue: false,
    reason: 'BackingOff',
    urgent: false,
    dueAt: day(75),
  },
  {
    it: 'once urgent, retries 30 minutes after the failure though the CA asked for hours (urgency wins)',
    given: input(day(80), {
      failures: { count: 1, lastFailureAt: day(80), retryAfter: plus(day(80), 6 * HOUR) },
    }),
    reissue: false,
    reason: 'BackingOff',
    urgent: true,
    dueAt: plus(day(80), 30 * MIN),
    says: /The CA asked to wait until 2025-03-22 06:00 UTC; the renewal is urgent, so it is retried sooner\./,
  },
  {
    it: 'backs off a first issuance too (no version yet)',
    given: input(day(0), { current: undefined, failures: { count: 1, lastFailureAt: day(0) } }),
    reissue: false,
    reason: 'BackingOff',
    dueAt: plus(day(0), MIN),
  },
  {
    it: 'reissues a revoked certificate at once, urgently, even early in its lifetime',
    given: input(day(10), { revoked: { at: day(10), reason: 'keyCompromise' } }),
    reissue: true,
    reason: 'Revoked',
    urgent: true,
    dueAt: day(10),
    says: /was revoked \(keyCompromise\) at 2025-01-11 00:00 UTC; it stays due until a replacement is issued and served/,
  },
  {
    it: 'a revoked certificate whose replacement failed stays due until replaced',
    given: input(day(11), {
      revoked: { at: day(10), reason: 'keyCompromise' },
      failures: { count: 1, lastFailureAt: plus(day(10), MIN), lastError: 'CA unreachable' },
    }),
    reissue: true,
    reason: 'Revoked',
    urgent: true,
  },
  {
    it: 'a revoked certificate whose replacement just failed waits for the (urgent) backoff, still wanting it',
    given: input(plus(day(10), MIN), {
      revoked: { at: day(10), reason: 'keyCompromise' },
      failures: { count: 2, lastFailureAt: plus(day(10), MIN), lastError: 'CA unreachable' },
    }),
    reissue: false,
    reason: 'BackingOff',
    urgent: true,
    dueAt: plus(day(10), 3 * MIN),
    says: /Wanted because: The current version of web was revoked/,
  },
  {
    it: 'a revoked certificate whose replacement is issued but not yet served stays due',
    given: input(day(11), {
      replacingRevoked: { at: day(10), reason: 'keyCompromise', unserved: 1, subscribed: 2 },
    }),
    reissue: false,
    reason: 'Revoked',
    urgent: true,
    dueAt: day(10),
    says: /its replacement is issued but not yet served on 1 of 2 subscribed endpoints; it stays due until it is/,
  },
  {
    it: 'a revoked certificate whose replacement is served everywhere is no longer due for it',
    given: input(day(11), {
      replacingRevoked: { at: day(10), reason: 'keyCompromise', unserved: 0, subscribed: 2 },
    }),
    reissue: false,
    reason: 'NotDue',
  },
  {
    it: 'a reissue requested by an emergency campaign is urgent early in the lifetime',
    given: input(day(10), { reissueRequested: { at: day(10), reason: 'campaign c1', urgent: true } }),
    reissue: true,
    reason: 'ReissueRequested',
    urgent: true,
    dueAt: day(10),
  },
  {
    it: 'a revocation outranks every other reason (here: changed SANs)',
    given: input(day(10), {
      revoked: { at: day(9), reason: 'superseded' },
      certificate: { name: 'web', sans: ['api.example.com'], keyType: 'ecdsa-p256', lifetimeDays: 90 },
    }),
    reissue: true,
    reason: 'Revoked',
  },
  {
    it: 'a requested reissue whose attempt failed stays due until a version is issued',
    given: input(day(12), { reissueRequested: { at: day(10), reason: 'manual' } }),
    reissue: true,
    reason: 'ReissueRequested',
    urgent: false,
    dueAt: day(10),
    says: /A new version of web was requested \(manual\) at 2025-01-11 00:00 UTC \(2d ago\); it stays due until one is issued/,
  },
  {
    it: 'a requested reissue is urgent once less than a sixth of the lifetime remains',
    given: input(day(80), { reissueRequested: { at: day(79), reason: 'config changed' } }),
    reissue: true,
    reason: 'ReissueRequested',
    urgent: true,
  },
  {
    it: 'a requested reissue still backs off after failures',
    given: input(day(12), {
      reissueRequested: { at: day(12), reason: 'manual' },
      failures: { count: 1, lastFailureAt: day(12) },
    }),
    reissue: false,
    reason: 'BackingOff',
    dueAt: plus(day(12), MIN),
  },
  {
    it: 'never backs off past the point of no return while not urgent',
    given: input(plus(day(75), -HOUR), { failures: { count: 20, lastFailureAt: plus(day(75), -2 * HOUR) } }),
    reissue: false,
    reason: 'BackingOff',
    urgent: false,
    dueAt: day(75),
  },
];

describe('renewal policy', () => {
  for (const row of rows) {
    test(row.it, () => {
      const d = evaluateRenewal(row.given);
      assert.equal(d.reason, row.reason, d.message);
      assert.equal(d.reissue, row.reissue, d.message);
      if (row.urgent !== undefined) assert.equal(d.urgent, row.urgent, d.message);
      if (row.dueAt) assert.equal(d.dueAt.toISOString(), row.dueAt.toISOString(), d.message);
      if (row.dueBetween) {
        const [a, b] = row.dueBetween;
        assert.ok(
          d.dueAt >= a && d.dueAt <= b,
          `${d.dueAt.toISOString()} not in [${a.toISOString()}, ${b.toISOString()}]`,
        );
      }
      if (row.says) assert.match(d.message, row.says);
    });
  }

  test('backs off exponentially after failures, capped', () => {
    const table: [failures: number, delay: number][] = [
      [1, 1 * MIN],
      [2, 2 * MIN],
      [3, 4 * MIN],
      [5, 16 * MIN],
      [9, 256 * MIN],
      [10, 6 * HOUR],
      [50, 6 * HOUR],
      [5000, 6 * HOUR],
    ];
    for (const [count, delay] of table) {
      const last = day(60);
      const d = evaluateRenewal(input(plus(last, 30_000), { failures: { count, lastFailureAt: last } }));
      assert.equal(d.reason, 'BackingOff', `after ${count} failures`);
      assert.equal(d.dueAt.getTime() - last.getTime(), delay, `after ${count} failures`);
    }
  });

  test('retries faster once past the point of no return', () => {
    const failures = (at: Date) => ({ count: 12, lastFailureAt: at });
    const calm = evaluateRenewal(input(day(61), { failures: failures(day(61)) }));
    const urgent = evaluateRenewal(input(day(80), { failures: failures(day(80)) }));
    assert.equal(calm.urgent, false);
    assert.equal(calm.dueAt.getTime() - day(61).getTime(), 6 * HOUR);
    assert.equal(urgent.urgent, true);
    assert.equal(urgent.dueAt.getTime() - day(80).getTime(), 30 * MIN);
  });

  test('shrinks the backoff cap to a tenth of the remaining time, but not below 12 minutes', () => {
    assert.equal(backoffDelayMs(20, 10 * HOUR, false), HOUR);
    assert.equal(backoffDelayMs(20, 2.4 * HOUR, true), 14.4 * MIN);
    assert.equal(backoffDelayMs(20, 30 * MIN, true), 12 * MIN);
    assert.equal(
      backoffDelayMs(20, -HOUR, true),
      12 * MIN,
      'an expired certificate retries every 12 minutes',
    );
    assert.equal(backoffDelayMs(0, HOUR, true), 0);
  });

  test('honours Retry-After before refetching ARI', () => {
    const fetchedAt = day(30);
    const withRetry = ari(day(60), day(62), { fetchedAt, retryAfter: plus(fetchedAt, 3 * HOUR) });
    const rows: [what: string, info: Parameters<typeof nextAriFetch>[0], now: Date, expect: Date][] = [
      ['waits for Retry-After', withRetry, plus(fetchedAt, HOUR), plus(fetchedAt, 3 * HOUR)],
      [
        'fetches at once when Retry-After has passed',
        withRetry,
        plus(fetchedAt, 4 * HOUR),
        plus(fetchedAt, 4 * HOUR),
      ],
      [
        'polls every 6 hours without Retry-After',
        ari(day(60), day(62), { fetchedAt }),
        fetchedAt,
        plus(fetchedAt, 6 * HOUR),
      ],
      [
        'treats a Retry-After under a minute as a minute',
        ari(day(60), day(62), { fetchedAt, retryAfter: plus(fetchedAt, 5_000) }),
        fetchedAt,
        plus(fetchedAt, MIN),
      ],
      [
        'treats a Retry-After over a day as a day',
        ari(day(60), day(62), { fetchedAt, retryAfter: plus(fetchedAt, 3 * DAY) }),
        fetchedAt,
        plus(fetchedAt, DAY),
      ],
      ['fetches at once when never fetched', undefined, fetchedAt, fetchedAt],
    ];
    for (const [what, info, now, expect] of rows)
      assert.equal(nextAriFetch(info, now).toISOString(), expect.toISOString(), what);
  });

  test('jitter stays within bounds and is stable per certificate', () => {
    const lifetime = 90 * DAY;
    const bound = DEFAULT_POLICY.jitterFraction * lifetime;
    const values = Array.from({ length: 2000 }, (_, i) => jitterMs(`cert-${i}`, lifetime));
    for (const v of values) assert.ok(v >= 0 && v < bound, `jitter ${v} outside [0, ${bound})`);
    // Spread over the whole range, not clumped: each fifth of the range gets a fair share.
    const buckets = [0, 0, 0, 0, 0];
    for (const v of values) buckets[Math.floor((v / bound) * 5)]++;
    for (const b of buckets) assert.ok(b > 300 && b < 500, `uneven jitter buckets ${buckets}`);
    // Stable: same seed, same answer; and the whole decision is reproducible.
    assert.equal(jitterMs('cert-7', lifetime), values[7]);
    const a = evaluateRenewal(input(day(40), { jitterSeed: 'cert-7' }));
    const b = evaluateRenewal(input(day(40), { jitterSeed: 'cert-7' }));
    assert.deepEqual(a, b);
    assert.equal(a.dueAt.getTime(), lifetimeRenewalPoint(version(T0, 90), 'cert-7').getTime());
    assert.notEqual(jitterMs('cert-8', lifetime), values[7]);
  });

  test('the point picked in an ARI window is inside it, spread, and stable per certificate', () => {
    const w = ari(day(60), day(62));
    const points = Array.from({ length: 1000 }, (_, i) => ariRenewalPoint(w, `cert-${i}`).getTime());
    for (const p of points) assert.ok(p >= day(60).getTime() && p < day(62).getTime());
    const firstHalf = points.filter((p) => p < day(61).getTime()).length;
    assert.ok(firstHalf > 430 && firstHalf < 570, `${firstHalf} of 1000 in the first half`);
    assert.equal(ariRenewalPoint(w, 'cert-3').getTime(), points[3]);
  });

  test('the point of no return is a sixth of the lifetime before expiry', () => {
    assert.equal(urgentAt(version(T0, 90)).toISOString(), day(75).toISOString());
    assert.equal(urgentAt(version(T0, 6)).toISOString(), day(5).toISOString());
  });
});
