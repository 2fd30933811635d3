/**
 * The counted orders of the rate-limit budgets (migration 0014): one row per order, numbered per directory in
 * commit order. Kept apart from sql-store.ts so the budget's storage is one file; SqlStore owns the transactions.
 */
import { sql, type Kysely, type Transaction } from 'kysely';
import { chunks, parse } from './rows.ts';
import type { Database } from './schema.ts';
import type { RateLimitOrder, StoredRateLimitOrder } from './store.ts';

type Db = Kysely<Database> | Transaction<Database>;

/**
 * Inserts orders inside the caller's transaction. Each directory's head row is bumped first: `seq` never repeats
 * after a prune, and grows in commit order (one writer at a time on both dialects, and the head's row lock holds a
 * concurrent commit besides), so a reader that has read up to some `seq` never sees a smaller one commit later.
 */
export async function insertRateLimitOrders(trx: Transaction<Database>, orders: readonly RateLimitOrder[]) {
  const byDirectory = new Map<string, RateLimitOrder[]>();
  for (const o of orders) byDirectory.set(o.directory, [...(byDirectory.get(o.directory) ?? []), o]);
  for (const [directory, own] of byDirectory) {
    const { seq: last } = await trx
      .insertInto('rate_limit_heads')
      .values({ directory, seq: own.length })
      .onConflict((oc) =>
        oc.column('directory').doUpdateSet({ seq: sql<number>`rate_limit_heads.seq + ${own.length}` }),
      )
      .returning('seq')
      .executeTakeFirstOrThrow();
    const first = Number(last) - own.length + 1;
    for (const part of chunks(own.map((o, i) => ({ o, seq: first + i }))))
      await trx
        .insertInto('rate_limit_orders')
        .values(
          part.map(({ o, seq }) => ({
            directory,
            seq,
            hub: o.hub,
            at: o.at,
            outcome: o.outcome,
            windows: JSON.stringify(o.windows),
            issued_set: o.issuedSet ?? null,
            replaces: o.replaces ?? null,
            keep_until: o.keepUntil,
          })),
        )
        .execute();
  }
}

export async function selectRateLimitOrdersAfter(
  db: Db,
  directory: string,
  afterSeq: number,
): Promise<StoredRateLimitOrder[]> {
  const rows = await db
    .selectFrom('rate_limit_orders')
    .selectAll()
    .where('directory', '=', directory)
    .where('seq', '>', afterSeq)
    .orderBy('seq')
    .execute();
  return rows.map((r) => ({
    directory: r.directory,
    seq: Number(r.seq),
    hub: r.hub,
    at: r.at,
    outcome: r.outcome === 'failed' ? 'failed' : 'issued',
    windows: parse<string[]>(r.windows, []),
    ...(r.issued_set !== null ? { issuedSet: r.issued_set } : {}),
    ...(r.replaces !== null ? { replaces: r.replaces } : {}),
    keepUntil: r.keep_until,
  }));
}

export async function deleteRateLimitOrdersKeptUntil(db: Db, now: string): Promise<number> {
  const r = await db.deleteFrom('rate_limit_orders').where('keep_until', '<=', now).executeTakeFirst();
  return Number(r.numDeletedRows);
}
