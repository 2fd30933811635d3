import type pg from 'pg';

/** The first half of the two-int advisory lock keys of issuance locks ("cfis"); distinct from the bigint ones. */
const ISSUANCE_LOCK_CLASS = 0x63666973;

/**
 * The issuance lock of the hubs on one PostgreSQL database (the coalescer's DistributedLock, src/hub/issuance-lock.ts):
 * a session advisory lock held on a connection taken from `pool` for as long as the issuance runs. The server
 * frees it the moment that session ends, so a hub killed mid-issuance never leaves a lock to wait out; the lease
 * asked for (`ttlMs`) is therefore not needed and ignored. Keys hash into 32 bits: two keys that collide only
 * take turns.
 */
export class AdvisoryIssuanceLock {
  constructor(private readonly pool: pg.Pool) {}

  async tryAcquire(key: string): Promise<(() => Promise<void>) | undefined> {
    const client = await this.pool.connect();
    let ok: boolean | undefined;
    try {
      const r = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1, hashtext($2)) as ok', [
        ISSUANCE_LOCK_CLASS,
        key,
      ]);
      ok = r.rows[0]?.ok;
    } catch (e) {
      client.release(e as Error);
      throw e;
    }
    if (!ok) {
      client.release();
      return undefined;
    }
    let released = false;
    // A held connection the server drops (restart, failover) frees the lock; without a listener the error would
    // end the process. The release then finds the connection broken and drops it.
    const onError = () => undefined;
    client.on('error', onError);
    return async () => {
      if (released) return;
      released = true;
      try {
        await client.query('select pg_advisory_unlock($1, hashtext($2))', [ISSUANCE_LOCK_CLASS, key]);
        client.release();
      } catch (e) {
        client.release(e as Error); // the connection is dropped, and with it the lock
        throw e;
      } finally {
        client.off('error', onError);
      }
    };
  }
}
