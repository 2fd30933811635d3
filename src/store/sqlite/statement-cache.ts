import type BetterSqlite3 from 'better-sqlite3';
import type { SqliteDatabase, SqliteStatement } from 'kysely';
import { setBounded } from '../../core/bounded-map.ts';

/** Enough for every distinct query the hub makes (a few hundred), small enough to bound the memory it holds. */
const MAX_STATEMENTS = 1000;

/**
 * Kysely's SQLite driver prepares every query it runs, and SQLite re-parses and re-plans the SQL each time; on the
 * list and fleet reads that was a large share of the work per page. The hub runs the same few hundred SQL strings
 * over and over, so a prepared statement is kept per SQL text and reused. A statement still in use (an open
 * iterator) is never handed out twice: that call gets a fresh one.
 */
export function withStatementCache(db: BetterSqlite3.Database): SqliteDatabase {
  const cache = new Map<string, BetterSqlite3.Statement>();
  return {
    close: () => {
      cache.clear();
      db.close();
    },
    prepare(sql: string): SqliteStatement {
      const cached = cache.get(sql);
      if (cached && !cached.busy) return cached;
      const stmt = db.prepare(sql);
      if (!cached) setBounded(cache, MAX_STATEMENTS, sql, stmt);
      return stmt;
    },
  };
}
