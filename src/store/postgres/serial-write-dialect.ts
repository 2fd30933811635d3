import {
  CompiledQuery,
  PostgresDialect,
  PostgresDriver,
  type DatabaseConnection,
  type Driver,
  type PostgresDialectConfig,
  type TransactionSettings,
} from 'kysely';

/**
 * The advisory lock every write transaction holds until it ends (a constant of this application: "certflt" in
 * ASCII). Advisory locks are per database, so several certfleet databases in one cluster do not contend.
 */
export const WRITE_LOCK_KEY = 0x63657274666c74n;

/**
 * PostgreSQL transactions that serialise with each other, as SQLite's BEGIN IMMEDIATE does (see
 * ../sqlite/immediate-dialect.ts): each takes a transaction-scoped advisory lock right after BEGIN, in the same
 * round trip. The store's write paths read, check (the lifecycle table, uniqueness, "first writer's set wins") and
 * then write; under READ COMMITTED two hubs could both pass the check. One writer at a time keeps every path as
 * correct as it is on SQLite without a retry loop around each; reads (long-polls, lists) take no lock and never
 * wait. Why not SERIALIZABLE or per-row FOR UPDATE: docs/architecture.md ("Writes on PostgreSQL").
 */
class SerialWritePostgresDriver extends PostgresDriver {
  override async beginTransaction(
    connection: DatabaseConnection,
    settings: TransactionSettings,
  ): Promise<void> {
    if (settings.isolationLevel || settings.accessMode) {
      await super.beginTransaction(connection, settings);
      await connection.executeQuery(CompiledQuery.raw(`select pg_advisory_xact_lock(${WRITE_LOCK_KEY})`));
      return;
    }
    // no parameters: pg sends both statements in one simple-protocol message
    await connection.executeQuery(
      CompiledQuery.raw(`begin; select pg_advisory_xact_lock(${WRITE_LOCK_KEY})`),
    );
  }
}

export class SerialWritePostgresDialect extends PostgresDialect {
  constructor(private readonly pgConfig: PostgresDialectConfig) {
    super(pgConfig);
  }

  override createDriver(): Driver {
    return new SerialWritePostgresDriver(this.pgConfig);
  }
}
