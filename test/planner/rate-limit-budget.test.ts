import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import {
  LETS_ENCRYPT_BUDGET,
  NO_LIMITS,
  RateLimitBudget,
  resolveBudgetConfig,
  type IssuanceRequest,
} from '../../src/hub/planner/rate-limit-budget.ts';
import { registeredDomain } from '../../src/hub/planner/registered-domain.ts';
import { isCertfleetError } from '../../src/core/errors.ts';
import { DAY, HOUR, T0, plus } from './plan-input.ts';

const fresh = (sans: string[], urgent = false): IssuanceRequest => ({ sans, isRenewal: false, urgent });

/** A budget that has placed `n` new orders under example.com, one an hour from T0. */
function spent(n: number, config = LETS_ENCRYPT_BUDGET): RateLimitBudget {
  const b = new RateLimitBudget(config, { account: 'acct-1' });
  for (let i = 0; i < n; i++) b.record(fresh([`host${i}.example.com`], i >= 40), plus(T0, i * HOUR));
  return b;
}

describe('registered domain (built-in public-suffix approximation)', () => {
  const rows: [name: string, expected: string, why: string][] = [
    ['www.example.com', 'example.com', 'takes the last two labels'],
    ['new.blog.example.co.uk', 'example.co.uk', 'knows common multi-label suffixes'],
    ['shop.example.com.au', 'example.com.au', 'knows common multi-label suffixes'],
    ['*.example.org', 'example.org', 'ignores a wildcard label'],
    ['WWW.Example.COM.', 'example.com', 'ignores case and a trailing dot'],
    ['alice.github.io', 'alice.github.io', 'treats hosting platforms from the private section as suffixes'],
    [
      'a.b.example.co.bw',
      'co.bw',
      'lumps an unlisted multi-label suffix together: conservative, never looser',
    ],
    ['example.com', 'example.com', 'leaves a registered domain as it is'],
    ['localhost', 'localhost', 'leaves a single label as it is'],
    ['192.0.2.7', '192.0.2.7', 'counts an IPv4 address as its own registered domain'],
    ['2001:db8:1:2::5', '2001:db8:1:2::/64', 'counts an IPv6 address by its /64'],
    ['[2001:db8::ffff:1.2.3.4]', '2001:db8:0:0::/64', 'expands :: and embedded IPv4'],
  ];
  for (const [name, expected, why] of rows)
    test(`${why}: ${name} → ${expected}`, () => assert.equal(registeredDomain(name), expected));
});

describe('rate-limit budget', () => {
  test("defaults to Let's Encrypt's published limits", () => {
    const { limits } = LETS_ENCRYPT_BUDGET;
    assert.deepEqual(limits.CertificatesPerDomain, { count: 50, windowMs: 7 * DAY });
    assert.deepEqual(limits.NewOrdersPerAccount, { count: 300, windowMs: 3 * HOUR });
    assert.deepEqual(limits.CertificatesPerFQDNSet, { count: 5, windowMs: 7 * DAY });
  });

  test('a CA without limits counts nothing: its stored state stays empty however many orders end', () => {
    const b = new RateLimitBudget(NO_LIMITS);
    for (let i = 0; i < 100; i++) {
      b.record(fresh([`h${i}.example.com`]), plus(T0, i * HOUR));
      b.record(
        { ...fresh([`h${i}.example.com`]), isRenewal: true, replaces: `cert-${i}` },
        plus(T0, i * HOUR),
      );
    }
    assert.deepEqual(b.toJSON(), { version: 1, windows: {}, issuedSets: {}, replaced: {} });
    assert.deepEqual(b.canIssue(fresh(['h0.example.com']), plus(T0, 100 * HOUR)), { ok: true });
  });

  test('defers non-urgent issuance when the registered-domain budget is spent and says when it frees', () => {
    const b = spent(40);
    const now = plus(T0, 40 * HOUR);
    const r = b.canIssue(fresh(['new.example.com']), now);
    assert.equal(r.ok, false);
    if (r.ok) return;
    assert.equal(r.limit, 'CertificatesPerDomain');
    assert.equal(r.key, 'example.com');
    // Non-urgent may use 40 of 50: the oldest order must age out first.
    assert.equal(r.freesAt.toISOString(), plus(T0, 7 * DAY).toISOString());
    assert.match(
      r.message,
      /New Certificates per Registered Domain allows 50 per 7d; example\.com has used 40/,
    );
    assert.match(r.message, /40 usable for non-urgent issuance, 10 kept for urgent renewals/);
    assert.match(r.message, /until a slot frees at 2025-01-08 00:00 UTC \(in 5d 8h\)/);
    // ... and it does free then.
    assert.deepEqual(b.canIssue(fresh(['new.example.com']), plus(T0, 7 * DAY + 1)), { ok: true });
    // Another registered domain is not affected.
    assert.deepEqual(b.canIssue(fresh(['www.example.net']), now), { ok: true });
  });

  test('urgent issuance may use the reserved headroom, and no more', () => {
    const b = spent(40);
    const now = plus(T0, 40 * HOUR);
    assert.deepEqual(b.canIssue(fresh(['new.example.com'], true), now), { ok: true });
    for (let i = 40; i < 50; i++) b.record(fresh([`host${i}.example.com`], true), plus(T0, i * HOUR));
    const urgent = b.canIssue(fresh(['new.example.com'], true), plus(T0, 50 * HOUR));
    assert.equal(urgent.ok, false);
    if (!urgent.ok) assert.equal(urgent.freesAt.toISOString(), plus(T0, 7 * DAY).toISOString());
    const calm = b.canIssue(fresh(['new.example.com']), plus(T0, 50 * HOUR));
    assert.equal(calm.ok, false);
    // Non-urgent waits until only 39 remain in the window: the 11th oldest ages out.
    if (!calm.ok) assert.equal(calm.freesAt.toISOString(), plus(T0, 7 * DAY + 10 * HOUR).toISOString());
  });

  test('reports headroom per limit and when the next slot frees', () => {
    const b = spent(3);
    const h = b.headroom(['a.example.com', 'b.example.org'], plus(T0, 2.5 * HOUR));
    const byKey = Object.fromEntries(h.map((e) => [`${e.limit}|${e.key}`, e]));
    assert.deepEqual(Object.keys(byKey).sort(), [
      'CertificatesPerDomain|example.com',
      'CertificatesPerDomain|example.org',
      'CertificatesPerFQDNSet|a.example.com,b.example.org',
      'NewOrdersPerAccount|acct-1',
    ]);
    const com = byKey['CertificatesPerDomain|example.com'];
    assert.equal(com.used, 3);
    assert.equal(com.remaining, 47);
    assert.equal(com.remainingNonUrgent, 37);
    assert.equal(com.nextFreeAt?.toISOString(), plus(T0, 7 * DAY).toISOString());
    assert.equal(byKey['CertificatesPerDomain|example.org'].nextFreeAt, undefined);
    assert.equal(byKey['NewOrdersPerAccount|acct-1'].used, 3);
  });

  test('a certificate spanning two registered domains counts against both', () => {
    const b = new RateLimitBudget();
    b.record(fresh(['a.example.com', 'a.example.org']), T0);
    const h = b.headroom(['x.example.com', 'x.example.org'], T0);
    for (const d of ['example.com', 'example.org']) assert.equal(h.find((e) => e.key === d)?.used, 1, d);
  });

  test('defers when the account has placed too many orders in 3 hours', () => {
    const b = new RateLimitBudget(LETS_ENCRYPT_BUDGET, { account: 'acct-1' });
    for (let i = 0; i < 240; i++) b.record(fresh([`www.site${i}.com`]), plus(T0, i * 1000));
    const r = b.canIssue(fresh(['www.site-new.com']), plus(T0, 240_000));
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.limit, 'NewOrdersPerAccount');
      assert.equal(r.freesAt.toISOString(), plus(T0, 3 * HOUR).toISOString());
    }
    // Another account has its own order budget.
    assert.deepEqual(b.canIssue({ ...fresh(['www.site-new.com']), account: 'acct-2' }, plus(T0, 240_000)), {
      ok: true,
    });
  });

  test('a failed order spends only the account order budget, as the CA spends certificate limits at finalize', () => {
    const b = new RateLimitBudget(LETS_ENCRYPT_BUDGET, { account: 'acct-1' });
    for (let i = 0; i < 10; i++) b.record(fresh(['www.example.com']), plus(T0, i * 60_000), 'failed');
    const h = Object.fromEntries(
      b.headroom(['www.example.com'], plus(T0, HOUR)).map((e) => [e.limit, e.used]),
    );
    assert.deepEqual(h, { NewOrdersPerAccount: 10, CertificatesPerDomain: 0, CertificatesPerFQDNSet: 0 });
    // And a failed order is no evidence the set was issued: the next one is still a new certificate.
    assert.equal(b.chargesFor(fresh(['www.example.com']), plus(T0, HOUR)).length, 3);
  });

  describe('ARI renewals count as the CA counts them', () => {
    test('an ARI renewal (replaces) is exempt from every limit, even with the domain budget spent', () => {
      const b = spent(50);
      const now = plus(T0, 50 * HOUR);
      const ariRenewal: IssuanceRequest = {
        sans: ['host1.example.com'],
        isRenewal: true,
        urgent: false,
        replaces: 'ari-1',
      };
      assert.deepEqual(b.canIssue(ariRenewal, now), { ok: true });
      assert.deepEqual(b.chargesFor(ariRenewal, now), []);
      const before = b.headroom(['host1.example.com'], now);
      b.record(ariRenewal, now);
      assert.deepEqual(b.headroom(['host1.example.com'], now), before, 'nothing was counted');
    });

    test('a certificate replaced via ARI once is not exempt the second time', () => {
      const b = new RateLimitBudget(LETS_ENCRYPT_BUDGET, { account: 'acct-1' });
      const r: IssuanceRequest = {
        sans: ['new.example.com'],
        isRenewal: true,
        urgent: false,
        replaces: 'ari-1',
      };
      b.record(r, T0);
      assert.deepEqual(
        b.chargesFor(r, plus(T0, HOUR)).map((c) => c.limit),
        ['CertificatesPerFQDNSet'],
        'now a non-ARI renewal of a set issued before',
      );
    });

    test('a non-ARI renewal of the exact same set skips the domain and account limits but not the exact-set limit', () => {
      const b = spent(50);
      const renewal = fresh(['HOST1.example.com']); // same set as an earlier order, other case
      assert.deepEqual(
        b.chargesFor(renewal, plus(T0, 50 * HOUR)).map((c) => c.limit),
        ['CertificatesPerFQDNSet'],
      );
      // The set host1.example.com was ordered once at T0+1h; 3 more non-urgent renewals fit in the week (4 of 5).
      for (let i = 0; i < 3; i++) {
        assert.deepEqual(b.canIssue(renewal, plus(T0, (51 + i) * HOUR)), { ok: true }, `renewal ${i + 2}`);
        b.record(renewal, plus(T0, (51 + i) * HOUR));
      }
      const fifth = b.canIssue(renewal, plus(T0, 55 * HOUR));
      assert.equal(fifth.ok, false);
      if (!fifth.ok) {
        assert.equal(fifth.limit, 'CertificatesPerFQDNSet');
        assert.equal(fifth.key, 'host1.example.com');
      }
      assert.deepEqual(b.canIssue({ ...renewal, urgent: true }, plus(T0, 55 * HOUR)), { ok: true });
    });

    test('a CA configured without renewal exemptions counts renewals like new orders', () => {
      const strict = resolveBudgetConfig({ ariRenewalsExempt: false, exactSetRenewalsExempt: false });
      const b = spent(40, strict);
      const ariRenewal: IssuanceRequest = { sans: ['host1.example.com'], isRenewal: true, urgent: false };
      const r = b.canIssue(ariRenewal, plus(T0, 40 * HOUR));
      assert.equal(r.ok, false);
      if (!r.ok) assert.equal(r.limit, 'CertificatesPerDomain');
    });
  });

  test('survives a restart: state round-trips through JSON and keeps deferring', () => {
    const b = spent(40);
    const restored = RateLimitBudget.fromJSON(JSON.parse(JSON.stringify(b.toJSON())), LETS_ENCRYPT_BUDGET, {
      account: 'acct-1',
    });
    const now = plus(T0, 40 * HOUR);
    assert.deepEqual(
      restored.canIssue(fresh(['new.example.com']), now),
      b.canIssue(fresh(['new.example.com']), now),
    );
    assert.deepEqual(restored.headroom(['x.example.com'], now), b.headroom(['x.example.com'], now));
    assert.deepEqual(restored.toJSON(), b.toJSON());
  });

  test('two hubs sharing one budget: each counts the orders of both, an order read back counts once', () => {
    const a = spent(20);
    const b = RateLimitBudget.fromJSON(a.toJSON(), LETS_ENCRYPT_BUDGET, { account: 'acct-1' });
    for (let i = 20; i < 40; i++) b.record(fresh([`host${i}.example.com`]), plus(T0, i * HOUR));
    a.absorb(b);
    a.absorb(b); // idempotent
    const now = plus(T0, 40 * HOUR);
    a.prune(plus(T0, 39 * HOUR).getTime()); // as the last record() did for the single-hub budget
    assert.deepEqual(a.toJSON(), spent(40).toJSON());
    assert.equal(a.canIssue(fresh(['new.example.com']), now).ok, false, 'the 40 orders of both hubs count');
  });

  test('the orders one copy records, counted into another, leave both copies deciding alike (exemptions too)', () => {
    const a = new RateLimitBudget(LETS_ENCRYPT_BUDGET, { account: 'acct-1' });
    const b = new RateLimitBudget(LETS_ENCRYPT_BUDGET, { account: 'acct-1' });
    const orders = [
      a.record(fresh(['www.example.com']), T0),
      a.record({ ...fresh(['api.example.com']), isRenewal: true, replaces: 'ari-1' }, plus(T0, HOUR)),
      a.record(fresh(['mail.example.com']), plus(T0, 2 * HOUR), 'failed'),
    ];
    for (const o of orders) b.count(o!);
    const now = plus(T0, 3 * HOUR);
    assert.deepEqual(b.toJSON(), a.toJSON());
    const again = { ...fresh(['api.example.com']), isRenewal: true, replaces: 'ari-1' };
    assert.deepEqual(
      b.chargesFor(again, now),
      a.chargesFor(again, now),
      'a second ARI replacement is not exempt',
    );
    assert.deepEqual(
      b.chargesFor(fresh(['www.example.com']), now).map((c) => c.limit),
      ['CertificatesPerFQDNSet'],
      'the same set again is a renewal: only the exact-set limit counts',
    );
    assert.ok(orders[2]!.keepUntil < orders[0]!.keepUntil, 'a failed order matters only for its window');
  });

  test('forgets orders once they leave every window, so stored state stays small', () => {
    const b = spent(40);
    b.record(fresh(['www.other.net']), plus(T0, 9 * DAY));
    const state = b.toJSON();
    assert.deepEqual(Object.keys(state.windows).sort(), [
      'CertificatesPerDomain|other.net',
      'CertificatesPerFQDNSet|www.other.net',
      'NewOrdersPerAccount|acct-1',
    ]);
    assert.equal(Object.keys(state.issuedSets).length, 41, 'sets are kept for renewal detection');
  });

  test('forgets every window an order has left, also those no later order counts in', () => {
    const b = new RateLimitBudget(LETS_ENCRYPT_BUDGET, { account: 'acct-1' });
    b.record(fresh(['www.example.com']), T0);
    // orders for other names every 10 minutes, the first one after www.example.com's windows ended
    for (let m = 0; m <= 60; m += 10) b.record(fresh([`h${m}.other.net`]), plus(T0, 7 * DAY + m * 60_000));
    const windows = Object.keys(b.toJSON().windows);
    assert.ok(!windows.includes('CertificatesPerFQDNSet|www.example.com'), windows.join(' '));
    assert.ok(!windows.includes('CertificatesPerDomain|example.com'), windows.join(' '));
  });

  describe('a what-if view (the planner spends one per pass)', () => {
    test('counts and decides like a copy, and never changes the budget underneath', () => {
      const b = spent(35);
      const before = JSON.stringify(b.toJSON());
      const view = b.whatIf();
      const copy = b.clone();
      const now = plus(T0, 35 * HOUR);
      for (let i = 0; i < 5; i++) {
        view.record(fresh([`w${i}.example.com`]), now);
        copy.record(fresh([`w${i}.example.com`]), now);
      }
      assert.equal(
        view.canIssue(fresh(['more.example.com']), now).ok,
        false,
        '40 of 50: the non-urgent share',
      );
      assert.deepEqual(
        view.canIssue(fresh(['more.example.com']), now),
        copy.canIssue(fresh(['more.example.com']), now),
      );
      assert.deepEqual(view.headroom(['more.example.com'], now), copy.headroom(['more.example.com'], now));
      const counted = (x: RateLimitBudget) => {
        const c = x.clone();
        c.prune(now.getTime()); // a view prunes only its own counts: compare what is in the windows
        return c.toJSON();
      };
      assert.deepEqual(counted(view), counted(copy));
      assert.equal(JSON.stringify(b.toJSON()), before, 'the budget underneath is unchanged');
      assert.equal(b.canIssue(fresh(['more.example.com']), now).ok, true);
    });

    test('sees what the budget counts after it was made, and renewals it recorded as renewals', () => {
      const b = new RateLimitBudget(LETS_ENCRYPT_BUDGET, { account: 'acct-1' });
      const view = b.whatIf();
      b.record({ ...fresh(['api.example.com']), isRenewal: true, replaces: 'ari-1' }, T0);
      view.record(fresh(['www.example.com']), plus(T0, HOUR));
      const now = plus(T0, 2 * HOUR);
      const again = { ...fresh(['api.example.com']), isRenewal: true, replaces: 'ari-1' };
      assert.notDeepEqual(view.chargesFor(again, now), [], 'ari-1 was replaced once, underneath');
      assert.deepEqual(
        view.chargesFor(fresh(['www.example.com']), now).map((c) => c.limit),
        ['CertificatesPerFQDNSet'],
        'the set recorded on the view is a renewal there',
      );
      assert.equal(b.chargesFor(fresh(['www.example.com']), now).length, 3, 'and not underneath');
    });
  });

  test('rejects stored state of an unknown version with a hint', () => {
    assert.throws(
      () => RateLimitBudget.fromJSON({ version: 2 } as never),
      (e) =>
        isCertfleetError(e) && /unknown version 2/.test(e.message) && /delete the stored budget/.test(e.hint),
    );
  });

  test('takes per-directory overrides and refuses nonsense', () => {
    const c = resolveBudgetConfig({ limits: { CertificatesPerDomain: { count: 500, windowMs: 7 * DAY } } });
    assert.equal(c.limits.CertificatesPerDomain?.count, 500);
    assert.equal(c.limits.NewOrdersPerAccount?.count, 300, 'other limits keep their defaults');
    assert.throws(
      () => resolveBudgetConfig({ nonUrgentFraction: 0 }),
      (e) => isCertfleetError(e) && e.code === 'CONFIG_INVALID' && /nonUrgentFraction/.test(e.message),
    );
    assert.throws(
      () => resolveBudgetConfig({ limits: { CertificatesPerFQDNSet: { count: 2.5, windowMs: DAY } } }),
      (e) =>
        isCertfleetError(e) &&
        e.code === 'CONFIG_INVALID' &&
        /CertificatesPerFQDNSet needs a positive integer count/.test(e.message),
    );
  });

  test('an issuer without limits never defers', () => {
    const b = new RateLimitBudget(NO_LIMITS);
    for (let i = 0; i < 1000; i++) b.record(fresh(['www.example.com']), T0);
    assert.deepEqual(b.canIssue(fresh(['www.example.com']), T0), { ok: true });
    assert.deepEqual(b.headroom(['www.example.com'], T0), []);
  });
});
