/**
 * A rate-limit budget per ACME directory: we count our own orders against the CA's published limits and defer
 * non-urgent issuance well before the CA's wall, so the CA never has to say no and an urgent renewal always finds
 * room. Pure bookkeeping: time comes in as arguments; the hub stores each counted order (`record` returns it,
 * `count` replays it), and the whole state is a plain object too (toJSON/fromJSON).
 *
 * Defaults are Let's Encrypt's published limits (https://letsencrypt.org/docs/rate-limits/, page last modified
 * 2025-04-01):
 *   - New Orders per Account: 300 per 3 hours (refills 1 per 36 s).
 *   - New Certificates per Registered Domain: 50 per 7 days, global across accounts (refills 1 per 202 min).
 *   - New Certificates per Exact Set of Hostnames: 5 per 7 days (refills 1 per 34 h).
 *   - "Limit Exemptions for Renewals": an ARI renewal (a new order naming the certificate it `replaces`, sharing
 *     at least one hostname, that certificate not already replaced via ARI) is exempt from ALL rate limits. A
 *     non-ARI renewal (exact same set of hostnames as an earlier certificate, ignoring case and order) is exempt
 *     from New Orders per Account and New Certificates per Registered Domain, but still counts against the exact
 *     set limit (and the authorization-failure limits, which the backoff in renewal-policy.ts respects).
 *
 * Let's Encrypt uses token buckets; we use sliding windows of the same size. A sliding window is the stricter of
 * the two: whenever fewer than N of our orders fall in the last window W, a bucket of N refilling at N/W still
 * holds a token. So staying inside our window keeps us inside theirs; `freesAt` may be later than the CA's.
 *
 * Call `record(request, at)` when an order ends in a certificate, and `record(request, at, 'failed')` when it
 * fails: Boulder checks the certificate limits at new-order but spends them only at finalize, while every order
 * spends New Orders per Account (letsencrypt/boulder#7669). Counting failed orders against the certificate
 * limits would let a day of validation failures starve the retries that fix it.
 */
import { CertfleetError } from '../../core/errors.ts';
import { DAY_MS, HOUR_MS, formatInstant, formatRelative, formatSpan } from './time-format.ts';
import { ExpiryQueue } from './expiry-queue.ts';
import { registeredDomainsOf } from './registered-domain.ts';

export const LIMIT_NAMES = [
  'NewOrdersPerAccount',
  'CertificatesPerDomain',
  'CertificatesPerFQDNSet',
] as const;
/** Boulder's names for the limits, kept as stable codes. */
export type LimitName = (typeof LIMIT_NAMES)[number];

const LIMIT_LABELS: Record<LimitName, string> = {
  NewOrdersPerAccount: 'New Orders per Account',
  CertificatesPerDomain: 'New Certificates per Registered Domain',
  CertificatesPerFQDNSet: 'New Certificates per Exact Set of Hostnames',
};

export interface LimitSpec {
  count: number;
  windowMs: number;
}

export interface BudgetConfig {
  /** null: the CA has no such limit. */
  limits: Record<LimitName, LimitSpec | null>;
  /** Non-urgent issuance may use only this share of each limit; the rest is kept for urgent renewals. */
  nonUrgentFraction: number;
  /** Orders with `replaces` (ARI) are exempt from every limit (Let's Encrypt: yes). */
  ariRenewalsExempt: boolean;
  /** An order for an exact set issued before counts only against the exact-set limit (Let's Encrypt: yes). */
  exactSetRenewalsExempt: boolean;
  /** How long after an issuance the same set still counts as "issued before". */
  renewalLookbackMs: number;
}

export const LETS_ENCRYPT_BUDGET: Readonly<BudgetConfig> = Object.freeze({
  limits: Object.freeze({
    NewOrdersPerAccount: { count: 300, windowMs: 3 * HOUR_MS },
    CertificatesPerDomain: { count: 50, windowMs: 7 * DAY_MS },
    CertificatesPerFQDNSet: { count: 5, windowMs: 7 * DAY_MS },
  }),
  nonUrgentFraction: 0.8,
  ariRenewalsExempt: true,
  exactSetRenewalsExempt: true,
  // Conservative: we only treat a set as a renewal while a certificate for it could still be valid (90 days).
  renewalLookbackMs: 90 * DAY_MS,
});

/** For issuers with no limits (the hub's internal CA). */
export const NO_LIMITS: Readonly<BudgetConfig> = Object.freeze({
  ...LETS_ENCRYPT_BUDGET,
  limits: Object.freeze({
    NewOrdersPerAccount: null,
    CertificatesPerDomain: null,
    CertificatesPerFQDNSet: null,
  }),
});

export interface BudgetOverrides {
  limits?: Partial<Record<LimitName, LimitSpec | null>>;
  nonUrgentFraction?: number;
  ariRenewalsExempt?: boolean;
  exactSetRenewalsExempt?: boolean;
  renewalLookbackMs?: number;
}

/** Let's Encrypt's defaults with a directory's overrides from config applied (the hub keeps one budget per directory). */
export function resolveBudgetConfig(
  overrides: BudgetOverrides = {},
  base: BudgetConfig = LETS_ENCRYPT_BUDGET,
): BudgetConfig {
  const config: BudgetConfig = {
    ...base,
    ...Object.fromEntries(Object.entries(overrides).filter(([k, v]) => k !== 'limits' && v !== undefined)),
    limits: { ...base.limits, ...overrides.limits },
  };
  const bad = (what: string) =>
    new CertfleetError(
      'CONFIG_INVALID',
      `Rate-limit budget: ${what}.`,
      'Fix the rate_limits section of the ACME issuer in certfleet.yaml.',
    );
  if (!(config.nonUrgentFraction > 0 && config.nonUrgentFraction <= 1))
    throw bad(`nonUrgentFraction must be in (0, 1], got ${config.nonUrgentFraction}`);
  for (const name of LIMIT_NAMES) {
    const l = config.limits[name];
    if (l && !(Number.isInteger(l.count) && l.count > 0 && l.windowMs > 0))
      throw bad(`${name} needs a positive integer count and a positive window`);
  }
  return config;
}

/** An order as the budget sees it. */
export interface IssuanceRequest {
  sans: string[];
  /** An ARI renewal: the order will carry `replaces`. */
  isRenewal: boolean;
  /** Past the point of no return: may use the reserved headroom. */
  urgent: boolean;
  /** ARI certificate id of the replaced certificate; lets us see a second replacement, which is not exempt. */
  replaces?: string;
  /** ACME account; defaults to the budget's. */
  account?: string;
}

export type CanIssueResult =
  { ok: true } | { ok: false; limit: LimitName; key: string; freesAt: Date; message: string };

export interface HeadroomEntry {
  limit: LimitName;
  /** The account, registered domain, or exact set counted. */
  key: string;
  max: number;
  windowMs: number;
  used: number;
  /** Left before the CA's wall. */
  remaining: number;
  /** Left for non-urgent issuance (the rest is reserved). */
  remainingNonUrgent: number;
  /** When the oldest counted order leaves the window (undefined when none is counted). */
  nextFreeAt?: Date;
}

/** The serializable state, as stored by the hub. Times are ISO strings. */
export interface BudgetState {
  version: 1;
  /** `${limit}|${key}` → times of counted orders within the window. */
  windows: Record<string, string[]>;
  /** exact-set key → last issuance, for renewal detection. */
  issuedSets: Record<string, string>;
  /** ARI certificate id → when it was replaced via ARI. */
  replaced: Record<string, string>;
}

/**
 * One counted order as the store keeps it (a row of rate_limit_orders): what `record` did to the budget, so another
 * copy replays it with `count`. Times are epoch milliseconds.
 */
export interface CountedOrder {
  at: number;
  outcome: 'issued' | 'failed';
  /** `${limit}|${key}` of every window it counts in (exemptions applied when it was recorded). */
  windows: string[];
  /** The exact set of names it issued (renewal detection); absent for a failed order. */
  issuedSet?: string;
  /** The ARI certificate id it was the first to replace. */
  replaces?: string;
  /** When it no longer matters: the end of its longest window, renewal lookback or replacement memory. */
  keepUntil: number;
}

const REPLACED_KEEP_MS = 400 * DAY_MS; // longer than any publicly trusted lifetime (398 days)

/** What an entry of the expiry queue stands for: a counted time of a window, an issued set, a replacement. */
type Expiry = { of: 'window' | 'issuedSet' | 'replaced'; key: string };

/**
 * A budget holds one time per exact set of names and the same instants recur across its windows: their ISO text
 * is kept (bounded) for toJSON.
 */
const isoTexts = new Map<number, string>();
function iso(t: number): string {
  let s = isoTexts.get(t);
  if (s === undefined) {
    s = new Date(t).toISOString();
    if (isoTexts.size >= 50_000) isoTexts.clear();
    isoTexts.set(t, s);
  }
  return s;
}

/** The exact set of hostnames as the CA compares it: case- and order-insensitive. */
export function exactSetKey(sans: string[]): string {
  return [...new Set(sans.map((s) => s.trim().toLowerCase().replace(/\.$/, '')))].sort().join(',');
}

interface Charge {
  limit: LimitName;
  key: string;
  spec: LimitSpec;
}

export class RateLimitBudget {
  readonly config: BudgetConfig;
  readonly account: string;
  private readonly windows = new Map<string, number[]>();
  private readonly issuedSets = new Map<string, number>();
  private readonly replaced = new Map<string, number>();
  /** A what-if view's budget underneath: read through, never written. */
  private readonly base: RateLimitBudget | undefined;
  /**
   * When each thing counted stops mattering, so `prune` visits only what expired: walking the whole budget (one
   * window and one issued set per exact set of names, i.e. per certificate) on every record made each issuance
   * cost O(fleet).
   */
  private readonly expiries = new ExpiryQueue<Expiry>();

  constructor(
    config: BudgetConfig = LETS_ENCRYPT_BUDGET,
    opts: { account?: string; base?: RateLimitBudget } = {},
  ) {
    this.config = config;
    this.account = opts.account ?? 'default';
    this.base = opts.base;
  }

  static fromJSON(
    state: BudgetState,
    config?: BudgetConfig,
    opts: { account?: string } = {},
  ): RateLimitBudget {
    if (!state || state.version !== 1)
      throw new CertfleetError(
        'VALIDATION_FAILED',
        `Stored rate-limit budget has unknown version ${String(state?.version)}.`,
        'Upgrade certfleet, or delete the stored budget to start counting afresh (the CA still enforces its limits).',
      );
    const b = new RateLimitBudget(config, opts);
    for (const [key, times] of Object.entries(state.windows ?? {}))
      b.windows.set(
        key,
        times.map((t) => Date.parse(t)).sort((x, y) => x - y),
      );
    for (const [key, t] of Object.entries(state.issuedSets ?? {})) b.issuedSets.set(key, Date.parse(t));
    for (const [key, t] of Object.entries(state.replaced ?? {})) b.replaced.set(key, Date.parse(t));
    b.reindex();
    return b;
  }

  toJSON(): BudgetState {
    if (this.base) return this.clone().toJSON();
    return {
      version: 1,
      windows: Object.fromEntries([...this.windows].map(([k, ts]) => [k, ts.map(iso)])),
      issuedSets: Object.fromEntries([...this.issuedSets].map(([k, t]) => [k, iso(t)])),
      replaced: Object.fromEntries([...this.replaced].map(([k, t]) => [k, iso(t)])),
    };
  }

  /** A deep, independent copy (of a view: the budget underneath with the view's own counts). */
  clone(): RateLimitBudget {
    const b = this.base?.clone() ?? new RateLimitBudget(this.config, { account: this.account });
    for (const [k, times] of this.windows)
      b.windows.set(k, b.windows.has(k) ? mergeSorted(b.windows.get(k)!, times) : [...times]);
    for (const [k, t] of this.issuedSets) b.issuedSets.set(k, Math.max(t, b.issuedSets.get(k) ?? 0));
    for (const [k, t] of this.replaced) if (!b.replaced.has(k)) b.replaced.set(k, t);
    b.reindex();
    return b;
  }

  /**
   * A what-if view for planning (the planner's scratch budget of a pass, orders held but not yet counted): it
   * counts and checks like a copy, but holds only what is recorded on it and reads the rest from this budget,
   * which it never changes. Made in O(1), where a copy was O(fleet). A live view: it sees what this budget counts
   * after it was made.
   */
  whatIf(): RateLimitBudget {
    return new RateLimitBudget(this.config, { account: this.account, base: this });
  }

  /** Every limit a brand-new order for these SANs would count against, and how much of each is left. */
  headroom(certificateSans: string[], now: Date, account = this.account): HeadroomEntry[] {
    return this.allCharges(certificateSans, account).map((c) => {
      const times = this.inWindow(c, now.getTime());
      const nonUrgentMax = this.threshold(c.spec, false);
      return {
        limit: c.limit,
        key: c.key,
        max: c.spec.count,
        windowMs: c.spec.windowMs,
        used: times.length,
        remaining: Math.max(0, c.spec.count - times.length),
        remainingNonUrgent: Math.max(0, nonUrgentMax - times.length),
        nextFreeAt: times.length ? new Date(times[0] + c.spec.windowMs) : undefined,
      };
    });
  }

  /** Which limits this order counts against, as the CA counts them (exemptions applied). */
  chargesFor(request: IssuanceRequest, now: Date): { limit: LimitName; key: string }[] {
    return this.charges(request, now.getTime()).map(({ limit, key }) => ({ limit, key }));
  }

  canIssue(request: IssuanceRequest, now: Date): CanIssueResult {
    const t = now.getTime();
    let worst: { c: Charge; used: number; allowed: number; freesAt: number } | undefined;
    for (const c of this.charges(request, t)) {
      const times = this.inWindow(c, t);
      const allowed = this.threshold(c.spec, request.urgent);
      if (times.length < allowed) continue;
      // The (used - allowed + 1) oldest orders must leave the window before one more fits.
      const freesAt = times[times.length - allowed] + c.spec.windowMs;
      if (!worst || freesAt > worst.freesAt) worst = { c, used: times.length, allowed, freesAt };
    }
    if (!worst) return { ok: true };
    const { c, used, allowed, freesAt } = worst;
    const at = new Date(freesAt);
    const reserve =
      request.urgent || allowed === c.spec.count
        ? ''
        : ` (${allowed} usable for non-urgent issuance, ${c.spec.count - allowed} kept for urgent renewals)`;
    return {
      ok: false,
      limit: c.limit,
      key: c.key,
      freesAt: at,
      message:
        `${LIMIT_LABELS[c.limit]} allows ${c.spec.count} per ${formatSpan(c.spec.windowMs)}; ${c.key} has used ` +
        `${used}${reserve}; deferring ${request.urgent ? 'urgent ' : ''}issuance until a slot frees at ` +
        `${formatInstant(at)} (${formatRelative(at, now)}).`,
    };
  }

  /**
   * Count an order that ended at `at`: in a certificate ('issued', the default), or in failure. Returns what was
   * counted, for the store to keep (undefined when the CA has no limits): `count` replays it in another copy.
   */
  record(
    request: IssuanceRequest,
    at: Date,
    outcome: 'issued' | 'failed' = 'issued',
  ): CountedOrder | undefined {
    // A CA without limits: nothing to count. Keeping every issued set anyway grew the stored budget with the fleet.
    if (LIMIT_NAMES.every((l) => this.config.limits[l] === null)) return undefined;
    const t = at.getTime();
    const charges = this.charges(request, t).filter(
      (c) => outcome === 'issued' || c.limit === 'NewOrdersPerAccount',
    );
    const order: CountedOrder = {
      at: t,
      outcome,
      windows: charges.map((c) => `${c.limit}|${c.key}`),
      keepUntil: t,
    };
    const keep = (ms: number) => (order.keepUntil = Math.max(order.keepUntil, t + ms));
    for (const c of charges) keep(c.spec.windowMs);
    if (outcome === 'issued') {
      order.issuedSet = exactSetKey(request.sans);
      keep(this.config.renewalLookbackMs);
      if (request.isRenewal && request.replaces && !this.isReplaced(request.replaces)) {
        order.replaces = request.replaces;
        keep(REPLACED_KEEP_MS);
      }
    }
    this.count(order);
    this.prune(t);
    return order;
  }

  /**
   * Replays an order counted by `record` (this copy's, another hub's, or one read back from the store). Each call
   * counts once more: the caller counts each stored order once.
   */
  count(order: CountedOrder): void {
    const t = order.at;
    for (const k of order.windows) {
      const times = this.windows.get(k) ?? [];
      let i = times.length;
      while (i > 0 && times[i - 1] > t) i--;
      times.splice(i, 0, t);
      this.windows.set(k, times);
      this.expiries.push(t + this.windowMsOf(k), { of: 'window', key: k });
    }
    if (order.issuedSet !== undefined) {
      this.issuedSets.set(order.issuedSet, Math.max(t, this.issuedSets.get(order.issuedSet) ?? 0));
      this.expiries.push(t + this.config.renewalLookbackMs, { of: 'issuedSet', key: order.issuedSet });
    }
    if (order.replaces !== undefined && !this.isReplaced(order.replaces)) {
      this.replaced.set(order.replaces, t);
      this.expiries.push(t + REPLACED_KEEP_MS, { of: 'replaced', key: order.replaces });
    }
  }

  /**
   * Takes in what another copy of this budget counted (another hub's, read back from the store): each window holds
   * every time either copy holds, a time both hold once (it is one order, counted by one hub and read by the
   * other). Idempotent: absorbing the same state twice changes nothing. Into a budget, not a what-if view.
   */
  absorb(other: RateLimitBudget): void {
    if (other.base) other = other.clone();
    for (const [k, theirs] of other.windows) {
      const ours = this.windows.get(k) ?? [];
      const count = (xs: number[]) =>
        xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<number, number>());
      const [mine, other_] = [count(ours), count(theirs)];
      const merged: number[] = [];
      for (const t of new Set([...mine.keys(), ...other_.keys()]))
        for (let i = 0; i < Math.max(mine.get(t) ?? 0, other_.get(t) ?? 0); i++) merged.push(t);
      this.windows.set(
        k,
        merged.sort((x, y) => x - y),
      );
    }
    for (const [k, t] of other.issuedSets) this.issuedSets.set(k, Math.max(t, this.issuedSets.get(k) ?? 0));
    for (const [k, t] of other.replaced) if (!this.replaced.has(k)) this.replaced.set(k, t);
    this.reindex();
  }

  /**
   * Forget what no longer matters at `now` (called by record; call before storing if the hub wants it small): in
   * O(what expired). A view forgets only its own counts.
   */
  prune(now: number): void {
    this.expiries.expire(now, ({ of, key }) => {
      if (of === 'window') {
        const times = this.windows.get(key);
        if (!times) return;
        const windowMs = this.windowMsOf(key);
        const from = times.findIndex((x) => x > now - windowMs);
        if (from === -1) this.windows.delete(key);
        else if (from > 0) times.splice(0, from);
      } else if (of === 'issuedSet') {
        const t = this.issuedSets.get(key);
        if (t !== undefined && t <= now - this.config.renewalLookbackMs) this.issuedSets.delete(key);
      } else {
        const t = this.replaced.get(key);
        if (t !== undefined && t <= now - REPLACED_KEEP_MS) this.replaced.delete(key);
      }
    });
  }

  /** A window's length; a limit the config does not have keeps nothing. */
  private windowMsOf(key: string): number {
    return this.config.limits[key.slice(0, key.indexOf('|')) as LimitName]?.windowMs ?? 0;
  }

  /** The expiry queue anew, after the maps were filled other than by `count` (fromJSON, clone, absorb). */
  private reindex(): void {
    this.expiries.clear();
    for (const [key, times] of this.windows)
      for (const t of times) this.expiries.push(t + this.windowMsOf(key), { of: 'window', key });
    for (const [key, t] of this.issuedSets)
      this.expiries.push(t + this.config.renewalLookbackMs, { of: 'issuedSet', key });
    for (const [key, t] of this.replaced) this.expiries.push(t + REPLACED_KEEP_MS, { of: 'replaced', key });
  }

  /** A window's counted times, oldest first (a view's own with those underneath). */
  private timesOf(key: string): readonly number[] {
    const own = this.windows.get(key);
    const under = this.base?.timesOf(key);
    if (!under?.length) return own ?? [];
    return own?.length ? mergeSorted(under, own) : under;
  }

  private issuedAt(set: string): number | undefined {
    const own = this.issuedSets.get(set);
    const under = this.base?.issuedAt(set);
    return own === undefined ? under : under === undefined ? own : Math.max(own, under);
  }

  private isReplaced(id: string): boolean {
    return this.replaced.has(id) || (this.base?.isReplaced(id) ?? false);
  }

  private threshold(spec: LimitSpec, urgent: boolean): number {
    return urgent ? spec.count : Math.max(1, Math.floor(spec.count * this.config.nonUrgentFraction));
  }

  private inWindow(c: Charge, now: number): number[] {
    return this.timesOf(`${c.limit}|${c.key}`).filter((x) => x > now - c.spec.windowMs && x <= now);
  }

  private allCharges(sans: string[], account: string): Charge[] {
    const out: Charge[] = [];
    const add = (limit: LimitName, key: string) => {
      const spec = this.config.limits[limit];
      if (spec) out.push({ limit, key, spec });
    };
    add('NewOrdersPerAccount', account);
    for (const d of registeredDomainsOf(sans)) add('CertificatesPerDomain', d);
    add('CertificatesPerFQDNSet', exactSetKey(sans));
    return out;
  }

  private charges(request: IssuanceRequest, now: number): Charge[] {
    const all = this.allCharges(request.sans, request.account ?? this.account);
    const ariExempt =
      this.config.ariRenewalsExempt &&
      request.isRenewal &&
      !(request.replaces !== undefined && this.isReplaced(request.replaces));
    if (ariExempt) return [];
    const issuedAt = this.issuedAt(exactSetKey(request.sans));
    const seenSet = issuedAt !== undefined && issuedAt > now - this.config.renewalLookbackMs;
    if (this.config.exactSetRenewalsExempt && seenSet)
      return all.filter((c) => c.limit === 'CertificatesPerFQDNSet');
    return all;
  }
}

/** Two ascending lists as one. */
function mergeSorted(a: readonly number[], b: readonly number[]): number[] {
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length)
    out.push(j >= b.length || (i < a.length && a[i] <= b[j]) ? a[i++] : b[j++]);
  return out;
}
