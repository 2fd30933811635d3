import { CompiledQuery, SqliteDialect, SqliteDriver, type DatabaseConnection, type Driver } from 'kysely';

/**
 * SQLite transactions that take the write lock at BEGIN. A plain (deferred) BEGIN reads first and upgrades later;
 * in WAL mode, when another process (a second hub, `certfleet hub reset-admin-token`) committed in between, the
 * upgrade fails at once with "database is locked" (SQLITE_BUSY_SNAPSHOT: the busy timeout cannot help). BEGIN
 * IMMEDIATE waits its turn under the busy timeout instead. Seen in test/store/store.test.ts under load.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

export class ImmediateSqliteDialect extends SqliteDialect {
  constructor(private readonly sqliteConfig: ConstructorParameters<typeof SqliteDialect>[0]) {
    super(sqliteConfig);
  }

  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.sqliteConfig);
  }
}
