import { errorMessage } from '../core/errors.ts';
import type { Certificate } from '../core/types.ts';
import { evaluateRenewal, RateLimitBudget, type CanIssueResult, type Decision } from './planner/index.ts';
import { META } from '../store/meta-catalogue.ts';
import type { RenewalService } from './renewal/renewal-service.ts';
import { storeChange, withDeferred, type RenewalState } from './renewal/renewal-state.ts';

export interface PlannerRunReport {
  at: string;
  evaluated: number;
  issued: string[];
  deferred: Array<{ certificate: string; limit: string; freesAt: string }>;
  failed: Array<{ certificate: string; error: string }>;
  /** The earliest instant a certificate held back by a failure's backoff or a rate limit may be tried again. */
  retryAt?: string;
}

/** A retry wake-up comes at least this long after a pass (a backoff that already ended must not spin the loop). */
const MIN_RETRY_WAKE_MS = 1000;

export interface PlannerServiceOptions {
  intervalMs: number;
  /** How many certificates are issued at once in one run. */
  concurrency?: number;
}

/**
 * The renewal loop: every interval, each certificate's plan input (with ARI) goes through evaluateRenewal; due
 * issuance is checked against the rate-limit budget and then issued through the RenewalService (coalesced, with
 * a re-check after the lock). Decisions use the injected clock; scheduling uses real timers. `runOnce` is the
 * whole of one tick, for tests and for `certfleet plan --run`.
 */
export class PlannerService {
  private timer?: NodeJS.Timeout;
  /** When the timer fires (real time, ms). */
  private timerAt?: number;
  private running?: Promise<PlannerRunReport>;
  /** Renewed on every start: a hub that loses and regains leadership runs the loop again. */
  private abort = new AbortController();
  private stopped = true;
  private rerun = false;

  constructor(
    private readonly renewal: RenewalService,
    private readonly opts: PlannerServiceOptions,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    if (this.abort.signal.aborted) this.abort = new AbortController();
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.abort.abort(new Error('planner stopped'));
    await this.running?.catch(() => undefined);
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    clearTimeout(this.timer);
    this.timerAt = Date.now() + ms;
    this.timer = setTimeout(() => {
      this.timer = this.timerAt = undefined;
      this.runOnce()
        .catch((e) => this.renewal.ctx.logger.error({ err: errorMessage(e) }, 'planner run failed'))
        // the pass may have asked for an earlier retry (retryAfter); else the next pass is an interval away
        .finally(() => this.timer || this.schedule(this.opts.intervalMs));
    }, ms);
    this.timer.unref();
  }

  /**
   * A failed order's backoff (or a rate limit) ends before the next pass: run one then, so a transient failure
   * (an emergency campaign's certificate, an urgent renewal) is retried after its backoff, not an interval later.
   */
  private retryAfter(report: PlannerRunReport): void {
    if (this.stopped || !report.retryAt) return;
    const ms = Math.max(
      MIN_RETRY_WAKE_MS,
      Date.parse(report.retryAt) - this.renewal.ctx.clock.now().getTime(),
    );
    if (ms >= this.opts.intervalMs) return;
    if (this.timerAt !== undefined && this.timerAt <= Date.now() + ms) return;
    this.schedule(ms);
  }

  /**
   * One planner pass over every certificate, or only over `certs` (the rehearsal's simulated loop passes the
   * certificates due at that instant, so a simulated year need not read the whole fleet every minute).
   * Overlapping calls share the run in progress.
   */
  runOnce(certs?: Certificate[]): Promise<PlannerRunReport> {
    this.running ??= this.pass(certs)
      .then((report) => {
        this.retryAfter(report);
        return report;
      })
      .finally(() => {
        this.running = undefined;
        if (this.rerun && !this.stopped) {
          this.rerun = false;
          this.requestRun();
        }
      });
    return this.running;
  }

  /**
   * A pass as soon as possible (an emergency campaign just marked certificates due): now, or right after the pass
   * in progress, which may have read the fleet before the change. Only where the loop runs (the leader): another
   * hub's planner is stopped and leaves the work to the leader, which hears of the campaign through the store events.
   */
  requestRun(): void {
    if (this.stopped) return;
    if (this.running) this.rerun = true;
    else
      void this.runOnce().catch((e) =>
        this.renewal.ctx.logger.error({ err: errorMessage(e) }, 'planner run failed'),
      );
  }

  private async pass(only?: Certificate[]): Promise<PlannerRunReport> {
    const { ctx } = this.renewal;
    const report: PlannerRunReport = {
      at: ctx.clock.now().toISOString(),
      evaluated: 0,
      issued: [],
      deferred: [],
      failed: [],
    };
    const certs = only ?? (await ctx.store.listCertificates());
    const workers = Math.max(1, this.opts.concurrency ?? 4);
    // 1. Decide for every certificate (ARI fetches run in parallel).
    const evaluated = (
      await mapLimit(certs, workers, async (cert) => {
        try {
          return { cert, ...(await this.evaluate(cert)) };
        } catch (e) {
          if (!this.abort.signal.aborted)
            report.failed.push({ certificate: cert.name, error: errorMessage(e) });
          return undefined;
        }
      })
    ).filter((e) => e !== undefined);
    report.evaluated = evaluated.length;
    const retryAt = (at: Date) => {
      if (!report.retryAt || at.toISOString() < report.retryAt) report.retryAt = at.toISOString();
    };
    for (const e of evaluated) if (e.decision.reason === 'BackingOff') retryAt(e.decision.dueAt);
    // 2. Spend the budgets in order (urgent first, then by due time) on scratch copies, so parallel issuance
    //    below cannot overshoot a limit; the real budgets count each order when it ends.
    const due = evaluated
      .filter((e) => e.decision.reissue)
      .sort(
        (a, b) =>
          Number(b.decision.urgent) - Number(a.decision.urgent) ||
          a.decision.dueAt.getTime() - b.decision.dueAt.getTime() ||
          a.cert.name.localeCompare(b.cert.name),
      );
    const scratch = new Map<RateLimitBudget, RateLimitBudget>();
    const go: typeof due = [];
    for (const e of due) {
      const real = await this.renewal.budgetFor(e.cert);
      const budget = scratch.get(real) ?? real.whatIf();
      scratch.set(real, budget);
      const check = budget.canIssue(e.request, e.input.now);
      if (check.ok) {
        budget.record(e.request, e.input.now);
        go.push(e);
      } else {
        await this.defer(e, check, report);
        retryAt(check.freesAt);
      }
    }
    // 3. Issue, coalesced per certificate, re-checked after the lock.
    await mapLimit(go, workers, async (e) => {
      if (this.abort.signal.aborted) return;
      try {
        const outcome = await this.renewal.issue(e.cert, {
          actor: 'planner',
          reason: e.decision.reason,
          signal: this.abort.signal,
          stillNeeded: async () => {
            const again = await this.renewal.planInputFor(e.cert);
            const d = evaluateRenewal(again.input, this.renewal.policy);
            return { needed: d.reissue, request: this.renewal.requestFor(again.input, d, again.current) };
          },
        });
        if (outcome.issued) report.issued.push(e.cert.name);
      } catch (err) {
        report.failed.push({ certificate: e.cert.name, error: errorMessage(err) });
        // the failure is committed (count, time): its backoff says when to try again
        if (!this.abort.signal.aborted)
          await this.renewal
            .planInputFor(e.cert)
            .then(({ input }) => retryAt(evaluateRenewal(input, this.renewal.policy).dueAt))
            .catch(() => undefined);
      }
    });
    await ctx.store.setMeta(META.plannerLastRun.key, ctx.clock.now().toISOString());
    if (report.issued.length || report.failed.length || report.deferred.length)
      ctx.logger.info(
        { issued: report.issued.length, failed: report.failed.length, deferred: report.deferred.length },
        'planner run',
      );
    return report;
  }

  private async evaluate(cert: Certificate) {
    const r = this.renewal;
    const { input, current, state } = await r.planInputFor(cert, {
      fetchAri: true,
      signal: this.abort.signal,
    });
    const decision = evaluateRenewal(input, r.policy);
    return { input, current, state, decision, request: r.requestFor(input, decision, current) };
  }

  /** Announces a deferral once per limit and free time, not every tick. */
  private async defer(
    e: { cert: Certificate; state: RenewalState; decision: Decision },
    check: Extract<CanIssueResult, { ok: false }>,
    report: PlannerRunReport,
  ): Promise<void> {
    const { store } = this.renewal.ctx;
    const freesAt = check.freesAt.toISOString();
    report.deferred.push({ certificate: e.cert.name, limit: check.limit, freesAt });
    if (e.state.deferred?.limit === check.limit && e.state.deferred.freesAt === freesAt) return;
    await store.commitRenewal({
      certificate: { id: e.cert.id },
      actor: 'planner',
      renewalState: storeChange(withDeferred(check.limit, freesAt)),
      events: () => [
        {
          kind: 'renewal.deferred',
          data: {
            limit: check.limit,
            key: check.key,
            frees_at: freesAt,
            message: check.message,
            decision: e.decision.reason,
            urgent: e.decision.urgent,
          },
        },
      ],
    });
  }
}

/** Runs `fn` over `items` with at most `limit` at once; results in input order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
