import { errorMessage } from '../core/errors.ts';
import type { Certificate } from '../core/types.ts';
import { PLANNER_LAST_RUN_META, type RenewalService } from './acme/renewal-service.ts';
import { evaluateRenewal } from './planner/index.ts';

export interface PlannerRunReport {
  at: string;
  evaluated: number;
  issued: string[];
  deferred: Array<{ certificate: string; limit: string; freesAt: string }>;
  failed: Array<{ certificate: string; error: string }>;
}

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
  private running?: Promise<PlannerRunReport>;
  private readonly abort = new AbortController();
  private stopped = false;

  constructor(
    private readonly renewal: RenewalService,
    private readonly opts: PlannerServiceOptions,
  ) {}

  start(): void {
    this.stopped = false;
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
    this.timer = setTimeout(() => {
      this.runOnce()
        .catch((e) => this.renewal.ctx.logger.error({ err: errorMessage(e) }, 'planner run failed'))
        .finally(() => this.schedule(this.opts.intervalMs));
    }, ms);
    this.timer.unref();
  }

  /** One planner pass over every certificate. Overlapping calls share the run in progress. */
  runOnce(): Promise<PlannerRunReport> {
    this.running ??= this.pass().finally(() => (this.running = undefined));
    return this.running;
  }

  private async pass(): Promise<PlannerRunReport> {
    const { ctx } = this.renewal;
    const report: PlannerRunReport = {
      at: ctx.clock.now().toISOString(),
      evaluated: 0,
      issued: [],
      deferred: [],
      failed: [],
    };
    const certs = await ctx.store.listCertificates();
    const queue = [...certs];
    const worker = async () => {
      for (let cert = queue.shift(); cert; cert = queue.shift()) {
        if (this.abort.signal.aborted) return;
        try {
          await this.consider(cert, report);
        } catch (e) {
          if (this.abort.signal.aborted) return;
          report.failed.push({ certificate: cert.name, error: errorMessage(e) });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.opts.concurrency ?? 4) }, worker));
    await ctx.store.setMeta(PLANNER_LAST_RUN_META, ctx.clock.now().toISOString());
    if (report.issued.length || report.failed.length || report.deferred.length)
      ctx.logger.info(
        { issued: report.issued.length, failed: report.failed.length, deferred: report.deferred.length },
        'planner run',
      );
    return report;
  }

  private async consider(cert: Certificate, report: PlannerRunReport): Promise<void> {
    const r = this.renewal;
    const { input, current, state } = await r.planInputFor(cert, {
      fetchAri: true,
      signal: this.abort.signal,
    });
    report.evaluated++;
    const decision = evaluateRenewal(input, r.policy);
    if (!decision.reissue) return;
    const request = r.requestFor(input, decision, current);
    const budget = await r.budgetFor(cert);
    const check = budget.canIssue(request, input.now);
    if (!check.ok) {
      const freesAt = check.freesAt.toISOString();
      report.deferred.push({ certificate: cert.name, limit: check.limit, freesAt });
      // Announce each deferral once, not every tick.
      if (state.deferred?.limit !== check.limit || state.deferred.freesAt !== freesAt) {
        await r.ctx.store.setRenewalState(cert.id, { ...state, deferred: { limit: check.limit, freesAt } });
        await r.ctx.store.appendEvent({
          actor: 'planner',
          kind: 'renewal.deferred',
          subject: `certificate:${cert.name}`,
          data: {
            limit: check.limit,
            key: check.key,
            frees_at: freesAt,
            message: check.message,
            decision: decision.reason,
            urgent: decision.urgent,
          },
        });
      }
      return;
    }
    try {
      const outcome = await r.issueCoalesced(cert, 'planner', decision.reason, async () => {
        // Re-check after the lock: another trigger may have issued meanwhile.
        const again = await r.planInputFor(cert);
        const d = evaluateRenewal(again.input, r.policy);
        return { needed: d.reissue, request: r.requestFor(again.input, d, again.current) };
      });
      if (outcome.issued) report.issued.push(cert.name);
    } catch (e) {
      report.failed.push({ certificate: cert.name, error: errorMessage(e) });
    }
  }
}
