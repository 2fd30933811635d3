import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { ManualClock } from '../../src/core/clock.ts';
import type { Database } from '../../src/store/schema.ts';
import { SqlStore } from '../../src/store/sql-store.ts';
import { openSqliteStore } from '../../src/store/sqlite/open-sqlite-store.ts';
import { CASCADES, withWriteGeneration, WriteGeneration } from '../../src/store/write-generation.ts';
import { onCleanup } from '../helpers/cleanup.ts';

const now = '2026-01-10T00:00:00.000Z';

/** The store's schema in memory, under a dialect that keeps `generation` (as the store's own does). */
async function database(t: TestContext): Promise<{ db: Kysely<Database>; generation: WriteGeneration }> {
  const generation = new WriteGeneration();
  const db = new Kysely<Database>({
    dialect: withWriteGeneration(new SqliteDialect({ database: new BetterSqlite3(':memory:') }), generation),
  });
  onCleanup(t, () => db.destroy());
  await db.executeQuery(sql`pragma foreign_keys = on`.compile(db));
  await SqlStore.migrate(db, 'sqlite');
  return { db, generation };
}

const certificate = (db: Kysely<Database>, id: string) =>
  db
    .insertInto('certificates')
    .values({
      id,
      name: id,
      sans: '[]',
      key_type: 'ecdsa-p256',
      issuer: 'internal',
      lifetime_days: 30,
      acme_profile: null,
      current_version_id: null,
      renewal_state: '{}',
      created_at: now,
      updated_at: now,
    })
    .execute();

const endpoint = (db: Kysely<Database>, id: string) =>
  db
    .insertInto('endpoints')
    .values({
      id,
      name: id,
      kind: 'agent',
      probe_targets: '[]',
      labels: '{}',
      agent_public_key: null,
      last_seen_at: null,
      created_at: now,
      updated_at: now,
    })
    .execute();

describe('write generation per table', () => {
  test('a write to one table empties what was read from it and leaves what was read from others fresh', async (t) => {
    const { db, generation } = await database(t);
    const fromCertificates = generation.stamp(['certificates', 'versions']);
    const fromEndpoints = generation.stamp(['endpoints']);
    const fromAnything = generation.stamp();
    await certificate(db, 'c1');
    assert.equal(generation.isFresh(fromCertificates), false);
    assert.equal(generation.isFresh(fromEndpoints), true);
    assert.equal(generation.isFresh(fromAnything), false, 'a value that names no tables is read from all');
  });

  test('a write that sets only last_seen_at empties what shows last contact, not what shows endpoints', async (t) => {
    const { db, generation } = await database(t);
    await endpoint(db, 'e1');
    const names = generation.stamp(['endpoints']);
    const contacts = generation.stamp(['endpoints', 'endpoints.last_seen_at']);
    await db.updateTable('endpoints').set({ last_seen_at: now }).where('id', '=', 'e1').execute();
    assert.equal(generation.isFresh(names), true);
    assert.equal(generation.isFresh(contacts), false);

    const lastContact = generation.stamp(['endpoints.last_seen_at']);
    await db.updateTable('endpoints').set({ name: 'e1-renamed', last_seen_at: now }).execute();
    assert.equal(generation.isFresh(names), false, 'any other write to endpoints counts as one to the table');
    assert.equal(generation.isFresh(lastContact), false, 'and to its tracked column');
  });

  test('the writes of a transaction are seen at its commit, with the tables they wrote', async (t) => {
    const { db, generation } = await database(t);
    const fromCertificates = generation.stamp(['certificates']);
    const fromEvents = generation.stamp(['events']);
    await db.transaction().execute(async (trx) => {
      await certificate(trx, 'c1');
      assert.equal(generation.isFresh(fromCertificates), true, 'not before the commit');
    });
    assert.equal(generation.isFresh(fromCertificates), false);
    assert.equal(generation.isFresh(fromEvents), true);
  });

  test('a rolled back transaction also counts (a failed COMMIT may have committed)', async (t) => {
    const { db, generation } = await database(t);
    const fromCertificates = generation.stamp(['certificates']);
    await assert.rejects(
      db.transaction().execute(async (trx) => {
        await certificate(trx, 'c1');
        throw new Error('abort');
      }),
      /abort/,
    );
    assert.equal(generation.isFresh(fromCertificates), false);
  });

  test('a delete counts for the tables its foreign keys cascade to', async (t) => {
    const { db, generation } = await database(t);
    await certificate(db, 'c1');
    const fromDeployments = generation.stamp(['deployments']);
    const fromEndpoints = generation.stamp(['endpoints']);
    await db.deleteFrom('certificates').where('id', '=', 'c1').execute();
    assert.equal(generation.isFresh(fromDeployments), false);
    assert.equal(generation.isFresh(fromEndpoints), true);
  });

  test('a raw write statement empties everything, a raw read nothing', async (t) => {
    const { db, generation } = await database(t);
    const fromEvents = generation.stamp(['events']);
    await sql`select count(*) from certificates`.execute(db);
    assert.equal(generation.isFresh(fromEvents), true);
    await sql`update certificates set updated_at = ${now}`.execute(db);
    assert.equal(generation.isFresh(fromEvents), false, 'the tables of raw SQL are not known: all of them');
  });

  test('a raw write inside a transaction empties everything at the commit', async (t) => {
    const { db, generation } = await database(t);
    const fromEvents = generation.stamp(['events']);
    await db.transaction().execute(async (trx) => {
      await certificate(trx, 'c1');
      await sql`update certificates set updated_at = ${now}`.execute(trx);
    });
    assert.equal(generation.isFresh(fromEvents), false);
  });

  test("another connection's commit on the same file empties everything", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'certfleet-generation-'));
    onCleanup(t, () => rm(dir, { recursive: true, force: true }));
    const store = await openSqliteStore(join(dir, 'hub.db'), new ManualClock(Date.parse(now)));
    onCleanup(t, () => store.close());
    const fromEvents = store.generation.stamp(['events']);
    assert.equal(store.generation.isFresh(fromEvents), true);
    const other = new BetterSqlite3(join(dir, 'hub.db'));
    try {
      other.prepare(`INSERT INTO meta (key, value) VALUES ('other', 'x')`).run();
    } finally {
      other.close();
    }
    assert.equal(store.generation.isFresh(fromEvents), false);
  });

  test("the store's touches count for last contact only", async (t) => {
    const store = await openSqliteStore(':memory:', new ManualClock(Date.parse(now)));
    onCleanup(t, () => store.close());
    const e = await store.createEndpoint(
      { name: 'ep-a', kind: 'agent', probeTargets: [], labels: {} },
      'test',
    );
    const names = store.generation.stamp(['endpoints', 'subscriptions']);
    const contacts = store.generation.stamp(['endpoints.last_seen_at']);
    await store.touchEndpoints([{ endpointId: e.id, at: now }]);
    assert.equal(await store.lastSeen(e.id), now);
    assert.equal(store.generation.isFresh(names), true);
    assert.equal(store.generation.isFresh(contacts), false);
  });

  test('says it sees every commit at once only when no staleness bound stands in for unseen writers', () => {
    assert.equal(new WriteGeneration().seesEveryCommit, true, 'one process');
    assert.equal(
      new WriteGeneration({ external: () => 1 }).seesEveryCommit,
      true,
      'SQLite: other processes too',
    );
    assert.equal(
      new WriteGeneration({ maxStaleMs: 1000 }).seesEveryCommit,
      false,
      "PostgreSQL: other hubs' later",
    );
  });

  test('the cascades it knows are those of the schema', async (t) => {
    const { db } = await database(t);
    const tables = (
      await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(db)
    ).rows;
    const found: Record<string, string[]> = {};
    for (const { name } of tables) {
      const keys = await sql<{ table: string; on_delete: string }>`pragma foreign_key_list(${sql.raw(
        `"${name}"`,
      )})`.execute(db);
      for (const k of keys.rows) if (k.on_delete === 'CASCADE') (found[k.table] ??= []).push(name);
    }
    const sorted = (m: Readonly<Record<string, readonly string[]>>) =>
      Object.fromEntries(
        Object.entries(m)
          .map(([k, v]) => [k, [...v].sort()] as const)
          .sort(([a], [b]) => a.localeCompare(b)),
      );
    assert.deepEqual(sorted(found), sorted(CASCADES));
  });
});
