/**
 * The renewal calendar behind `certfleet plan`: every certificate's decision, with the rate-limit budget applied
 * in time order on a scratch copy of the budget, so the view shows which issuances would be deferred and until
 * when. Pure: the real budget is never touched.
 */
import {
  evaluateRenewal,
  DEFAULT_POLICY,
  type Decision,
  type PlanInput,
  type RenewalPolicy,
} from './renewal-policy.ts';
import type { HeadroomEntry, IssuanceRequest, LimitName, RateLimitBudget } from './rate-limit-budget.ts';
import { registeredDomainsOf } from './registered-domain.ts';
import { formatInstant, formatRelative, formatSpan } from './time-format.ts';

export interface PlanEntry {
  certificateName: string;
  registeredDomains: string[];
  decision: Decision;
  /** When issuance will actually happen: the decision's dueAt, or later when the budget defers it. */
  dueAt: Date;
  /** Headroom of every limit a new order for this certificate counts against, at plan time. */
  headroom: HeadroomEntry[];
  /** Set when the budget would hold this issuance back. */
  deferral?: { limit: LimitName; key: string; freesAt: Date; message: string };
  /** The order the hub would place (ARI renewal or not, urgent or not). */
  request: IssuanceRequest;
}

/**
 * The order the hub places for a decision: an ARI renewal (`replaces`) when the CA gave ARI for the current
 * version and the new order shares at least one name with it (RFC 9773 §5 and Let's Encrypt's exemption need that).
 */
export function issuanceRequestFor(input: PlanInput, decision: Decision): IssuanceRequest {
  const { current, ari, certificate } = input;
  const have = new Set(current?.sans.map((s) => s.toLowerCase()) ?? []);
  const overlaps = certificate.sans.some((s) => have.has(s.toLowerCase()));
  return {
    sans: certificate.sans,
    isRenewal: current !== undefined && ari !== undefined && overlaps,
    urgent: decision.urgent,
  };
}

export function planCalendar(
  certs: PlanInput[],
  budget: RateLimitBudget,
  now: Date,
  policy: RenewalPolicy = DEFAULT_POLICY,
): PlanEntry[] {
  const scratch = budget.whatIf();
  const evaluated = certs.map((input) => {
    const decision = evaluateRenewal({ ...input, now }, policy);
    return { input, decision, request: issuanceRequestFor(input, decision) };
  });
  // Spend the scratch budget in the order issuance would happen; urgent first among equals.
  evaluated.sort(
    (a, b) =>
      a.decision.dueAt.getTime() - b.decision.dueAt.getTime() ||
      Number(b.decision.urgent) - Number(a.decision.urgent) ||
      a.input.certificate.name.localeCompare(b.input.certificate.name),
  );
  const entries = evaluated.map(({ input, decision, request }): PlanEntry => {
    const at = new Date(Math.max(decision.dueAt.getTime(), now.getTime()));
    const entry: PlanEntry = {
      certificateName: input.certificate.name,
      registeredDomains: registeredDomainsOf(input.certificate.sans),
      decision,
      dueAt: decision.dueAt,
      headroom: budget.headroom(input.certificate.sans, now),
      request,
    };
    const check = scratch.canIssue(request, at);
    if (check.ok) scratch.record(request, at);
    else {
      entry.deferral = { limit: check.limit, key: check.key, freesAt: check.freesAt, message: check.message };
      entry.dueAt = check.freesAt;
    }
    return entry;
  });
  return entries.sort((a, b) => a.dueAt.getTime() - b.dueAt.getTime());
}

function budgetCell(e: PlanEntry, now: Date): string {
  if (e.deferral)
    return `deferred by ${e.deferral.limit} (${e.deferral.key}) until ${formatInstant(e.deferral.freesAt)}`;
  if (!e.request.urgent && e.request.isRenewal) return 'ARI renewal: exempt';
  const domains = e.headroom.filter((h) => h.limit === 'CertificatesPerDomain');
  if (domains.length === 0) return 'no limits';
  return domains
    .map((h) => {
      const left = e.request.urgent ? h.remaining : h.remainingNonUrgent;
      const free = left === 0 && h.nextFreeAt ? `, next ${formatRelative(h.nextFreeAt, now)}` : '';
      return `${h.key} ${left}/${h.max} left${free}`;
    })
    .join('; ');
}

function whenCell(e: PlanEntry, now: Date): string {
  const late = now.getTime() - e.dueAt.getTime();
  if (e.decision.reissue && !e.deferral && late >= 60_000) return `now (${formatSpan(late)} late)`;
  return formatRelative(e.dueAt, now);
}

/** A fixed-width table for a terminal: certificate, due at, in, reason, message, budget. */
export function formatPlanTable(entries: PlanEntry[], now: Date = new Date()): string {
  const header = ['CERTIFICATE', 'DUE AT', 'IN', 'REASON', 'MESSAGE', 'BUDGET'];
  const rows = entries.map((e) => [
    e.certificateName,
    formatInstant(e.dueAt),
    whenCell(e, now),
    e.decision.urgent ? `${e.decision.reason} (urgent)` : e.decision.reason,
    e.decision.message,
    budgetCell(e, now),
  ]);
  if (rows.length === 0) return 'No certificates to plan.\n';
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n') + '\n';
}
