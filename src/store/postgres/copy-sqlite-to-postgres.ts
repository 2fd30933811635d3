import { sql, type Kysely } from 'kysely';
import { CertfleetError } from '../../core/errors.ts';
import type { Database } from '../schema.ts';
import { describeDatabaseUrl } from './database-url.ts';
import { openPostgresDatabase } from './open-postgres-store.ts';
import { openSqliteDatabase } from '../sqlite/open-sqlite-store.ts';

/** Every table, parents before children (PostgreSQL checks foreign keys on each insert). */
export const TABLES = [
  'meta',
  'certificates',
  'versions',
  'endpoints',
  'subscriptions',
  'deployments',
  'events',
  'tokens',
  'probe_results',
  'http01_tokens',
  'agent_nonces',
  'campaigns',
  'campaign_items',
  'acme_orders',
  'rate_limit_orders',
  'rate_limit_heads',
] as const satisfies ReadonlyArray<keyof Database>;

// A table added to the schema but not to TABLES fails to compile here, so the copy never silently skips one.
type Uncopied = Exclude<keyof Database, (typeof TABLES)[number]>;
const everyTableCopied: [Uncopied] extends [never] ? true : Uncopied = true;
void everyTableCopied;

/** Rows per INSERT: well under PostgreSQL's 65,535 parameters for the widest table. */
const BATCH = 500;

export type TableCounts = Record<(typeof TABLES)[number], number>;

async function countRows(db: Kysely<Database>): Promise<TableCounts> {
  const counts = {} as TableCounts;
  for (const table of TABLES) {
    const r = await db
      .selectFrom(table)
      .select((eb) => eb.fn.countAll().as('n'))
      .executeTakeFirstOrThrow();
    counts[table] = Number(r.n);
  }
  return counts;
}

/**
 * Copies a hub's SQLite store into an empty PostgreSQL database (`certfleet store migrate`). Both are migrated to
 * the current schema first. Rows are copied as they are (sealed values stay sealed under the same data key: the
 * master key stays in the data directory), in ONE PostgreSQL transaction that also refuses a non-empty target and
 * compares every table's count with the source before it commits, so the target ends up either complete or
 * untouched. The SQLite side is read inside one transaction, a consistent snapshot even if a hub still runs.
 */
export async function copySqliteToPostgres(
  sqlitePath: string,
  postgresUrl: string,
): Promise<{ counts: TableCounts }> {
  const source = await openSqliteDatabase(sqlitePath);
  try {
    const target = await openPostgresDatabase(postgresUrl);
    try {
      return await source.transaction().execute((from) =>
        target.transaction().execute(async (to) => {
          const already = Object.entries(await countRows(to)).filter(([, n]) => n > 0);
          if (already.length > 0) {
            throw new CertfleetError(
              'CONFLICT',
              `the database ${describeDatabaseUrl(postgresUrl)} is not empty (${already
                .map(([t, n]) => `${n} ${t}`)
                .join(', ')})`,
              'migrate into a new, empty database (CREATE DATABASE …), or drop this one first',
            );
          }
          const counts = await countRows(from);
          for (const table of TABLES) await copyTable(from, to, table);
          // events.id is a bigserial: continue after the copied ids
          await sql`select setval(pg_get_serial_sequence('events', 'id'), coalesce(max(id), 0) + 1, false) from events`.execute(
            to,
          );
          const copied = await countRows(to);
          const differs = TABLES.filter((t) => copied[t] !== counts[t]);
          if (differs.length > 0) {
            throw new CertfleetError(
              'INTERNAL',
              `the copy does not match the source in ${differs.join(', ')}; nothing was written`,
              'report this as a bug',
            );
          }
          return { counts };
        }),
      );
    } finally {
      await target.destroy();
    }
  } finally {
    await source.destroy();
  }
}

async function copyTable(from: Kysely<Database>, to: Kysely<Database>, table: (typeof TABLES)[number]) {
  let batch: Record<string, unknown>[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await to
      .insertInto(table)
      .values(batch as never)
      .execute();
    batch = [];
  };
  for await (const row of from.selectFrom(table).selectAll().stream()) {
    batch.push(row as Record<string, unknown>);
    if (batch.length >= BATCH) await flush();
  }
  await flush();
}
