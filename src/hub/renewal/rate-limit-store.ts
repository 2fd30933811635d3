/**
 * The rate-limit budget of each ACME directory, kept in memory and persisted in store meta. An order is counted
 * in memory the moment it ends (the CA counted it, whatever happens to our commit), and the budget is written in
 * the same transaction as the issuance that spent it (`spend` returns that meta write), merged with the stored
 * value there. Every read (`budgetFor`) merges in what the store holds, so the budget is one across the hubs of a
 * cluster (a new leader starts from what the old one spent).
 */
import { CertfleetError, errorMessage } from '../../core/errors.ts';
import type { Certificate } from '../../core/types.ts';
import type { RenewalCommit } from '../../store/store.ts';
import type { AcmeRuntime } from '../acme/acme-runtime.ts';
import type { HubContext } from '../hub-context.ts';
import { NO_LIMITS, RateLimitBudget, type BudgetConfig, type IssuanceRequest } from '../planner/index.ts';
import { budgetMetaKey } from '../../store/meta-catalogue.ts';

export class RateLimitStore {
  private readonly budgets = new Map<string, Promise<RateLimitBudget>>();
  private readonly unlimited = new RateLimitBudget(NO_LIMITS, { account: 'internal' });
  private readonly held = new Map<RateLimitBudget, Set<IssuanceRequest>>();
  /**
   * The stored text last merged into (or written from) each budget. The stored budget grows with the fleet (one
   * entry per exact set of names), and absorbing it again is idempotent: when the store still holds what this hub
   * saw last, nobody else spent anything, so the parse and merge are skipped.
   */
  private readonly seen = new WeakMap<RateLimitBudget, string>();

  constructor(
    private readonly ctx: HubContext,
    private readonly acme?: AcmeRuntime,
  ) {}

  /** The budget of the directory a certificate's issuer talks to; the internal CA has no limits. */
  budgetFor(cert: Pick<Certificate, 'issuer'>): Promise<RateLimitBudget> {
    const entry = this.acme?.entries.get(cert.issuer);
    if (!entry) return Promise.resolve(this.unlimited);
    const url = entry.config.directoryUrl;
    let b = this.budgets.get(url);
    if (!b) {
      b = this.load(url, entry.budget);
      this.budgets.set(url, b);
      return b;
    }
    return b.then((budget) => this.refresh(url, budget));
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
      view = budget.clone();
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
   * Counts an order that ended now, and returns the meta write that persists the budget (none for the internal
   * CA). The value is computed when the commit runs, so it holds every order counted until then.
   */
  async spend(
    cert: Pick<Certificate, 'issuer'>,
    request: IssuanceRequest,
    outcome: 'issued' | 'failed',
  ): Promise<NonNullable<RenewalCommit['meta']>> {
    const budget = await this.budgetFor(cert);
    budget.record(request, this.ctx.clock.now(), outcome);
    const entry = this.acme?.entries.get(cert.issuer);
    if (!entry) return [];
    const url = entry.config.directoryUrl;
    return [
      {
        key: budgetMetaKey(url),
        // what other hubs spent meanwhile is in the stored value: keep it, with ours, in the same transaction
        value: (stored) => {
          this.absorb(url, budget, stored);
          const text = JSON.stringify(budget.toJSON());
          this.seen.set(budget, text);
          return text;
        },
      },
    ];
  }

  /** Reads what other hubs counted since (a planner run, a reservation) into the cached budget. */
  private async refresh(url: string, budget: RateLimitBudget): Promise<RateLimitBudget> {
    this.absorb(url, budget, await this.ctx.store.getMeta(budgetMetaKey(url)));
    return budget;
  }

  private absorb(url: string, budget: RateLimitBudget, stored: string | undefined): void {
    if (!stored || this.seen.get(budget) === stored) return;
    try {
      budget.absorb(RateLimitBudget.fromJSON(JSON.parse(stored), budget.config));
      this.seen.set(budget, stored);
    } catch (e) {
      this.ctx.logger.warn({ directory: url, err: errorMessage(e) }, 'stored rate-limit budget unreadable');
    }
  }

  private async load(url: string, config: BudgetConfig): Promise<RateLimitBudget> {
    const raw = await this.ctx.store.getMeta(budgetMetaKey(url));
    if (!raw) return new RateLimitBudget(config);
    try {
      const budget = RateLimitBudget.fromJSON(JSON.parse(raw), config);
      this.seen.set(budget, raw);
      return budget;
    } catch (e) {
      this.ctx.logger.warn({ directory: url, err: errorMessage(e) }, 'stored rate-limit budget unreadable');
      return new RateLimitBudget(config);
    }
  }
}
