import BetterSqlite3 from 'better-sqlite3';
import { Kysely } from 'kysely';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Clock } from '../../core/clock.ts';
import type { Logger } from '../../core/log.ts';
import { restrictMode, type OnModeFix } from '../file-mode.ts';
import type { Database } from '../schema.ts';
import { SqlStore } from '../sql-store.ts';
import { ImmediateSqliteDialect } from './immediate-dialect.ts';
import { withStatementCache } from './statement-cache.ts';
import { withWriteGeneration, WriteGeneration } from '../write-generation.ts';

/** The database file and the two files SQLite keeps beside it in WAL mode. */
export const sqliteFiles = (path: string): string[] => [path, `${path}-wal`, `${path}-shm`];

/**
 * Makes the database files owner-only (0600) before SQLite touches them. SQLite creates `-wal` and `-shm` with
 * exactly the mode of the database file (it fchmods them to it, whatever the umask), so creating the database file
 * 0600 here, before opening, is what keeps all three private from their first byte. Changing the process umask
 * around the open would not: it is process-wide, so it would race every other file the hub creates meanwhile.
 * Existing files from an older start (or a crash, which leaves `-wal`/`-shm` behind) are narrowed too.
 */
async function restrictSqliteFiles(path: string, onModeFix?: OnModeFix): Promise<void> {
  const [db, ...beside] = sqliteFiles(path);
  const fixes = [await restrictMode(db, 0o600, { create: true })];
  for (const file of beside) fixes.push(await restrictMode(file, 0o600));
  for (const fix of fixes) if (fix) onModeFix?.(fix);
}

export interface SqliteStoreOptions {
  onModeFix?: OnModeFix;
  logger?: Logger;
  /**
   * The file is this process's alone (the rehearsal's scratch store): SQLite's exclusive locking mode takes the file
   * lock once and keeps the WAL index in the process's memory, instead of locking the shared `-shm` index around
   * every statement. No other process can open the file meanwhile, so never for a hub's data directory, which
   * `certfleet backup` and `store migrate` read while the hub runs.
   */
  exclusive?: boolean;
}

/** Opens (and migrates) the embedded SQLite store: WAL journal, foreign keys enforced, busy timeout for other processes. */
export async function openSqliteStore(
  path: string,
  clock: Clock,
  opts: SqliteStoreOptions = {},
): Promise<SqlStore> {
  if (path !== ':memory:') {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 });
    await restrictSqliteFiles(path, opts.onModeFix);
  }
  const { db, generation } = await openSqlite(path, opts.exclusive === true);
  return new SqlStore(db, clock, undefined, { generation, ...(opts.logger ? { logger: opts.logger } : {}) });
}

/** The migrated database under the store (the store itself, and `certfleet store migrate` reading it). */
export async function openSqliteDatabase(path: string): Promise<Kysely<Database>> {
  return (await openSqlite(path)).db;
}

async function openSqlite(
  path: string,
  exclusive = false,
): Promise<{ db: Kysely<Database>; generation: WriteGeneration }> {
  const sqlite = new BetterSqlite3(path);
  // before the journal mode: in WAL mode, exclusive locking from the first access means no -shm file at all
  if (exclusive) sqlite.pragma('locking_mode = EXCLUSIVE');
  sqlite.pragma('journal_mode = WAL');
  sqlite.pragma('foreign_keys = ON');
  sqlite.pragma('busy_timeout = 5000');
  sqlite.pragma('synchronous = NORMAL');
  // changes when another connection (process) commits to the file; our own commits bump the generation
  const dataVersion = sqlite.prepare('PRAGMA data_version').pluck();
  const generation = new WriteGeneration({ external: () => dataVersion.get() as number });
  const db = new Kysely<Database>({
    dialect: withWriteGeneration(
      new ImmediateSqliteDialect({ database: withStatementCache(sqlite) }),
      generation,
    ),
  });
  try {
    await SqlStore.migrate(db, 'sqlite');
  } catch (e) {
    await db.destroy();
    throw e;
  }
  return { db, generation };
}
