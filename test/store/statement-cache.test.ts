/**
 * The SQLite statement cache (src/store/sqlite/statement-cache.ts): the same SQL reuses one prepared statement,
 * and a statement still iterating is never handed out twice.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import { withStatementCache } from '../../src/store/sqlite/statement-cache.ts';

function database() {
  const raw = new BetterSqlite3(':memory:');
  raw.exec('CREATE TABLE t (n INTEGER); INSERT INTO t VALUES (1), (2), (3);');
  return withStatementCache(raw);
}

test('the same SQL text gets the same prepared statement; different SQL a different one', () => {
  const db = database();
  const a = db.prepare('SELECT n FROM t ORDER BY n');
  assert.equal(db.prepare('SELECT n FROM t ORDER BY n'), a);
  assert.notEqual(db.prepare('SELECT n FROM t ORDER BY n DESC'), a);
  assert.deepEqual(a.all([]), [{ n: 1 }, { n: 2 }, { n: 3 }]);
  db.close();
});

test('while a statement iterates, the same SQL gets a fresh statement and both walks see every row', () => {
  const db = database();
  const sql = 'SELECT n FROM t ORDER BY n';
  const outer: unknown[] = [];
  const inner: unknown[] = [];
  for (const row of db.prepare(sql).iterate([])) {
    outer.push(row);
    if (outer.length === 1) for (const r of db.prepare(sql).iterate([])) inner.push(r);
  }
  assert.deepEqual(outer, [{ n: 1 }, { n: 2 }, { n: 3 }]);
  assert.deepEqual(inner, outer);
  db.close();
});
