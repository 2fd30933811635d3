/**
 * The rate-limit budget of each ACME directory, kept in memory and stored as one row per counted order. An order
 * is counted in memory the moment it ends (the CA counted it, whatever happens to our commit), and its row is
 * written in the same transaction as the issuance that spent it (`spend` returns it for the commit). Every read
 * (`budgetFor`) first takes in the rows committed since the last read, so the budget is one across the hubs of a
 * cluster (a new leader starts from what the old one spent). An issuance costs one row, whatever the budget holds.
 */
import { CertfleetError, errorMessage } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { Certificate } from '../../core/types.ts';
import type { RateLimitOrder, StoredRateLimitOrder } from '../../store/store.ts';
import type { GenerationStamp } from '../../store/write-generation.ts';
import type { AcmeRuntime } from '../acme/acme-runtime.ts';
import type { HubContext } from '../hub-context.ts';
import { NO_LIMITS, RateLimitBudget, type CountedOrder, type IssuanceRequest } from '../planner/index.ts';
import { MINUTE_MS } from '../planner/time-format.ts';

/** Rows out of every window are deleted at most this often (by whichever hub reads a budget then). */
const PRUNE_EVERY_MS = 10 * MINUTE_MS;

interface Tracked {
  budget: RateLimitBudget;
  /** The last stored order read into the budget. */
  seq: number;
  /** The store's write generation of the orders table before the last read (see `read`). */
  readAt?: GenerationStamp;
  /** Reads one after another, so no row is counted twice. */
  reads: Promise<unknown>;
}

export class RateLimitStore {
  private readonly budgets = new Map<string, Tracked>();
  private readonly unlimited = new RateLimitBudget(NO_LIMITS, { account: 'internal' });
  private readonly held = new Map<RateLimitBudget, Set<IssuanceRequest>>();
  /** Marks this process's rows: they are in memory from `spend` on, and are skipped when read back. */
  private readonly hub = newId();
  /** The first prune comes PRUNE_EVERY_MS after start: a hub restarting often leaves it to the others. */
  private prunedAt: number;

  constructor(
    private readonly ctx: HubContext,
    private readonly acme?: AcmeRuntime,
  ) {
    this.prunedAt = ctx.clock.now().getTime();
  }

  /** The budget of the directory a certificate's issuer talks to; the internal CA has no limits. */
  async budgetFor(cert: Pick<Certificate, 'issuer'>): Promise<RateLimitBudget> {
    const entry = this.acme?.entries.get(cert.issuer);
    if (!entry) return this.unlimited;
    const url = entry.config.directoryUrl;
    let t = this.budgets.get(url);
    if (!t) {
      t = { budget: new RateLimitBudget(entry.budget), seq: 0, reads: Promise.resolve() };
      this.budgets.set(url, t);
    }
    await this.read(url, t);
    return t.budget;
  }

  /**
   * Holds room for an order about to be placed, or refuses it (RATE_LIMITED, with when it frees). Orders held and
   * not yet counted are checked too, so concurrent requests cannot overshoot a limit together. Call the returned
   * release once the order has been counted (`spend`) or was never placed.
   */
  async reserve(cert: Pick<Certificate, 'issuer'>, request: IssuanceRequest): Promise<() => void> {
    const budget = await this.budgetFor(cert);
    if (Object.values(budget.config.limits).every((l) => !l)) return () => {};
    const now = this.ctx.clock.now();
    const held = this.held.get(budget) ?? new Set<IssuanceRequest>();
    let view = budget;
    if (held.size) {
      view = budget.whatIf();
      for (const r of held) view.record(r, now);
    }
    const check = view.canIssue(request, now);
    if (!check.ok)
      throw new CertfleetError(
        'RATE_LIMITED',
        check.message,
        'wait until the limit frees, or raise it in rateLimits',
      );
    held.add(request);
    this.held.set(budget, held);
    return () => held.delete(request);
  }

  /**
   * Counts an order that ended now, and returns its row for the commit that records the attempt (`rateLimitOrders`
   * of RenewalCommit, or `Store.addRateLimitOrders`); none for a CA without limits.
   */
  async spend(
    cert: Pick<Certificate, 'issuer'>,
    request: IssuanceRequest,
    outcome: 'issued' | 'failed',
  ): Promise<RateLimitOrder[]> {
    const budget = await this.budgetFor(cert);
    const order = budget.record(request, this.ctx.clock.now(), outcome);
    const entry = this.acme?.entries.get(cert.issuer);
    if (!entry || !order) return [];
    return [
      {
        directory: entry.config.directoryUrl,
        hub: this.hub,
        at: new Date(order.at).toISOString(),
        outcome: order.outcome,
        windows: order.windows,
        ...(order.issuedSet !== undefined ? { issuedSet: order.issuedSet } : {}),
        ...(order.replaces !== undefined ? { replaces: order.replaces } : {}),
        keepUntil: new Date(order.keepUntil).toISOString(),
      },
    ];
  }

  /**
   * Takes in the rows committed since the last read (all of them the first time: a start, a new leader). Skipped
   * when no order was committed since: only where the store's write generation sees every commit the moment it is
   * made (SQLite, other processes on the file included); on PostgreSQL another hub's order is seen only by reading.
   */
  private read(url: string, t: Tracked): Promise<void> {
    const next = t.reads.then(async () => {
      const { generation } = this.ctx.store;
      const unchanged = generation.seesEveryCommit && t.readAt && generation.isFresh(t.readAt);
      if (unchanged) return this.prune(t.budget);
      const stamp = generation.stamp(['rate_limit_orders']);
      for (const row of await this.ctx.store.rateLimitOrdersAfter(url, t.seq)) {
        if (row.seq <= t.seq) continue;
        t.seq = row.seq;
        if (row.hub !== this.hub) t.budget.count(countedOrderOf(row));
      }
      t.readAt = stamp;
      await this.prune(t.budget);
    });
    t.reads = next.catch(() => {});
    return next;
  }

  /** Deletes the rows out of every window, every PRUNE_EVERY_MS at most; a failure waits for the next time. */
  private async prune(budget: RateLimitBudget): Promise<void> {
    const now = this.ctx.clock.now();
    if (now.getTime() - this.prunedAt < PRUNE_EVERY_MS) return;
    this.prunedAt = now.getTime();
    budget.prune(now.getTime());
    try {
      await this.ctx.store.pruneRateLimitOrders(now.toISOString());
    } catch (e) {
      this.ctx.logger.warn({ err: errorMessage(e) }, 'pruning stored rate-limit orders failed');
    }
  }
}

const countedOrderOf = (row: StoredRateLimitOrder): CountedOrder => ({
  at: Date.parse(row.at),
  outcome: row.outcome,
  windows: row.windows,
  ...(row.issuedSet !== undefined ? { issuedSet: row.issuedSet } : {}),
  ...(row.replaces !== undefined ? { replaces: row.replaces } : {}),
  keepUntil: Date.parse(row.keepUntil),
});
