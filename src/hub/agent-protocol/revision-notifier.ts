import type { HubContext } from '../hub-context.ts';
import type { Store } from '../../store/store.ts';

/** Store methods that bump the desired-state revision (see the Store contract). */
const BUMPING = new Set<string | symbol>([
  'addVersion',
  'commitRenewal',
  'upsertSubscription',
  'deleteSubscription',
  'deleteEndpoint',
  'deleteCertificate',
  'updateCertificate',
  'requestRedeploy',
]);

/**
 * Wakes long-polling agents when the desired-state revision increases. Bumps made through this hub's store are seen
 * at once (the store is wrapped); bumps made elsewhere (another hub on the same PostgreSQL, a CLI on the same
 * SQLite file) are caught by a poll of `store.revision()` that runs only while agents wait.
 *
 * `current` never exceeds the stored revision, so a waiter is only woken when there is something newer than its
 * `since`; callers read the store first and only wait when it holds nothing new.
 */
export class RevisionNotifier {
  private current = 0;
  private readonly waiters = new Set<(rev: number) => void>();
  private timer?: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly read: () => Promise<number>,
    private readonly pollMs = 1000,
  ) {}

  /** Re-reads the revision and wakes waiters when it went up. */
  async check(): Promise<number> {
    const rev = await this.read();
    if (rev > this.current) {
      this.current = rev;
      for (const wake of [...this.waiters]) wake(rev);
    }
    return rev;
  }

  /** Resolves with the known revision once it exceeds `since`, or when `timeoutMs` passes, `signal` aborts or
   * the notifier closes (then with the last known revision, which may still be ≤ since). */
  wait(since: number, timeoutMs: number, signal?: AbortSignal): Promise<number> {
    if (this.current > since || this.closed || signal?.aborted) return Promise.resolve(this.current);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timeout);
        signal?.removeEventListener('abort', done);
        this.waiters.delete(wake);
        if (this.waiters.size === 0) this.stopPolling();
        resolve(this.current);
      };
      const wake = (rev: number) => {
        if (rev > since) done();
      };
      const timeout = setTimeout(done, timeoutMs);
      signal?.addEventListener('abort', done, { once: true });
      this.waiters.add(wake);
      this.startPolling();
    });
  }

  get waiting(): number {
    return this.waiters.size;
  }

  /** Releases every waiter (hub shutdown), so open long-polls answer instead of holding the server open. */
  close(): void {
    this.closed = true;
    this.stopPolling();
    for (const wake of [...this.waiters]) wake(Number.POSITIVE_INFINITY);
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

const notifiers = new WeakMap<HubContext, RevisionNotifier>();

/**
 * Wraps `ctx.store` so revision bumps made through it notify at once, and returns the context's notifier. Call at
 * the composition root before anything captures `ctx.store`; idempotent.
 */
export function attachRevisionNotifier(ctx: HubContext, pollMs?: number): RevisionNotifier {
  const existing = notifiers.get(ctx);
  if (existing) return existing;
  const store = ctx.store;
  const notifier = new RevisionNotifier(() => store.revision(), pollMs);
  ctx.store = new Proxy(store, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      if (!BUMPING.has(prop)) return value.bind(target);
      return async (...args: unknown[]) => {
        const result = await (value as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        void notifier.check().catch(() => {});
        return result;
      };
    },
  }) as Store;
  notifiers.set(ctx, notifier);
  return notifier;
}

export const revisionNotifierOf = (ctx: HubContext): RevisionNotifier | undefined => notifiers.get(ctx);
