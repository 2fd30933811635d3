/**
 * What a rehearsal counts while it runs (issuances, served-expired minutes, deploy outcomes, deferrals), and the
 * plain result it ends with: JSON-safe, the input of the text and HTML reports.
 */
import type { FaultInstance } from './fault-plan.ts';
import type { AlertFiring } from './alert-watch.ts';
import { faultAlerting, type AlertSpan } from './fault-alerts.ts';
import type { RehearsalOptions } from './rehearsal-options.ts';
import type { Served } from './sim-endpoint.ts';

const MINUTE = 60_000;
const DAY = 1440 * MINUTE;

export interface RehearsalResult {
  options: {
    days: number;
    endpoints: number;
    lifetimeHours: number;
    faults: string[];
    seed: number;
    start: string;
  };
  servedExpired: { endpointMinutes: number; endpoints: Array<{ endpoint: string; minutes: number }> };
  issuances: {
    total: number;
    renewals: number;
    caAnswers: { issued: number; down: number; rateLimited: number; dnsFailed: number };
    deferredByBudget: Record<string, number>;
    /**
     * After a refused order (by the CA's answer), the minutes until the next order for the same certificate: the
     * planner's backoff, or the CA's Retry-After when it sent one (the rate-limit fault: 60 min).
     */
    retrySpacing: Record<
      string,
      { count: number; minMinutes: number; medianMinutes: number; maxMinutes: number }
    >;
    /** All orders that ended in a certificate, in the busiest 3 hours / busiest registered domain's 7 days. */
    peakOrdersIn3h: number;
    peakPerDomainIn7d: number;
  };
  /** Fraction of the old version's lifetime elapsed when its successor was issued. */
  renewalSpread: { count: number; p0: number; p5: number; p50: number; p95: number; p100: number };
  deploys: Record<string, number> & {};
  operatorRetries: number;
  recoveredAfterRollback: number;
  illegalMoves: string[];
  faults: Array<{
    id: string;
    kind: string;
    start: string;
    end: string;
    hours: number;
    affected: number | 'all';
    alerts: Record<string, number>;
    endpointsAlerted: number;
    /** Endpoints already alerted when the fault began (src/rehearsal/fault-alerts.ts). */
    alreadyAlerted: number;
    /** Per endpoint first alerted after the fault began, the share of lifetime left at that alert: the smallest. */
    minFractionLeftAtFirstAlert?: number;
    latestFirstAlertKind?: string;
  }>;
  alerts: AlertFiring[];
  daily: { issued: number[]; expiring: number[]; servedExpiredMinutes: number[] };
  run: { plannerPasses: number; probes: number; hubRestarts: number; events: number; wallSeconds: number };
}

export class RehearsalLedger {
  deploys: Record<string, number> = {};
  deferrals: Record<string, number> = {};
  illegalMoves: string[] = [];
  failures: string[] = [];
  operatorRetries = 0;
  recoveredAfterRollback = 0;
  probes = 0;
  plannerPasses = 0;
  hubRestarts = 0;
  private fractions: number[] = [];
  private orderTimes: number[] = [];
  private domainTimes = new Map<string, number[]>();
  private expiredMs = new Map<number, number>();
  private readonly days: number;
  private dailyIssued: number[];
  private dailyExpiring: number[];
  private dailyExpiredMs: number[];

  constructor(
    private readonly start: number,
    private readonly end: number,
  ) {
    this.days = Math.ceil((end - start) / DAY);
    this.dailyIssued = new Array(this.days).fill(0);
    this.dailyExpiring = new Array(this.days).fill(0);
    this.dailyExpiredMs = new Array(this.days).fill(0);
  }

  /** Counting starts at the start: the fleet's seeding before it is not part of the year. */
  resetCounters(): void {
    this.deploys = {};
    this.deferrals = {};
    this.probes = 0;
    this.plannerPasses = 0;
  }

  private day(t: number): number {
    return Math.floor((t - this.start) / DAY);
  }

  issued(t: number, previous: Served | undefined, next: Served, domain: string): void {
    const d = this.day(next.notAfter);
    if (d >= 0 && d < this.days) this.dailyExpiring[d]++;
    if (t < this.start) return;
    this.dailyIssued[Math.min(this.day(t), this.days - 1)]++;
    this.orderTimes.push(t);
    const list = this.domainTimes.get(domain) ?? [];
    list.push(t);
    this.domainTimes.set(domain, list);
    if (previous) this.fractions.push((t - previous.notBefore) / (previous.notAfter - previous.notBefore));
  }

  /** Endpoint `i` served `s` from `from` to `to`: count the part after its notAfter (inside the run). */
  servedUntil(i: number, s: Served, from: number, to: number): void {
    let a = Math.max(from, s.notAfter, this.start);
    const b = Math.min(to, this.end);
    if (b <= a) return;
    this.expiredMs.set(i, (this.expiredMs.get(i) ?? 0) + (b - a));
    while (a < b) {
      const d = this.day(a);
      const dayEnd = this.start + (d + 1) * DAY;
      const upto = Math.min(b, dayEnd);
      this.dailyExpiredMs[Math.min(d, this.days - 1)] += upto - a;
      a = upto;
    }
  }

  result(x: {
    options: RehearsalOptions;
    faults: FaultInstance[];
    alerts: AlertFiring[];
    /** The same alerts as spans (AlertWatch.spans), for the fault rules. */
    alertSpans: AlertSpan[];
    lifetimeMs: number;
    caAnswers: RehearsalResult['issuances']['caAnswers'];
    retrySpacing: Record<string, number[]>;
    eventsRun: number;
    wallMs: number;
    endpointName: (i: number) => string;
  }): RehearsalResult {
    const minutes = (ms: number) => Math.round(ms / MINUTE);
    const expired = [...this.expiredMs]
      .map(([i, ms]) => ({ endpoint: x.endpointName(i), minutes: minutes(ms) }))
      .sort((a, b) => b.minutes - a.minutes);
    return {
      options: {
        days: x.options.days,
        endpoints: x.options.endpoints,
        lifetimeHours: x.options.lifetimeMs / 3_600_000,
        faults: [...x.options.faults],
        seed: x.options.seed,
        start: new Date(this.start).toISOString(),
      },
      servedExpired: {
        endpointMinutes: expired.reduce((n, e) => n + e.minutes, 0),
        endpoints: expired.slice(0, 50),
      },
      issuances: {
        total: this.orderTimes.length,
        renewals: this.fractions.length,
        caAnswers: x.caAnswers,
        deferredByBudget: this.deferrals,
        retrySpacing: Object.fromEntries(
          Object.entries(x.retrySpacing)
            .filter(([, v]) => v.length)
            .map(([k, v]) => [k, spacing(v)]),
        ),
        peakOrdersIn3h: peakInWindow(this.orderTimes, 3 * 60 * MINUTE),
        peakPerDomainIn7d: Math.max(
          0,
          ...[...this.domainTimes.values()].map((t) => peakInWindow(t, 7 * DAY)),
        ),
      },
      renewalSpread: spread(this.fractions),
      deploys: this.deploys,
      operatorRetries: this.operatorRetries,
      recoveredAfterRollback: this.recoveredAfterRollback,
      illegalMoves: this.illegalMoves.slice(0, 20),
      faults: x.faults.map((f) => faultSummary(f, x.alertSpans, x.lifetimeMs)),
      alerts: x.alerts,
      daily: {
        issued: this.dailyIssued,
        expiring: this.dailyExpiring,
        servedExpiredMinutes: this.dailyExpiredMs.map(minutes),
      },
      run: {
        plannerPasses: this.plannerPasses,
        probes: this.probes,
        hubRestarts: this.hubRestarts,
        events: x.eventsRun,
        wallSeconds: Math.round(x.wallMs / 100) / 10,
      },
    };
  }
}

function faultSummary(
  f: FaultInstance,
  alerts: AlertSpan[],
  lifetimeMs: number,
): RehearsalResult['faults'][number] {
  const { byKind, ...alerting } = faultAlerting(f, alerts, lifetimeMs);
  return {
    id: f.id,
    kind: f.kind,
    start: new Date(f.start).toISOString(),
    end: new Date(f.end).toISOString(),
    hours: Math.round(((f.end - f.start) / 3_600_000) * 10) / 10,
    affected: f.affected ? f.affected.size : 'all',
    alerts: byKind,
    ...alerting,
  };
}

/** The most entries of sorted `times` inside any window of `windowMs`. */
function peakInWindow(times: number[], windowMs: number): number {
  let lo = 0;
  let peak = 0;
  for (let hi = 0; hi < times.length; hi++) {
    while (times[hi] - times[lo] >= windowMs) lo++;
    peak = Math.max(peak, hi - lo + 1);
  }
  return peak;
}

function spacing(ms: number[]): RehearsalResult['issuances']['retrySpacing'][string] {
  const v = [...ms].sort((a, b) => a - b);
  const m = (x: number) => Math.round((x / MINUTE) * 10) / 10;
  return {
    count: v.length,
    minMinutes: m(v[0]),
    medianMinutes: m(v[Math.floor(v.length / 2)]),
    maxMinutes: m(v[v.length - 1]),
  };
}

function spread(values: number[]): RehearsalResult['renewalSpread'] {
  const v = [...values].sort((a, b) => a - b);
  const at = (p: number) => (v.length ? v[Math.min(v.length - 1, Math.floor(p * v.length))] : 0);
  const r = (n: number) => Math.round(n * 1000) / 1000;
  return {
    count: v.length,
    p0: r(v[0] ?? 0),
    p5: r(at(0.05)),
    p50: r(at(0.5)),
    p95: r(at(0.95)),
    p100: r(v.at(-1) ?? 0),
  };
}
