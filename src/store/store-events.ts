/**
 * The store's post-commit event stream: the one place reactions to committed state changes hook in (long-poll
 * wake-ups, probes after a reload, metrics; later the dashboard's live updates and LISTEN/NOTIFY between hubs).
 * Nothing wraps or proxies the store, so it does not matter when a subscriber is built.
 */
import type { Logger } from '../core/log.ts';
import type {
  Certificate,
  CertificateVersion,
  Deployment,
  DeploymentState,
  Endpoint,
  Subscription,
} from '../core/types.ts';
import type { Actor, ProbeResultRecord, RedeployRequest } from './store.ts';

export type StoreEvent =
  /** A version was committed and made current; its subscribers' deployments were created as `pending`. */
  | {
      kind: 'version.added';
      certificate: Pick<Certificate, 'id' | 'name'>;
      version: CertificateVersion;
      actor: Actor;
    }
  /** One per transition, batched ones included (`transitionDeployments`), in the order they were applied. */
  | { kind: 'deployment.transitioned'; deployment: Deployment; from: DeploymentState | null; actor: Actor }
  /** `subscription` is absent on deletion (also when deleting an endpoint or certificate removed it). */
  | {
      kind: 'subscription.changed';
      change: 'created' | 'updated' | 'deleted';
      subscriptionId: string;
      endpointId: string;
      certificateId: string;
      subscription?: Subscription;
      actor: Actor;
    }
  | {
      kind: 'endpoint.changed';
      change: 'created' | 'updated' | 'deleted' | 'enrolled';
      endpoint: Pick<Endpoint, 'id' | 'name'>;
      actor: Actor;
    }
  | {
      kind: 'certificate.changed';
      change: 'created' | 'updated' | 'deleted';
      certificate: Pick<Certificate, 'id' | 'name'>;
      actor: Actor;
    }
  | { kind: 'redeploy.requested'; request: RedeployRequest; actor: Actor }
  /**
   * Probe results of one endpoint were saved, whoever probed (the hub's probes; agent-side reports use the same
   * event). Public material only: fingerprints, dates, errors.
   */
  | { kind: 'probe.recorded'; endpointId: string; results: readonly ProbeResultRecord[] }
  /** A renewal attempt failed and was recorded (renewal state `failures` is now `failures`). */
  | { kind: 'renewal.failed'; certificate: Pick<Certificate, 'id' | 'name'>; failures: number; actor: Actor }
  /** An emergency campaign started or finished (its progress moves with versions and deployments). */
  | {
      kind: 'campaign.changed';
      change: 'started' | 'finished' | 'cancelled';
      campaignId: string;
      actor: Actor;
    }
  /**
   * The desired-state revision is now `revision` (agents long-poll on it). `scope` names what the change touched,
   * so only the agents it concerns wake; without it (a resync, an older hub) it may concern every endpoint.
   */
  | { kind: 'revision.bumped'; revision: number; scope?: RevisionScope }
  /**
   * Other hubs' events may have been missed (PostgreSQL: the listening connection was lost and is back): drop
   * whatever was cached from events and read the store again. Followed by a `revision.bumped` with the revision.
   */
  | { kind: 'store.resynced' };

/** The desired states a revision bump may change: those of these endpoints, and of these certificates' subscribers. */
export interface RevisionScope {
  certificateIds?: readonly string[];
  endpointIds?: readonly string[];
}

/** Whether an event was committed through this store object or relayed from another hub (LISTEN/NOTIFY). */
export type EventOrigin = 'local' | 'remote';

export type StoreEventKind = StoreEvent['kind'];
export type StoreEventOf<K extends StoreEventKind> = Extract<StoreEvent, { kind: K }>;

/**
 * Subscribing side of the stream (`store.events`). Contract:
 * - Events are emitted only after the transaction that made the change committed, in commit order, synchronously
 *   right after the commit (before the mutating call returns to its caller). A rolled-back write emits nothing.
 * - On SQLite only changes made through this store object are seen. On PostgreSQL other hubs' commits arrive too
 *   (origin 'remote', relayed by LISTEN/NOTIFY, src/store/postgres/event-relay.ts), shortly after they committed
 *   and in each hub's commit order; when the relay lost some, a `store.resynced` says so.
 * - One commit's events come in the order the transaction made the changes (a bump of the revision included).
 * - Listeners run synchronously and must neither throw nor block: start async work and return. A listener that
 *   throws is caught and logged; it never fails the write nor stops the other listeners. Payloads are shared
 *   between listeners and with the caller: read them, never change them.
 * - `on`/`onAny` return an unsubscribe function. Subscribing at any time sees every later commit.
 */
export interface StoreEventStream {
  on<K extends StoreEventKind>(
    kind: K,
    listener: (event: StoreEventOf<K>, origin: EventOrigin) => void,
  ): () => void;
  /** Every event (dashboard live updates, caches). */
  onAny(listener: (event: StoreEvent, origin: EventOrigin) => void): () => void;
}

type Listener = (event: StoreEvent, origin: EventOrigin) => void;

/**
 * The emitting side, owned by a store implementation. Commit order is kept with tickets: a store takes one inside
 * the transaction right before committing (transactions on one connection reach that point in commit order) and
 * publishes the ticket's events after the commit; an earlier ticket still in flight holds later ones back.
 */
export class StoreEventEmitter implements StoreEventStream {
  private readonly byKind = new Map<StoreEventKind | '*', Set<Listener>>();
  private nextTicket = 0;
  private nextToEmit = 0;
  private readonly ready = new Map<number, readonly StoreEvent[]>();

  /** `logger` is called only when a listener throws (so a store made without one creates a logger lazily). */
  constructor(private readonly logger: () => Logger) {}

  on<K extends StoreEventKind>(
    kind: K,
    listener: (event: StoreEventOf<K>, origin: EventOrigin) => void,
  ): () => void {
    return this.add(kind, listener as Listener);
  }

  onAny(listener: (event: StoreEvent, origin: EventOrigin) => void): () => void {
    return this.add('*', listener);
  }

  /** Called inside a transaction after its last statement, right before the commit. */
  ticket(): number {
    return this.nextTicket++;
  }

  /** After the commit (or with `[]` after a rollback that came after `ticket()`): emits in ticket order. */
  publish(ticket: number, events: readonly StoreEvent[]): void {
    this.ready.set(ticket, events);
    while (this.ready.has(this.nextToEmit)) {
      const batch = this.ready.get(this.nextToEmit)!;
      this.ready.delete(this.nextToEmit++);
      for (const event of batch) this.emit(event, 'local');
    }
  }

  /** Another hub's committed events (relayed over LISTEN/NOTIFY), in its commit order; they take no ticket. */
  deliver(events: readonly StoreEvent[]): void {
    for (const event of events) this.emit(event, 'remote');
  }

  private add(key: StoreEventKind | '*', listener: Listener): () => void {
    let set = this.byKind.get(key);
    if (!set) this.byKind.set(key, (set = new Set()));
    set.add(listener);
    return () => void set.delete(listener);
  }

  private emit(event: StoreEvent, origin: EventOrigin): void {
    for (const key of [event.kind, '*'] as const) {
      const set = this.byKind.get(key);
      if (!set) continue;
      for (const listener of [...set]) {
        try {
          listener(event, origin);
        } catch (e) {
          // A subscriber's bug must not fail (or half-report) the write that is already committed.
          this.logger().error(
            { event_kind: event.kind, err_message: e instanceof Error ? e.message : String(e) },
            'store event listener failed',
          );
        }
      }
    }
  }
}
