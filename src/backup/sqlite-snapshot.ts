import BetterSqlite3 from 'better-sqlite3';
import { restrictMode } from '../store/file-mode.ts';

/**
 * A consistent copy of a live SQLite store through SQLite's online backup API (better-sqlite3 `db.backup`): it
 * copies pages while the hub keeps writing and restarts when a page it copied changes, so the copy is one committed
 * state, WAL included. Opens its own connection; the hub needs no pause. The copy is created 0600.
 */
export async function snapshotSqlite(source: string, target: string): Promise<void> {
  await restrictMode(target, 0o600, { create: true });
  const db = new BetterSqlite3(source, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 5000');
    await db.backup(target);
  } finally {
    db.close();
  }
}

/** The migrations applied to a SQLite store file (Kysely's bookkeeping table), in order. */
export function appliedMigrations(path: string): string[] {
  const db = new BetterSqlite3(path, { readonly: true, fileMustExist: true });
  try {
    return (
      db.prepare('SELECT name FROM kysely_migration ORDER BY name').all() as Array<{ name: string }>
    ).map((r) => r.name);
  } finally {
    db.close();
  }
}
