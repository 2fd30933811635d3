/**
 * Post-commit events across the hubs of one PostgreSQL database (LISTEN/NOTIFY). The committing hub announces a
 * transaction's events with pg_notify INSIDE that transaction, so the server delivers them on commit and drops them
 * on rollback; every other hub's listener hands them to its store's subscribers (long-poll wake-ups, the leader's
 * probe after a reload, connector deploys, dashboard live updates, caches) as origin 'remote'.
 *
 * Notifications sent while a listener is disconnected are lost: after reconnecting it says so with
 * `store.resynced` and re-reads the revision (a `revision.bumped`), so caches drop and long-polls wake.
 */
import { sql } from 'kysely';
import pg from 'pg';
import { errorMessage } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { Announce } from '../sql-store.ts';
import type { StoreEvent } from '../store-events.ts';
import { describeDatabaseUrl } from './database-url.ts';

export const EVENT_CHANNEL = 'certfleet_events';

/** PostgreSQL refuses payloads of 8000 bytes or more; stay below with room for the envelope. */
const MAX_PAYLOAD = 7800;

interface Envelope {
  /** The announcing store, so a hub skips its own notifications. */
  store: string;
  events: StoreEvent[];
}

/**
 * The payloads for a batch of events: as few as fit. A single event too large on its own (a version's long chain)
 * travels without its PEM text, which no subscriber reads from events; one still too large is left out.
 */
export function envelopes(from: string, events: readonly StoreEvent[]): string[] {
  const out: string[] = [];
  let batch: string[] = [];
  let size = 0;
  const flush = () => {
    // built as text so a batch is measured before it is sent (the payload limit is in bytes)
    if (batch.length) out.push(`{"store":${JSON.stringify(from)},"events":[${batch.join(',')}]}`);
    batch = [];
    size = 0;
  };
  const room = MAX_PAYLOAD - 100 - Buffer.byteLength(from);
  for (const event of events) {
    let text = JSON.stringify(event);
    if (Buffer.byteLength(text) > room && event.kind === 'version.added')
      text = JSON.stringify({ ...event, version: { ...event.version, certPem: '', chainPem: '' } });
    const bytes = Buffer.byteLength(text);
    if (bytes > room) continue;
    if (size + bytes + 1 > room) flush();
    batch.push(text);
    size += bytes + 1;
  }
  flush();
  return out;
}

/** The in-transaction announcer of the store opened with `from` as its id. */
export function notifyAnnouncer(from: string): Announce {
  return async (trx, events) => {
    for (const payload of envelopes(from, events))
      await sql`select pg_notify(${EVENT_CHANNEL}, ${payload})`.execute(trx);
  };
}

export interface EventListenerOptions {
  /** This store's id: its own notifications are skipped (its subscribers saw them as 'local'). */
  self: string;
  deliver: (events: readonly StoreEvent[]) => void;
  /** The revision now, read after a reconnect. */
  revision: () => Promise<number>;
  logger?: Logger;
  /** First and longest wait before reconnecting (doubling in between). */
  backoffMs?: { first: number; max: number };
}

/** A dedicated connection LISTENing on the events channel; reconnects with backoff and resyncs. */
export class EventListener {
  private client: pg.Client | undefined;
  private stopped = false;
  private retry: NodeJS.Timeout | undefined;
  private failures = 0;

  constructor(
    private readonly url: string,
    private readonly opts: EventListenerOptions,
  ) {}

  /** Connects and listens; rejects when the first connection fails (the store then does not open). */
  async start(): Promise<void> {
    await this.connect();
  }

  private async connect(): Promise<void> {
    const client = new pg.Client({
      connectionString: this.url,
      keepAlive: true,
      connectionTimeoutMillis: 10_000,
      application_name: 'certfleet-events',
    });
    client.on('notification', (n) => this.receive(n.payload));
    client.on('error', (e) => this.lost(client, e));
    client.on('end', () => this.lost(client, new Error('connection ended')));
    try {
      await client.connect();
      await client.query(`listen ${EVENT_CHANNEL}`);
    } catch (e) {
      client.removeAllListeners('end');
      await client.end().catch(() => {});
      throw e;
    }
    if (this.stopped) return void (await client.end().catch(() => {}));
    this.client = client;
  }

  private receive(payload: string | undefined): void {
    if (!payload) return;
    let envelope: Envelope;
    try {
      envelope = JSON.parse(payload) as Envelope;
    } catch {
      return; // not ours
    }
    if (envelope.store === this.opts.self || !Array.isArray(envelope.events)) return;
    this.opts.deliver(envelope.events);
  }

  private lost(client: pg.Client, e: Error): void {
    if (this.client !== client || this.stopped) return;
    this.client = undefined;
    client.end().catch(() => {});
    this.opts.logger?.warn(
      { database: describeDatabaseUrl(this.url), err: e.message },
      'event relay: lost the database connection; events from other hubs wait until it is back',
    );
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopped) return;
    const { first, max } = this.opts.backoffMs ?? { first: 250, max: 10_000 };
    const wait = Math.min(max, first * 2 ** this.failures);
    this.retry = setTimeout(() => void this.reconnect(), wait);
    this.retry.unref();
  }

  private async reconnect(): Promise<void> {
    try {
      await this.connect();
    } catch (e) {
      this.failures++;
      this.opts.logger?.warn(
        { database: describeDatabaseUrl(this.url), err: errorMessage(e), attempt: this.failures },
        'event relay: reconnecting failed; trying again',
      );
      return this.scheduleReconnect();
    }
    this.failures = 0;
    // a revision that cannot be read now is caught up by the long-poll's fallback poll
    const revision = await this.opts.revision().catch(() => undefined);
    this.opts.logger?.info(
      { database: describeDatabaseUrl(this.url), revision },
      'event relay: listening again; resynced (events from other hubs meanwhile were missed)',
    );
    this.opts.deliver([
      { kind: 'store.resynced' },
      ...(revision === undefined ? [] : [{ kind: 'revision.bumped' as const, revision }]),
    ]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => {});
  }
}
