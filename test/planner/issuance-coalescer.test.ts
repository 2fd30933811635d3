import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as delay } from 'node:timers/promises';
import { IssuanceCoalescer, type DistributedLock, type Release } from '../../src/hub/issuance-lock.ts';
import { isCertfleetError } from '../../src/core/errors.ts';

/** A certificate store stand-in: issue() takes a while, then the certificate no longer needs issuance. */
function fakeCertificate(opts: { issueMs?: number; fail?: () => Error | undefined } = {}) {
  const state = { issued: 0, issueCalls: 0, checks: 0, concurrent: 0, maxConcurrent: 0 };
  return {
    state,
    needsIssuance: async () => {
      state.checks++;
      return state.issued === 0;
    },
    issue: async () => {
      state.issueCalls++;
      state.concurrent++;
      state.maxConcurrent = Math.max(state.maxConcurrent, state.concurrent);
      try {
        await delay(opts.issueMs ?? 20);
        const err = opts.fail?.();
        if (err) throw err;
        state.issued++;
        return { serial: `serial-${state.issued}` };
      } finally {
        state.concurrent--;
      }
    },
  };
}

/** A lease lock shared in memory by several "hubs" (one coalescer each). */
class MemoryLock implements DistributedLock {
  holders = new Map<string, { until: number; token: number }>();
  acquisitions = 0;
  releases = 0;
  private next = 0;
  constructor(private readonly failRelease = false) {}
  async tryAcquire(key: string, ttlMs: number): Promise<Release | undefined> {
    const h = this.holders.get(key);
    if (h && h.until > Date.now()) return undefined;
    const token = ++this.next;
    this.holders.set(key, { until: Date.now() + ttlMs, token });
    this.acquisitions++;
    return async () => {
      this.releases++;
      if (this.holders.get(key)?.token === token) this.holders.delete(key);
      if (this.failRelease) throw new Error('lock store unreachable');
    };
  }
}

describe('issuance coalescer', () => {
  test('50 concurrent triggers for one certificate cause exactly one issuance, and all see its result', async () => {
    const c = new IssuanceCoalescer();
    const cert = fakeCertificate();
    const outcomes = await Promise.all(
      Array.from({ length: 50 }, () => c.run('cert-1', cert.needsIssuance, cert.issue)),
    );
    assert.equal(cert.state.issueCalls, 1);
    assert.equal(cert.state.checks, 1, 'the need is checked once, inside the shared attempt');
    for (const o of outcomes) assert.deepEqual(o, { issued: true, result: { serial: 'serial-1' } });
    assert.equal(c.isInFlight('cert-1'), false);
  });

  test('a second wave after completion, when issuance is no longer needed, issues nothing', async () => {
    const c = new IssuanceCoalescer();
    const cert = fakeCertificate();
    await Promise.all(Array.from({ length: 50 }, () => c.run('cert-1', cert.needsIssuance, cert.issue)));
    const second = await Promise.all(
      Array.from({ length: 50 }, () => c.run('cert-1', cert.needsIssuance, cert.issue)),
    );
    assert.equal(cert.state.issueCalls, 1);
    for (const o of second) assert.deepEqual(o, { issued: false });
  });

  test('an error reaches every waiter, and a later call can retry', async () => {
    const c = new IssuanceCoalescer();
    let failing = true;
    const cert = fakeCertificate({
      fail: () => (failing ? new Error('[web] obtain: challenge failed') : undefined),
    });
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, () => c.run('cert-1', cert.needsIssuance, cert.issue)),
    );
    assert.equal(cert.state.issueCalls, 1);
    for (const r of results) {
      assert.equal(r.status, 'rejected');
      if (r.status === 'rejected') assert.match(String(r.reason), /challenge failed/);
    }
    assert.equal(c.isInFlight('cert-1'), false, 'a failed attempt does not stay in flight');
    failing = false;
    const retry = await c.run('cert-1', cert.needsIssuance, cert.issue);
    assert.deepEqual(retry, { issued: true, result: { serial: 'serial-1' } });
    assert.equal(cert.state.issueCalls, 2);
  });

  test('different certificates issue in parallel', async () => {
    const c = new IssuanceCoalescer();
    let concurrent = 0;
    let max = 0;
    const issue = async () => {
      concurrent++;
      max = Math.max(max, concurrent);
      await delay(30);
      concurrent--;
      return 'ok';
    };
    await Promise.all(['a', 'b', 'c'].map((id) => c.run(id, async () => true, issue)));
    assert.equal(max, 3);
  });

  test('a caller that gives up stops waiting, while the others still get the shared result', async () => {
    const c = new IssuanceCoalescer();
    const cert = fakeCertificate({ issueMs: 50 });
    const ac = new AbortController();
    const impatient = c.run('cert-1', cert.needsIssuance, cert.issue, { signal: ac.signal });
    const patient = c.run('cert-1', cert.needsIssuance, cert.issue);
    ac.abort(new Error('request closed'));
    await assert.rejects(impatient, /request closed/);
    assert.deepEqual(await patient, { issued: true, result: { serial: 'serial-1' } });
    assert.equal(cert.state.issueCalls, 1);
  });

  describe('across hubs, with a distributed lock', () => {
    test('two hubs triggered at once issue once: the second waits for the lock, re-checks, and skips', async () => {
      const lock = new MemoryLock();
      const hubA = new IssuanceCoalescer({ lock, lockPollMs: 5 });
      const hubB = new IssuanceCoalescer({ lock, lockPollMs: 5 });
      const cert = fakeCertificate({ issueMs: 40 });
      const outcomes = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          (i % 2 ? hubA : hubB).run('cert-1', cert.needsIssuance, cert.issue),
        ),
      );
      assert.equal(cert.state.issueCalls, 1);
      assert.equal(cert.state.maxConcurrent, 1);
      assert.equal(lock.acquisitions, 2, 'one lock round trip per hub, not per trigger');
      assert.equal(lock.releases, 2);
      assert.equal(outcomes.filter((o) => o.issued).length, 10, 'the hub that issued');
      assert.equal(outcomes.filter((o) => !o.issued).length, 10, 'the hub that found it done');
      assert.equal(lock.holders.size, 0);
    });

    test('gives up with a hint when another hub holds the lock for too long', async () => {
      const lock = new MemoryLock();
      await lock.tryAcquire('issuance/cert-1', 60_000); // a hub that never lets go
      const hub = new IssuanceCoalescer({ lock, lockPollMs: 5, lockWaitMs: 30, lockTtlMs: 60_000 });
      const cert = fakeCertificate();
      await assert.rejects(
        hub.run('cert-1', cert.needsIssuance, cert.issue),
        (e) =>
          isCertfleetError(e) &&
          e.code === 'CONFLICT' &&
          /issuance\/cert-1/.test(e.message) &&
          /expires by itself within 60 s/.test(e.hint),
      );
      assert.equal(cert.state.issueCalls, 0);
      assert.equal(hub.isInFlight('cert-1'), false);
    });

    test('a failed release is reported but does not hide the outcome', async () => {
      const lock = new MemoryLock(true);
      const reported: string[] = [];
      const hub = new IssuanceCoalescer({
        lock,
        onReleaseError: (e, key) => reported.push(`${key}: ${String(e)}`),
      });
      const cert = fakeCertificate();
      assert.deepEqual(await hub.run('cert-1', cert.needsIssuance, cert.issue), {
        issued: true,
        result: { serial: 'serial-1' },
      });
      assert.deepEqual(reported, ['issuance/cert-1: Error: lock store unreachable']);
    });

    test('stops waiting for the lock when the hub shuts down', async () => {
      const lock = new MemoryLock();
      await lock.tryAcquire('issuance/cert-1', 60_000);
      const shutdown = new AbortController();
      const hub = new IssuanceCoalescer({ lock, lockPollMs: 10, signal: shutdown.signal });
      const cert = fakeCertificate();
      const p = hub.run('cert-1', cert.needsIssuance, cert.issue);
      setTimeout(() => shutdown.abort(new Error('hub stopping')), 25);
      await assert.rejects(p, /hub stopping/);
      assert.equal(cert.state.issueCalls, 0);
    });
  });
});
