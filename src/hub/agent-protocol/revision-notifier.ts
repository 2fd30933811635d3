import type { RevisionScope } from '../../store/store-events.ts';
import type { Store } from '../../store/store.ts';
import { setBounded } from '../../core/bounded-map.ts';

/**
 * What an agent's desired state depends on: its endpoint, and the certificates it subscribes to (a list: a parked
 * agent holds its interest for the whole long-poll, and a Set costs ten times the memory of one or two ids).
 */
export interface RevisionInterest {
  endpointId: string;
  certificateIds: readonly string[];
}

/** What changed over a range of revisions: the certificates and endpoints named by their bumps. */
export interface RevisionChanges {
  certificateIds: Set<string>;
  endpointIds: Set<string>;
}

interface Waiter {
  interest?: RevisionInterest;
  wake: () => void;
}

/** Bumps remembered for `changesBetween` (a desired-state cache that falls further behind is simply dropped). */
const LOG_SIZE = 4096;

/**
 * Wakes long-polling agents when the desired-state revision increases in a way that concerns them. Bumps made
 * through this hub's store are seen at once with their scope (its `revision.bumped` events, see `forStore`), so a
 * new version wakes the agents subscribed to that certificate only, not the whole fleet (an emergency campaign
 * of N certificates would otherwise wake N agents N times). Bumps made elsewhere (another hub on the same
 * PostgreSQL without scope, a CLI on the same SQLite file) are caught by a poll of `store.revision()` that runs
 * only while agents wait, and concern everyone, as does whatever happened before this notifier first looked.
 *
 * `current` never exceeds the stored revision, so a waiter is only woken when there is something newer than its
 * `since`; callers ask `hasNews` first and only wait when there is nothing new for them.
 */
export class RevisionNotifier {
  private current = 0;
  /** The newest revision whose change may concern every endpoint. */
  private everyone = 0;
  private readonly byCertificate = new Map<string, number>();
  private readonly byEndpoint = new Map<string, number>();
  /** Recent bumps by revision (undefined scope: everyone), for desired-state caches. */
  private readonly log = new Map<number, RevisionScope | undefined>();
  private first?: Promise<unknown>;
  private readonly waiters = new Set<Waiter>();
  /** Waiters by what they are interested in, so a scoped bump looks at its own agents only. */
  private readonly waitersByCertificate = new Map<string, Set<Waiter>>();
  private readonly waitersByEndpoint = new Map<string, Set<Waiter>>();
  /** Waiters without an interest: every bump is theirs. */
  private readonly waitersOfAll = new Set<Waiter>();
  private timer?: NodeJS.Timeout;
  private closed = false;
  private unsubscribe?: () => void;

  constructor(
    private readonly read: () => Promise<number>,
    private readonly pollMs = 1000,
  ) {}

  /** A notifier over `store`: woken by its post-commit `revision.bumped` events; `close()` unsubscribes. */
  static forStore(store: Store, pollMs?: number): RevisionNotifier {
    const notifier = new RevisionNotifier(() => store.revision(), pollMs);
    notifier.unsubscribe = store.events.on('revision.bumped', (e) => notifier.advance(e.revision, e.scope));
    return notifier;
  }

  /**
   * Re-reads the revision; one the events did not explain (a change made elsewhere) concerns everyone. Judged a
   * turn of the event loop later, so a local commit whose event is about to be published is not mistaken for one.
   */
  async check(): Promise<number> {
    const rev = await this.read();
    if (rev > this.current) await new Promise((r) => setImmediate(r));
    this.advance(rev);
    return rev;
  }

  /** A committed revision is now `rev`, touching `scope` (absent: everyone): wakes the waiters it is news to. */
  advance(rev: number, scope?: RevisionScope): void {
    if (scope) {
      for (const id of scope.certificateIds ?? []) this.byCertificate.set(id, rev);
      for (const id of scope.endpointIds ?? []) this.byEndpoint.set(id, rev);
    } else if (rev > this.everyone) {
      this.everyone = rev;
      this.byCertificate.clear(); // older than `everyone`: they say nothing more
      this.byEndpoint.clear();
    }
    if (rev <= this.current) return;
    setBounded(this.log, LOG_SIZE, rev, scope);
    this.current = rev;
    for (const w of this.waitersTouchedBy(scope)) w.wake();
  }

  private waitersTouchedBy(scope?: RevisionScope): Waiter[] {
    if (!scope) return [...this.waiters];
    const out = new Set(this.waitersOfAll);
    for (const id of scope.certificateIds ?? [])
      for (const w of this.waitersByCertificate.get(id) ?? []) out.add(w);
    for (const id of scope.endpointIds ?? [])
      for (const w of this.waitersByEndpoint.get(id) ?? []) out.add(w);
    return [...out];
  }

  private index(w: Waiter, add: boolean): void {
    const put = (map: Map<string, Set<Waiter>>, key: string) => {
      let set = map.get(key);
      if (add) map.set(key, (set ??= new Set()).add(w));
      else if (set?.delete(w) && set.size === 0) map.delete(key);
    };
    if (add) this.waiters.add(w);
    else this.waiters.delete(w);
    if (!w.interest) {
      if (add) this.waitersOfAll.add(w);
      else this.waitersOfAll.delete(w);
      return;
    }
    put(this.waitersByEndpoint, w.interest.endpointId);
    for (const id of w.interest.certificateIds) put(this.waitersByCertificate, id);
  }

  /** Whether anything after `since` concerns `interest` (without one: anything at all). */
  async hasNews(since: number, interest?: RevisionInterest): Promise<boolean> {
    this.first ??= this.check().catch(() => (this.first = undefined));
    await this.first;
    return this.concerns(since, interest);
  }

  /**
   * What changed after revision `from` up to `to`, when every bump in between was seen with its scope; undefined
   * when one was not (made elsewhere, before this notifier looked, or not published yet): then anything may have.
   */
  changesBetween(from: number, to: number): RevisionChanges | undefined {
    if (from < 0 || to - from > LOG_SIZE) return undefined;
    const out: RevisionChanges = { certificateIds: new Set(), endpointIds: new Set() };
    for (let r = from + 1; r <= to; r++) {
      const scope = this.log.get(r);
      if (!scope) return undefined;
      for (const id of scope.certificateIds ?? []) out.certificateIds.add(id);
      for (const id of scope.endpointIds ?? []) out.endpointIds.add(id);
    }
    return out;
  }

  private concerns(since: number, interest?: RevisionInterest): boolean {
    if (!interest) return this.current > since;
    if (this.everyone > since || (this.byEndpoint.get(interest.endpointId) ?? 0) > since) return true;
    for (const id of interest.certificateIds) if ((this.byCertificate.get(id) ?? 0) > since) return true;
    return false;
  }

  /**
   * Resolves with the known revision once something after `since` concerns `interest` (without one: any bump), or
   * when `timeoutMs` passes, `signal` aborts or the notifier closes (then with the last known revision).
   */
  wait(since: number, timeoutMs: number, signal?: AbortSignal, interest?: RevisionInterest): Promise<number> {
    if (this.concerns(since, interest) || this.closed || signal?.aborted)
      return Promise.resolve(this.current);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timeout);
        signal?.removeEventListener('abort', done);
        this.index(waiter, false);
        if (this.waiters.size === 0) this.stopPolling();
        resolve(this.current);
      };
      const waiter: Waiter = {
        ...(interest ? { interest } : {}),
        wake: () => {
          if (this.closed || this.concerns(since, interest)) done();
        },
      };
      const timeout = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      this.index(waiter, true);
      this.startPolling();
    });
  }

  get waiting(): number {
    return this.waiters.size;
  }

  /** Releases every waiter (hub shutdown), so open long-polls answer instead of holding the server open. */
  close(): void {
    this.closed = true;
    this.unsubscribe?.();
    this.stopPolling();
    for (const w of [...this.waiters]) w.wake();
  }

  private startPolling(): void {
    if (this.timer || this.closed) return;
    this.timer = setInterval(() => void this.check().catch(() => {}), this.pollMs);
    this.timer.unref();
  }

  private stopPolling(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
