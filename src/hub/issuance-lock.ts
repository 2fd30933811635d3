/**
 * One issuance per certificate at a time. Triggers arrive from many places (the planner tick, an API "renew now",
 * a SANs edit, an ARI poll): concurrent calls for the same certificate share ONE in-flight attempt and all get its
 * outcome. The attempt first takes the (optional) distributed lock, then asks again whether issuance is still
 * needed (certmagic: "might have been obtained during lock"), and only then issues.
 *
 * In-process only by itself. Across hubs (HA on PostgreSQL), pass a DistributedLock, e.g. one built on the HA
 * store's advisory lock / lease table: the coalescer then wraps it, so N local triggers cost one lock round trip,
 * and a second hub that waited for the lock re-checks and skips what the first hub already issued.
 */
import { CertfleetError } from '../core/errors.ts';

/** Gives a lock back. Idempotent; may reject (the lease then simply expires). */
export type Release = () => Promise<void>;

/**
 * A lock shared by all hubs. Contract:
 * - `tryAcquire` tries ONCE and does not wait: it resolves to a Release when this caller now holds `key`, or to
 *   undefined when someone else holds it.
 * - The hold is a lease of `ttlMs`: if the holder crashes, the lock frees itself after that. A holder must finish
 *   within the lease (pick ttlMs above the longest issuance; an implementation may renew the lease itself).
 * - Keys are opaque strings; the coalescer uses `issuance/<certificate id>`.
 */
export interface DistributedLock {
  tryAcquire(key: string, ttlMs: number): Promise<Release | undefined>;
}

export interface IssuanceOutcome<T> {
  /** True when issue() ran and succeeded; false when no issuance was needed any more. */
  issued: boolean;
  result?: T;
}

export interface CoalescerOptions {
  lock?: DistributedLock;
  /** Lease asked of the distributed lock (default 10 min: an ACME order with DNS propagation fits well inside). */
  lockTtlMs?: number;
  /** How often to try again while another hub holds the lock (default 2 s). */
  lockPollMs?: number;
  /** Give up waiting for another hub after this long (default: one lease plus one poll). */
  lockWaitMs?: number;
  /** Stops waiting for the distributed lock, e.g. on hub shutdown. */
  signal?: AbortSignal;
  /** Told about a failed release (never thrown: it must not hide the issuance's own outcome). */
  onReleaseError?: (error: unknown, key: string) => void;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

export class IssuanceCoalescer {
  private readonly inflight = new Map<string, Promise<IssuanceOutcome<unknown>>>();
  private readonly lockTtlMs: number;
  private readonly lockPollMs: number;
  private readonly lockWaitMs: number;

  constructor(private readonly opts: CoalescerOptions = {}) {
    this.lockTtlMs = opts.lockTtlMs ?? 10 * 60_000;
    this.lockPollMs = opts.lockPollMs ?? 2_000;
    this.lockWaitMs = opts.lockWaitMs ?? this.lockTtlMs + this.lockPollMs;
  }

  /** Whether an attempt for this certificate is under way in this process. */
  isInFlight(certificateId: string): boolean {
    return this.inflight.has(certificateId);
  }

  /**
   * Issue `certificateId` unless an attempt is already in flight, in which case wait for that one. Every caller
   * of the same attempt gets the same outcome, or the same error; after it settles, the next call starts afresh.
   * Calls that join an attempt get ITS result: pass the same kind of `issue` for the same certificate.
   * `signal` only stops this caller's waiting; the shared attempt goes on for the others.
   */
  run<T>(
    certificateId: string,
    needsIssuance: () => Promise<boolean>,
    issue: () => Promise<T>,
    opts: { signal?: AbortSignal } = {},
  ): Promise<IssuanceOutcome<T>> {
    let attempt = this.inflight.get(certificateId) as Promise<IssuanceOutcome<T>> | undefined;
    if (!attempt) {
      // Registered before any user code runs, so a trigger fired from inside needsIssuance() joins too.
      attempt = Promise.resolve()
        .then(() => this.attempt(certificateId, needsIssuance, issue))
        .finally(() => this.inflight.delete(certificateId));
      this.inflight.set(certificateId, attempt);
    }
    return opts.signal ? detachable(attempt, opts.signal) : attempt;
  }

  private async attempt<T>(
    certificateId: string,
    needsIssuance: () => Promise<boolean>,
    issue: () => Promise<T>,
  ): Promise<IssuanceOutcome<T>> {
    const key = `issuance/${certificateId}`;
    const release = this.opts.lock ? await this.acquire(key) : undefined;
    try {
      if (!(await needsIssuance())) return { issued: false };
      return { issued: true, result: await issue() };
    } finally {
      if (release) {
        try {
          await release();
        } catch (e) {
          this.opts.onReleaseError?.(e, key);
        }
      }
    }
  }

  private async acquire(key: string): Promise<Release> {
    const lock = this.opts.lock!;
    const deadline = Date.now() + this.lockWaitMs;
    for (;;) {
      this.opts.signal?.throwIfAborted();
      const release = await lock.tryAcquire(key, this.lockTtlMs);
      if (release) return release;
      if (Date.now() + this.lockPollMs > deadline)
        throw new CertfleetError(
          'CONFLICT',
          `Another hub has been holding the issuance lock ${key} for over ${Math.round(this.lockWaitMs / 1000)} s.`,
          `Retry later; if no other hub is running, the lock's lease expires by itself within ${Math.round(this.lockTtlMs / 1000)} s.`,
        );
      await sleep(this.lockPollMs, this.opts.signal);
    }
  }
}

/** Resolve/reject with `p`, or reject when `signal` aborts first (without cancelling `p`). */
function detachable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
