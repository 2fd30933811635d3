/**
 * The issuance lock of hubs sharing PostgreSQL (src/store/postgres/advisory-lock.ts) under the coalescer: one
 * issuance per certificate across hubs, and a hub whose session ends (killed, connection lost) frees it at once.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import type pg from 'pg';
import { IssuanceCoalescer } from '../../src/hub/issuance-lock.ts';
import { AdvisoryIssuanceLock } from '../../src/store/postgres/advisory-lock.ts';
import { postgresPool } from '../../src/store/postgres/open-postgres-store.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { sharedPostgres } from '../helpers/postgres.ts';

const postgres = sharedPostgres();

function pool(t: TestContext, url: string): pg.Pool {
  const p = postgresPool(url, { max: 4 });
  let ended = false;
  onCleanup(t, async () => {
    if (!ended) await p.end();
  });
  const end = p.end.bind(p);
  p.end = async () => {
    ended = true;
    await end();
  };
  return p;
}

describe('issuance lock on PostgreSQL', () => {
  test('held by one hub, refused to another until released', async (t) => {
    const url = await postgres.database();
    const [a, b] = [new AdvisoryIssuanceLock(pool(t, url)), new AdvisoryIssuanceLock(pool(t, url))];
    const release = await a.tryAcquire('issuance/c1');
    assert.ok(release);
    assert.equal(await b.tryAcquire('issuance/c1'), undefined);
    const other = await b.tryAcquire('issuance/c2');
    assert.ok(other, 'another certificate is not held');
    await release();
    const again = await b.tryAcquire('issuance/c1');
    assert.ok(again);
    await again();
    await other();
  });

  test('a hub whose connections end (killed) frees its locks at once', async (t) => {
    const url = await postgres.database();
    const doomed = pool(t, url);
    const [a, b] = [new AdvisoryIssuanceLock(doomed), new AdvisoryIssuanceLock(pool(t, url))];
    const held = await a.tryAcquire('issuance/c1');
    assert.ok(held);
    assert.equal(await b.tryAcquire('issuance/c1'), undefined);
    // the checked-out client is forcibly dropped, as the server does for a killed process
    const admin = pool(t, url);
    await admin.query(
      "select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory' and granted and database = (select oid from pg_database where datname = current_database())",
    );
    let got: (() => Promise<void>) | undefined;
    for (let i = 0; i < 100 && !got; i++) {
      got = await b.tryAcquire('issuance/c1');
      if (!got) await new Promise((r) => setTimeout(r, 50));
    }
    assert.ok(got, 'the lock was freed with the session');
    await got();
    await assert.rejects(
      held(),
      'releasing over the dropped connection fails (and gives the connection back)',
    );
  });

  test('two hubs triggering the same renewal at once issue it once; the second re-checks and skips', async (t) => {
    const url = await postgres.database();
    let issued = 0;
    const hubs = [pool(t, url), pool(t, url)].map(
      (p) => new IssuanceCoalescer({ lock: new AdvisoryIssuanceLock(p), lockPollMs: 50 }),
    );
    const outcomes = await Promise.all(
      hubs.map((c) =>
        c.run(
          'c1',
          async () => issued === 0,
          async () => {
            await new Promise((r) => setTimeout(r, 200)); // an order takes a while
            issued++;
            return 'v1';
          },
        ),
      ),
    );
    assert.equal(issued, 1);
    assert.deepEqual(outcomes.map((o) => o.issued).sort(), [false, true]);
  });
});
