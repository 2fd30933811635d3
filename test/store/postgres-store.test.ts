/**
 * What PostgreSQL adds to the Store contract: several hubs (here: several stores, each with its own pool) write to
 * one database at once and behave as one SQLite file does; names sort byte-wise whatever the database's collation;
 * a database that cannot be used fails with a clear error.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import { ManualClock } from '../../src/core/clock.ts';
import { isCertfleetError } from '../../src/core/errors.ts';
import { READS } from '../../src/store/fleet-queries.ts';
import type { SubscriptionSpec } from '../../src/store/store.ts';
import { openPostgresStore } from '../../src/store/postgres/open-postgres-store.ts';
import type { SqlStore } from '../../src/store/sql-store.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { sharedPostgres } from '../helpers/postgres.ts';

const postgres = sharedPostgres();

async function hubs(t: TestContext, count: number, url?: string): Promise<SqlStore[]> {
  const database = url ?? (await postgres.database());
  const stores: SqlStore[] = [];
  for (let i = 0; i < count; i++) {
    const store = await openPostgresStore(database, new ManualClock(Date.now()));
    onCleanup(t, () => store.close());
    stores.push(store);
  }
  return stores;
}

const cert = (name: string) => ({
  name,
  sans: [`${name.toLowerCase()}.example.test`],
  keyType: 'ecdsa-p256' as const,
  issuer: 'internal',
  lifetimeDays: 30,
});
const spec = (i: number) =>
  ({ outputs: [{ path: `/tmp/pg-${i}.pem`, format: 'fullchain' }] }) as unknown as SubscriptionSpec;

describe('several hubs on one PostgreSQL database', () => {
  test('revision bumps from two hubs at once are never lost', async (t) => {
    const [a, b] = await hubs(t, 2);
    const c = await a.createCertificate(cert('web'), 'test');
    const e = await a.createEndpoint({ name: 'web1', kind: 'agent', probeTargets: [], labels: {} }, 'test');
    const before = await a.revision();
    const writes = (store: SqlStore, offset: number) =>
      Promise.all(
        Array.from({ length: 40 }, (_, i) => store.upsertSubscription(e.id, c.id, spec(offset + i), 'test')),
      );
    await Promise.all([writes(a, 0), writes(b, 1000)]);
    assert.equal(await b.revision(), before + 80);
  });

  test('the same subscription created by two hubs at once: one creates it, the other finds it', async (t) => {
    const [a, b] = await hubs(t, 2);
    const c = await a.createCertificate(cert('web'), 'test');
    const e = await a.createEndpoint({ name: 'web1', kind: 'agent', probeTargets: [], labels: {} }, 'test');
    await a.addVersion(
      c.id,
      {
        serial: '01',
        fingerprint: 'fp-01',
        notBefore: '2026-01-01T00:00:00Z',
        notAfter: '2026-02-01T00:00:00Z',
        certPem: 'cert',
        chainPem: '',
        sealedKey: 'sealed',
        issuer: 'internal',
      },
      'test',
    );
    const results = await Promise.all(
      [a, b, a, b].map((s) => s.upsertSubscription(e.id, c.id, spec(1), 'test')),
    );
    assert.equal(results.filter((r) => r.created).length, 1);
    assert.equal(new Set(results.map((r) => r.subscription.id)).size, 1);
    assert.equal((await b.listDeployments()).length, 1, 'one pending deployment of the current version');
  });

  test("initMeta from several hubs at once: every hub gets the first writer's whole set", async (t) => {
    const stores = await hubs(t, 4);
    const set = (who: number) => ({
      'ca.key': `${who}-key`,
      'ca.cert': `${who}-cert`,
      'ca.chain': `${who}-chain`,
    });
    const got = await Promise.all(stores.map((s, i) => s.initMeta(set(i))));
    const winner = Number(got[0]['ca.key'].split('-')[0]);
    for (const g of got) assert.deepEqual(g, set(winner));
    assert.deepEqual(await stores[0].initMeta(set(9)), set(winner), 'a later call changes nothing');
  });
});

describe('PostgreSQL specifics', () => {
  test("recording agents' nonces keeps the hub's cached values fresh; any other write does not", async (t) => {
    const [store] = await hubs(t, 1);
    const reads = [...READS.fleetRows, 'events', 'tokens', 'meta'] as const;
    const before = store.generation.current(reads);
    const soon = new Date(Date.now() + 60_000).toISOString();
    await store.rememberNonces([{ key: 'ep-1:n', expiresAt: soon }]);
    assert.equal(store.generation.current(reads), before, 'a nonce is not something a page is made of');
    await store.setMeta('unrelated', 'x');
    assert.notEqual(store.generation.current(reads), before);
  });

  test("names sort byte-wise as on SQLite, even in a database whose collation sorts 'B' after 'a'", async (t) => {
    const [store] = await hubs(t, 1, await postgres.database({ icuLocale: 'en-US' }));
    for (const name of ['ab', 'B', 'a-b', '_c', 'a']) await store.createCertificate(cert(name), 'test');
    const byteOrder = ['B', '_c', 'a', 'a-b', 'ab'];
    assert.deepEqual(
      (await store.listCertificates()).map((c) => c.name),
      byteOrder,
    );
    const walked: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await store.certificateRows({ limit: 2, ...(cursor ? { cursor } : {}) });
      walked.push(...page.items.map((r) => r.certificate.name));
      cursor = page.next;
    } while (cursor);
    assert.deepEqual(walked, byteOrder, 'a keyset walk sees every name once, in the same order');
  });

  test('a database that does not exist, or a server that is not there, is a clear error without the password', async () => {
    const cluster = await postgres.cluster();
    const missing = cluster.url('no_such_database').replace('certfleet@', 'certfleet:s3cret@');
    await assert.rejects(openPostgresStore(missing, new ManualClock(Date.now())), (e: unknown) => {
      assert.ok(isCertfleetError(e));
      assert.equal(e.code, 'UNREACHABLE');
      assert.match(e.message, /no_such_database: the database does not exist/);
      assert.match(e.hint, /CERTFLEET_DATABASE_URL/);
      assert.doesNotMatch(`${e.message} ${e.hint}`, /s3cret/);
      return true;
    });
    await assert.rejects(
      openPostgresStore('postgres://u:s3cret@127.0.0.1:1/db', new ManualClock(Date.now())),
      (e: unknown) => {
        assert.ok(isCertfleetError(e));
        assert.match(e.message, /cannot use PostgreSQL database u@127\.0\.0\.1:1\/db: connection refused/);
        return true;
      },
    );
    await assert.rejects(openPostgresStore('mysql://x/y', new ManualClock(Date.now())), (e: unknown) => {
      assert.ok(isCertfleetError(e));
      assert.equal(e.code, 'CONFIG_INVALID');
      return true;
    });
  });
});
