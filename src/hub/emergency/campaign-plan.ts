/**
 * What `certfleet emergency reissue` shows before it asks to confirm: per issuer, how many certificates, how many
 * orders would carry ARI `replaces`, the rate-limit headroom left (urgent orders may spend the reserved share),
 * which would be deferred by the budget and until when, and a rough estimate of the time to issue them all. The
 * budget is simulated on a scratch copy with planCalendar, the same arithmetic as `certfleet plan`.
 */
import { planCalendar, type PlanInput } from '../planner/index.ts';
import type { RenewalService } from '../renewal/renewal-service.ts';
import type { Selection } from './selection.ts';

export interface IssuerPlan {
  issuer: string;
  certificates: number;
  /** Orders that will name the certificate they replace (ARI): exempt from Let's Encrypt's limits. */
  ariRenewals: number;
  /** Account-wide headroom (New Orders per Account) now, as urgent orders see it. */
  headroom: Array<{ limit: string; key: string; max: number; remaining: number; nextFreeAt?: string }>;
  /** Orders the budget holds back, and when the last of them can go. */
  deferred: number;
  lastOrderAt: string;
  /** Rough seconds to issue them: orders at the planner's concurrency, or the budget's last slot if later. */
  estimatedSeconds: number;
}

export interface CampaignPlan {
  now: string;
  selector: Selection['selector'];
  certificates: number;
  /** Endpoint deployments the new versions go to. */
  subscriptions: number;
  unknownSerials: string[];
  replacedSerials: string[];
  issuers: IssuerPlan[];
  estimatedSeconds: number;
}

/** Seconds one order takes, by issuer kind: a guess from the issuance bench (bench/RESULTS.md), not a promise. */
const ORDER_SECONDS = { internal: 0.05, acme: 2 };

export async function planCampaign(
  renewal: RenewalService,
  selection: Selection,
  concurrency: number,
): Promise<CampaignPlan> {
  const { ctx } = renewal;
  const now = ctx.clock.now();
  const byIssuer = new Map<string, Selection['certificates']>();
  for (const s of selection.certificates)
    byIssuer.set(s.certificate.issuer, [...(byIssuer.get(s.certificate.issuer) ?? []), s]);
  const subs = await ctx.store.listSubscriptions();
  const selected = new Set(selection.certificates.map((s) => s.certificate.id));
  const issuers: IssuerPlan[] = [];
  let orderSeconds = 0;
  let budgetSeconds = 0;
  for (const [issuer, certs] of [...byIssuer].sort(([a], [b]) => a.localeCompare(b))) {
    const budget = await renewal.budgetFor(certs[0].certificate);
    const inputs: PlanInput[] = [];
    for (const { certificate } of certs) {
      const { input } = await renewal.planInputFor(certificate);
      inputs.push({ ...input, reissueRequested: { at: now, reason: 'emergency', urgent: true } });
    }
    const entries = planCalendar(inputs, budget, now, renewal.policy);
    const last = entries.reduce((t, e) => Math.max(t, e.dueAt.getTime()), now.getTime());
    const seconds =
      (certs.length * (issuer === 'internal' ? ORDER_SECONDS.internal : ORDER_SECONDS.acme)) / concurrency;
    orderSeconds += seconds;
    budgetSeconds = Math.max(budgetSeconds, (last - now.getTime()) / 1000);
    issuers.push({
      issuer,
      certificates: certs.length,
      ariRenewals: entries.filter((e) => e.request.isRenewal).length,
      headroom: budget
        .headroom(certs[0].certificate.sans, now)
        .filter((h) => h.limit === 'NewOrdersPerAccount')
        .map((h) => ({
          limit: h.limit,
          key: h.key,
          max: h.max,
          remaining: h.remaining,
          ...(h.nextFreeAt ? { nextFreeAt: h.nextFreeAt.toISOString() } : {}),
        })),
      deferred: entries.filter((e) => e.deferral).length,
      lastOrderAt: new Date(last).toISOString(),
      estimatedSeconds: Math.ceil(Math.max(seconds, (last - now.getTime()) / 1000)),
    });
  }
  return {
    now: now.toISOString(),
    selector: selection.selector,
    certificates: selection.certificates.length,
    subscriptions: subs.filter((s) => selected.has(s.certificateId)).length,
    unknownSerials: selection.unknownSerials,
    replacedSerials: selection.replacedSerials,
    issuers,
    estimatedSeconds: Math.ceil(Math.max(orderSeconds, budgetSeconds)),
  };
}
