/**
 * The rate-limit budget as hubs share it through the store (src/hub/renewal/rate-limit-store.ts): each counted
 * order is stored, so hubs on one database refuse what they have spent together, a restart forgets nothing, orders
 * out of every window are pruned, and a budget stored by an earlier version (one meta value) still counts. Every
 * test runs on SQLite (one file opened twice) and on PostgreSQL (a private cluster).
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { ManualClock } from '../../src/core/clock.ts';
import { isCertfleetError } from '../../src/core/errors.ts';
import { createLogger } from '../../src/core/log.ts';
import type { AcmeRuntime } from '../../src/hub/acme/acme-runtime.ts';
import type { HubContext } from '../../src/hub/hub-context.ts';
import { resolveBudgetConfig, type IssuanceRequest } from '../../src/hub/planner/index.ts';
import { HOUR_MS } from '../../src/hub/planner/time-format.ts';
import { RateLimitStore } from '../../src/hub/renewal/rate-limit-store.ts';
import { migrationProvider, type Dialect } from '../../src/store/migrations.ts';
import { openPostgresStore } from '../../src/store/postgres/open-postgres-store.ts';
import type { Database } from '../../src/store/schema.ts';
import { openSqliteStore } from '../../src/store/sqlite/open-sqlite-store.ts';
import type { SqlStore } from '../../src/store/sql-store.ts';
import { onCleanup } from '../helpers/cleanup.ts';
import { sharedPostgres } from '../helpers/postgres.ts';
import { tempDir } from '../helpers/tmp.ts';

const DIRECTORY = 'https://acme.example.test/directory';
/** 3 new orders per hour for the account; orders count as renewals of their names for 2 hours. */
const BUDGET = resolveBudgetConfig({
  limits: {
    NewOrdersPerAccount: { count: 3, windowMs: HOUR_MS },
    CertificatesPerDomain: null,
    CertificatesPerFQDNSet: null,
  },
  renewalLookbackMs: 2 * HOUR_MS,
});
const acme = {
  entries: new Map([['ca', { config: { name: 'ca', directoryUrl: DIRECTORY }, budget: BUDGET }]]),
} as unknown as AcmeRuntime;
const subject = { issuer: 'ca' };
let names = 0;
/** A first order for new names: counted against the account, never exempt as a renewal. */
const newOrder = (): IssuanceRequest => ({
  sans: [`n${++names}.example.test`],
  isRenewal: false,
  urgent: true,
});

const postgres = sharedPostgres();

interface Database_ {
  /** A store on the database (migrated to the latest schema), closed at the end of the test. */
  open(clock: ManualClock): Promise<SqlStore>;
  /** The database migrated only as far as `migration`, for what an earlier version left. */
  upTo(migration: string): Promise<Kysely<Database>>;
}

type Fresh = (t: TestContext) => Promise<Database_>;

const sqlite: Fresh = async (t) => {
  const path = join(await tempDir(t), 'hub.db');
  return {
    open: async (clock) => {
      const store = await openSqliteStore(path, clock);
      onCleanup(t, () => store.close());
      return store;
    },
    upTo: (migration) =>
      migrated(new SqliteDialect({ database: new BetterSqlite3(path) }), 'sqlite', migration),
  };
};

const postgresql: Fresh = async (t) => {
  const url = await postgres.database();
  return {
    open: async (clock) => {
      const store = await openPostgresStore(url, clock);
      onCleanup(t, () => store.close());
      return store;
    },
    upTo: (migration) =>
      migrated(new PostgresDialect({ pool: new pg.Pool({ connectionString: url }) }), 'postgres', migration),
  };
};

async function migrated(
  dialect: SqliteDialect | PostgresDialect,
  name: Dialect,
  migration: string,
): Promise<Kysely<Database>> {
  const db = new Kysely<Database>({ dialect });
  const { error } = await new Migrator({ db, provider: migrationProvider(name) }).migrateTo(migration);
  if (error) throw error;
  return db;
}

/** One hub's budget bookkeeping over its own store (as a hub process has). */
function hubOn(store: SqlStore, clock: ManualClock): RateLimitStore {
  const logger = createLogger();
  logger.level = 'silent';
  return new RateLimitStore({ store, clock, logger } as unknown as HubContext, acme);
}

/** Places an order as Issuance does: room held, the order counted, its row committed with the renewal step. */
async function issue(hub: RateLimitStore, store: SqlStore, certificateId: string): Promise<void> {
  const request = newOrder();
  const release = await hub.reserve(subject, request);
  try {
    const rateLimitOrders = await hub.spend(subject, request, 'issued');
    await store.commitRenewal({ certificate: { id: certificateId }, actor: 'test', rateLimitOrders });
  } finally {
    release();
  }
}

const refused = (hub: RateLimitStore) =>
  assert.rejects(
    hub.reserve(subject, newOrder()),
    (e: unknown) => isCertfleetError(e) && e.code === 'RATE_LIMITED',
  );
const allowed = async (hub: RateLimitStore) => (await hub.reserve(subject, newOrder()))();

async function certificateIn(store: SqlStore): Promise<string> {
  const c = await store.createCertificate(
    { name: `c${++names}`, sans: ['c.example.test'], keyType: 'ecdsa-p256', issuer: 'ca', lifetimeDays: 7 },
    'test',
  );
  return c.id;
}

for (const [dialect, fresh] of [
  ['SQLite', sqlite],
  ['PostgreSQL', postgresql],
] as const) {
  describe(`rate-limit budget shared through the store (${dialect})`, () => {
    test('two hubs on one database see each other spend: a limit reached across both refuses the next order', async (t) => {
      const db = await fresh(t);
      const clock = new ManualClock('2026-03-01T00:00:00Z');
      const [storeA, storeB] = [await db.open(clock), await db.open(clock)];
      const [a, b] = [hubOn(storeA, clock), hubOn(storeB, clock)];
      const cert = await certificateIn(storeA);
      await allowed(b); // b has read the (empty) budget before a spends
      await issue(a, storeA, cert);
      await issue(a, storeA, cert);
      clock.advance(60_000);
      await issue(b, storeB, cert);
      await refused(a);
      await refused(b);
      clock.advance(HOUR_MS - 60_000 + 1); // a's two orders leave the window
      await allowed(b);
      await allowed(a);
    });

    test('an order counted survives a restart', async (t) => {
      const db = await fresh(t);
      const clock = new ManualClock('2026-03-01T00:00:00Z');
      const store = await db.open(clock);
      const cert = await certificateIn(store);
      const before = hubOn(store, clock);
      for (let i = 0; i < 3; i++) await issue(before, store, cert);
      await store.close();
      const restarted = hubOn(await db.open(clock), clock);
      await refused(restarted);
      clock.advance(HOUR_MS + 1);
      await allowed(restarted);
    });

    test('an order that failed to commit is stored on its own and still counts on another hub', async (t) => {
      const db = await fresh(t);
      const clock = new ManualClock('2026-03-01T00:00:00Z');
      const [storeA, storeB] = [await db.open(clock), await db.open(clock)];
      const a = hubOn(storeA, clock);
      const cert = await certificateIn(storeA);
      for (let i = 0; i < 2; i++) await issue(a, storeA, cert);
      // a failed first issuance has no renewal step to commit with
      await storeA.addRateLimitOrders(await a.spend(subject, newOrder(), 'failed'));
      await refused(hubOn(storeB, clock));
    });

    test('orders out of every window are pruned and no longer count', async (t) => {
      const db = await fresh(t);
      const clock = new ManualClock('2026-03-01T00:00:00Z');
      const store = await db.open(clock);
      const hub = hubOn(store, clock);
      const cert = await certificateIn(store);
      for (let i = 0; i < 3; i++) await issue(hub, store, cert);
      clock.advance(HOUR_MS + 1);
      await allowed(hub);
      assert.equal(
        (await store.rateLimitOrdersAfter(DIRECTORY, 0)).length,
        3,
        'kept while they are renewals',
      );
      clock.advance(HOUR_MS); // past the 2-hour renewal lookback too
      await allowed(hub);
      assert.deepEqual(await store.rateLimitOrdersAfter(DIRECTORY, 0), [], 'pruned');
      await issue(hub, store, cert);
      const other = hubOn(store, clock); // reads only the new order: two slots left
      const held = [await other.reserve(subject, newOrder()), await other.reserve(subject, newOrder())];
      await refused(other);
      for (const release of held) release();
      assert.equal((await store.rateLimitOrdersAfter(DIRECTORY, 0)).length, 1, 'new orders still stored');
    });

    test('a budget stored by an earlier version (one meta value) still counts after the upgrade, and is not kept twice', async (t) => {
      const db = await fresh(t);
      const old = await db.upTo('0013_acme_order_names');
      const at = (minutesAgo: number) => new Date(Date.parse('2026-03-01T00:00:00Z') - minutesAgo * 60_000);
      await old
        .insertInto('meta')
        .values({
          key: `planner.budget.${DIRECTORY}`,
          value: JSON.stringify({
            version: 1,
            windows: { 'NewOrdersPerAccount|default': [at(50), at(40), at(30)].map((d) => d.toISOString()) },
            issuedSets: {},
            replaced: {},
          }),
        })
        .execute();
      await old.destroy();
      const clock = new ManualClock('2026-03-01T00:00:00Z');
      const store = await db.open(clock);
      const hub = hubOn(store, clock);
      await refused(hub);
      assert.equal(await store.getMeta(`planner.budget.${DIRECTORY}`), undefined, 'the meta value is gone');
      clock.advance(10 * 60_000 + 1); // the oldest carried-over order leaves its window
      const held = await hub.reserve(subject, newOrder()); // the one slot that freed
      await refused(hub);
      held();
    });
  });
}
