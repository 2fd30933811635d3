/** CompiledOnce: compiled at the first run, then run with each call's values in the places the SQL binds them. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sql } from 'kysely';
import { CompiledOnce } from '../../src/store/compiled-once.ts';
import { openSqliteDatabase } from '../../src/store/sqlite/open-sqlite-store.ts';

test('binds each call values where the statement uses them, keeps the constants the builder bound', async (t) => {
  const db = await openSqliteDatabase(':memory:');
  t.after(() => db.destroy());
  const put = new CompiledOnce((d, value: string, key: string) =>
    d.insertInto('meta').values({ key: sql<string>`${key} || '-' || ${'k'}`, value }),
  );
  await put.run(db, 'one', 'a');
  await put.run(db, 'two', 'b');
  await db.transaction().execute((trx) => put.run(trx, 'three', 'c').then(() => undefined));
  const get = new CompiledOnce((d, key: string) =>
    d.selectFrom('meta').select('value').where('key', '=', key),
  );
  assert.equal((await get.first(db, 'a-k'))?.value, 'one');
  assert.equal((await get.first(db, 'b-k'))?.value, 'two');
  assert.equal((await get.first(db, 'c-k'))?.value, 'three');
  assert.equal(await get.first(db, 'nothing'), undefined);
});

test('refuses a builder that does not bind one of its parameters', async (t) => {
  const db = await openSqliteDatabase(':memory:');
  t.after(() => db.destroy());
  const bad = new CompiledOnce((d, key: string, _unused: string) =>
    d.selectFrom('meta').select('value').where('key', '=', key),
  );
  await assert.rejects(bad.run(db, 'a', 'b'), /not bound/);
});
