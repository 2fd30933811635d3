import { randomUUID } from 'node:crypto';
import { Kysely } from 'kysely';
import pg from 'pg';
import type { Clock } from '../../core/clock.ts';
import type { Logger } from '../../core/log.ts';
import type { Database } from '../schema.ts';
import { SqlStore } from '../sql-store.ts';
import { describeDatabaseUrl, parseDatabaseUrl, unreachableDatabase } from './database-url.ts';
import { EventListener, notifyAnnouncer } from './event-relay.ts';
import { SerialWritePostgresDialect } from './serial-write-dialect.ts';
import { withWriteGeneration, WriteGeneration } from '../write-generation.ts';

/**
 * Other hubs' commits are not seen by this hub's write generation until a cross-hub notification bumps it, so a
 * cached page or token lookup is used for at most this long.
 */
export const POSTGRES_MAX_STALE_MS = 1000;

const INT8_OID = 20;

/**
 * bigint (count(*), the events' bigserial id) arrives from pg as a string; the store's numbers stay far below 2^53,
 * so this pool reads them as numbers, as SQLite returns them. Set per pool, not on pg's global registry.
 */
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8_OID && format !== 'binary') return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
} as pg.CustomTypesConfig;

/** A pg pool for `url` whose bigints read as numbers; idle-connection errors are logged, not fatal. */
export function postgresPool(url: string, opts: { logger?: Logger; max?: number } = {}): pg.Pool {
  parseDatabaseUrl(url);
  const pool = new pg.Pool({
    connectionString: url,
    types,
    max: opts.max ?? 10,
    connectionTimeoutMillis: 10_000,
    application_name: 'certfleet',
  });
  // An idle connection that the server drops (restart, failover) emits here; without a listener the process dies.
  pool.on('error', (e) =>
    opts.logger?.warn(
      { database: describeDatabaseUrl(url), err: e.message },
      'PostgreSQL connection lost; the pool reconnects on next use',
    ),
  );
  return pool;
}

/** Connects once so a wrong URL, a missing database or a stopped server fails here, with a clear error. */
async function assertReachable(pool: pg.Pool, url: string): Promise<void> {
  try {
    const client = await pool.connect();
    client.release();
  } catch (e) {
    await pool.end().catch(() => {});
    throw unreachableDatabase(url, e);
  }
}

/**
 * Opens (and migrates) the store in a PostgreSQL database: the same SqlStore as SQLite over Kysely's PostgreSQL
 * dialect, write transactions serialised (see serial-write-dialect.ts). Several hubs may open one database; each
 * store's events reach the others' subscribers (event-relay.ts).
 */
export async function openPostgresStore(
  url: string,
  clock: Clock,
  opts: { logger?: Logger } = {},
): Promise<SqlStore> {
  const generation = new WriteGeneration({ maxStaleMs: POSTGRES_MAX_STALE_MS });
  const db = await openPostgresDatabase(url, { ...opts, generation });
  const self = randomUUID();
  let store: SqlStore | undefined;
  const listener = new EventListener(url, {
    self,
    // another hub committed: cached pages and token lookups of this hub are stale from now
    deliver: (events) => {
      generation.bump();
      store?.deliver(events);
    },
    revision: () => store!.revision(),
    ...(opts.logger ? { logger: opts.logger } : {}),
  });
  try {
    await listener.start();
  } catch (e) {
    await db.destroy();
    throw unreachableDatabase(url, e);
  }
  store = new SqlStore(db, clock, () => listener.stop(), {
    ...(opts.logger ? { logger: opts.logger } : {}),
    generation,
    announce: notifyAnnouncer(self),
  });
  return store;
}

/** The migrated database under the store (the store itself, and `certfleet store migrate` writing it). */
export async function openPostgresDatabase(
  url: string,
  opts: { logger?: Logger; generation?: WriteGeneration } = {},
): Promise<Kysely<Database>> {
  const pool = postgresPool(url, opts);
  await assertReachable(pool, url);
  const dialect = new SerialWritePostgresDialect({ pool });
  const db = new Kysely<Database>({
    dialect: opts.generation ? withWriteGeneration(dialect, opts.generation) : dialect,
  });
  try {
    await SqlStore.migrate(db, 'postgres');
  } catch (e) {
    await db.destroy();
    throw e;
  }
  return db;
}
