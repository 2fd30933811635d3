/** The rehearsal's verdict (its goals) and its text report, from a RehearsalResult. */
import { RATE_LIMIT_RETRY_AFTER_S } from './faulty-issuer.ts';
import type { RehearsalResult } from './rehearsal-ledger.ts';

export interface Goal {
  name: string;
  ok: boolean;
  detail: string;
}

/** The planner wakes once a minute and alerts are evaluated on change: a first alert may come this much late. */
const ALERT_SLACK_MS = 2 * 60_000;

/** Alerts must fire with at least this share of the served certificate's lifetime left (less the slack above). */
export const MIN_FRACTION_LEFT = 1 / 3;

export function goalsOf(r: RehearsalResult): Goal[] {
  const lifetimeMs = r.options.lifetimeHours * 3_600_000;
  const floor = MIN_FRACTION_LEFT - ALERT_SLACK_MS / lifetimeMs;
  const late = r.faults.filter(
    (f) => f.minFractionLeftAtFirstAlert !== undefined && f.minFractionLeftAtFirstAlert < floor,
  );
  const expired = r.servedExpired.endpointMinutes;
  return [
    {
      name: 'no endpoint serves an expired certificate',
      ok: expired === 0,
      detail:
        expired === 0
          ? '0 endpoint-minutes served expired'
          : `${expired} endpoint-minutes served expired, on ${r.servedExpired.endpoints.length} endpoints (worst: ${r.servedExpired.endpoints
              .slice(0, 3)
              .map((e) => `${e.endpoint} ${e.minutes} min`)
              .join(', ')})`,
    },
    {
      name: 'every fault is alerted with at least 1/3 of the lifetime left',
      ok: late.length === 0,
      detail:
        late.length === 0
          ? `${r.faults.filter((f) => f.endpointsAlerted > 0).length} of ${r.faults.length} faults raised alerts, each endpoint's first one in time`
          : `late: ${late.map((f) => `${f.id} (${fmtFraction(f.minFractionLeftAtFirstAlert!)} left)`).join(', ')}`,
    },
    {
      name: 'every deployment transition is one the lifecycle table allows',
      ok: r.illegalMoves.length === 0,
      detail: r.illegalMoves.length === 0 ? 'all allowed' : r.illegalMoves.slice(0, 3).join('; '),
    },
  ];
}

const fmtFraction = (f: number) => f.toFixed(3);
const day = (iso: string) => iso.slice(0, 16).replace('T', ' ');

function lifetimeText(hours: number): string {
  return hours % 24 === 0 ? `${hours / 24}d` : `${hours}h`;
}

export function formatReport(r: RehearsalResult, goals: Goal[] = goalsOf(r)): string {
  const o = r.options;
  const i = r.issuances;
  const s = r.renewalSpread;
  const lines: string[] = [];
  lines.push(
    `certfleet rehearsal: ${o.days} days, ${o.endpoints} endpoints, lifetime ${lifetimeText(o.lifetimeHours)}, faults: ${o.faults.join(', ') || 'none'}, seed ${o.seed}`,
    `simulated from ${day(o.start)} in ${r.run.wallSeconds} s (${r.run.events} events, ${r.run.plannerPasses} planner passes, ${r.run.probes} probes, ${r.run.hubRestarts} hub restarts)`,
    '',
    `Served expired: ${r.servedExpired.endpointMinutes} endpoint-minutes (goal 0)`,
    `Issuances: ${i.total} (${i.renewals} renewals); CA answers: ${i.caAnswers.issued} issued, ${i.caAnswers.down} down, ${i.caAnswers.rateLimited} rateLimited, ${i.caAnswers.dnsFailed} DNS challenge failed`,
    `  rate-limit budget (Let's Encrypt's limits): deferred ${
      Object.entries(i.deferredByBudget)
        .map(([k, v]) => `${v} by ${k}`)
        .join(', ') || 'none'
    }; busiest 3 h: ${i.peakOrdersIn3h} orders (New Orders per Account: 300); busiest registered domain: ${i.peakPerDomainIn7d} in 7 days (New Certificates per Registered Domain: 50; renewals of the same names are exempt)`,
    `  retry after a refused order (minutes to the certificate's next order): ${
      Object.entries(i.retrySpacing)
        .map(
          ([k, v]) =>
            `${k}${k === 'rateLimited' ? ` (Retry-After ${RATE_LIMIT_RETRY_AFTER_S / 60} min)` : ''} ×${v.count}: min ${v.minMinutes}, median ${v.medianMinutes}, max ${v.maxMinutes}`,
        )
        .join('; ') || 'no refusals'
    }`,
    `Renewal spread (share of lifetime elapsed at renewal, ${s.count} renewals): min ${s.p0}, p5 ${s.p5}, median ${s.p50}, p95 ${s.p95}, max ${s.p100}`,
    `Deploys: ${
      Object.entries(r.deploys)
        .map(([k, v]) => `${v} ${k}`)
        .join(', ') || 'none'
    }; operator retries after an alert: ${r.operatorRetries}, recovered: ${r.recoveredAfterRollback}`,
    '',
    r.faults.length ? 'Faults:' : 'Faults: none',
  );
  for (const f of r.faults) {
    const alerts = Object.entries(f.alerts)
      .map(([k, v]) => `${k} ×${v}`)
      .join(', ');
    const already = f.alreadyAlerted ? `${f.alreadyAlerted} endpoints already alerted when it began` : '';
    const when =
      f.minFractionLeftAtFirstAlert === undefined
        ? already || 'no alert'
        : `first alert per endpoint with ≥ ${fmtFraction(f.minFractionLeftAtFirstAlert)} of the lifetime left` +
          `${f.latestFirstAlertKind ? ` (${f.latestFirstAlertKind})` : ''}${already ? `; ${already}` : ''}`;
    lines.push(
      `  ${f.id.padEnd(16)} ${day(f.start)} → ${day(f.end)} (${f.hours} h), ${f.affected === 'all' ? 'all endpoints' : `${f.affected} endpoints`}: ${alerts || 'no alerts'}; ${when}`,
    );
  }
  const loose = r.alerts.filter((a) => a.faults.length === 0);
  if (loose.length) {
    const kinds = new Map<string, number>();
    for (const a of loose) kinds.set(a.kind, (kinds.get(a.kind) ?? 0) + 1);
    lines.push(
      `Alerts not tied to a fault: ${[...kinds].map(([k, v]) => `${k} ×${v}`).join(', ')} (first: ${loose[0].title})`,
    );
  }
  lines.push('', 'Goals:');
  for (const g of goals) lines.push(`  ${g.ok ? 'ok  ' : 'FAIL'} ${g.name}: ${g.detail}`);
  return lines.join('\n') + '\n';
}
