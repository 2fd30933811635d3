import pg from 'pg';
import type { Logger } from '../../core/log.ts';
import { describeDatabaseUrl, parseDatabaseUrl } from './database-url.ts';

/** The leader lock of the hubs over one database ("certlead" in ASCII); distinct from the write lock. */
export const LEADER_LOCK_KEY = 0x636572746c656164n;

export interface LeaderLeaseOptions {
  key?: bigint;
  /** How often a follower tries to take the lease and the leader checks it still holds it. */
  checkIntervalMs?: number;
  logger?: Logger;
  /** Called on every change: true when this process became the leader, false when it lost or gave up the lease. */
  onChange?: (leading: boolean) => void;
}

/**
 * Leadership among hubs on one PostgreSQL database: a session-level advisory lock held on a dedicated connection.
 * The server releases it the moment that connection ends, so a crashed leader (kill -9, its machine gone) loses it
 * as soon as its TCP connection is seen dead: at once for a killed process, within about 10 s for a vanished host
 * (server-side TCP keepalives set on the session below). The leader checks its connection every interval and steps
 * down when the check fails, so it never acts as leader over a connection that may already have lost the lock.
 * Contract: at most one holder per key and database at any time; `isLeader` may lag a loss by one interval.
 */
export class LeaderLease {
  private client: pg.Client | undefined;
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly key: bigint;
  private readonly intervalMs: number;

  constructor(
    private readonly url: string,
    private readonly opts: LeaderLeaseOptions = {},
  ) {
    parseDatabaseUrl(url);
    this.key = opts.key ?? LEADER_LOCK_KEY;
    this.intervalMs = opts.checkIntervalMs ?? 2000;
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Starts trying to take the lease (the first try before this returns) and keeps checking it. */
  async start(): Promise<void> {
    await this.tick();
    this.schedule();
  }

  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => this.schedule());
    }, this.intervalMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    try {
      const client = this.client ?? (await this.connect());
      if (this.leading) {
        await client.query('select 1');
      } else {
        const r = await client.query<{ ok: boolean }>('select pg_try_advisory_lock($1) as ok', [
          this.key.toString(),
        ]);
        if (r.rows[0]?.ok && !this.stopped) this.change(true);
      }
    } catch (e) {
      this.lost(e);
    }
  }

  /** The lease's connection failed (a query, or the server ended the session): say so, and forget it. */
  private lost(e: unknown): void {
    this.opts.logger?.warn(
      { database: describeDatabaseUrl(this.url), err: (e as Error).message, was_leader: this.leading },
      'leader lease: lost the database connection; trying again',
    );
    this.drop();
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client({
      connectionString: this.url,
      keepAlive: true,
      connectionTimeoutMillis: this.intervalMs * 2,
      query_timeout: this.intervalMs * 2,
      application_name: 'certfleet-leader-lease',
    });
    // a restart or failover ends the session between checks: the lock is gone, so this hub steps down now
    client.on('error', (e) => {
      if (this.client === client) this.lost(e);
    });
    await client.connect();
    this.client = client;
    // the server notices a vanished leader host within ~10 s and ends its session, releasing the lock
    await client.query(
      'set tcp_keepalives_idle = 4; set tcp_keepalives_interval = 2; set tcp_keepalives_count = 3',
    );
    return client;
  }

  /** Forgets the connection (and with it the lock) after an error. */
  private drop(): void {
    const client = this.client;
    this.client = undefined;
    if (this.leading) this.change(false);
    client?.end().catch(() => {});
  }

  private change(leading: boolean): void {
    this.leading = leading;
    this.opts.onChange?.(leading);
  }

  /** Gives the lease up (another hub can take it at its next try) and stops trying. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.running;
    const client = this.client;
    this.client = undefined;
    if (this.leading) this.change(false);
    await client?.end().catch(() => {});
  }
}
