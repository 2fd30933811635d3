import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock } from '../../core/clock.ts';
import type { Database } from '../schema.ts';
import { SqlStore } from '../sql-store.ts';

/** Opens (and migrates) the embedded SQLite store: WAL journal, foreign keys enforced, busy timeout for other processes. */
export async function openSqliteStore(path: string, clock: Clock): Promise<SqlStore> {
  if (path !== ':memory:') await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const sqlite = new BetterSqlite3(path);
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('synchronous = NORMAL');
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: sqlite }) });
  await SqlStore.migrate(db, 'sqlite');
  return new SqlStore(db, clock);
}
