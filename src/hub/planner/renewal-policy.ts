/**
 * When should a certificate be (re)issued? An ordered chain of pure functions, cert-manager style: each looks at
 * a PlanInput and either returns a Decision or passes (undefined); the first decision wins. A decision to issue
 * then goes through the backoff gate, which holds it back after recent failures. No I/O, no hidden clock: `now`
 * is part of the input, so the whole policy is tested as tables and simulated over months with a ManualClock.
 */
import { createHash } from 'node:crypto';
import {
  DAY_MS,
  HOUR_MS,
  MINUTE_MS,
  formatDays,
  formatInstant,
  formatRelative,
  formatSpan,
} from './time-format.ts';

/** RFC 9773 §4.2 renewalInfo, as the issuer fetched it. */
export interface AriInfo {
  suggestedWindow: { start: Date; end: Date };
  /** When the CA asked us to poll again (the Retry-After header, as an absolute time). */
  retryAfter?: Date;
  fetchedAt: Date;
  explanationUrl?: string;
}

export interface PlanInput {
  now: Date;
  /** What the certificate should be (desired state). */
  certificate: { name: string; sans: string[]; keyType: string; lifetimeDays: number };
  /** The newest issued version, if any. */
  current?: { notBefore: Date; notAfter: Date; sans: string[]; keyType: string };
  /** ARI for `current`, when the CA offers it. */
  ari?: AriInfo;
  /**
   * Consecutive failed issuance attempts since the last success; `retryAfter`: the CA answered the last one with a
   * Retry-After (a rate limit, an outage), as an absolute time.
   */
  failures?: { count: number; lastFailureAt: Date; lastError?: string; retryAfter?: Date };
  /** `current` was revoked: it must be replaced whatever its dates say. */
  revoked?: { at: Date; reason: string };
  /**
   * An earlier version was revoked and `current`, its replacement, is not yet served (verified) on every subscribed
   * endpoint: the revoked one may still be what clients see.
   */
  replacingRevoked?: { at: Date; reason: string; unserved: number; subscribed: number };
  /**
   * A new version was asked for and none was issued since: renew now whose attempt failed, a config change, an
   * emergency campaign (`urgent`: it may spend the reserved rate-limit headroom whatever the dates say).
   */
  reissueRequested?: { at: Date; reason: string; urgent?: boolean };
  /** Stable per certificate (its id), so jitter and the point picked in an ARI window do not move between runs. */
  jitterSeed: string;
}

export type DecisionReason =
  | 'Revoked'
  | 'ReissueRequested'
  | 'NoVersion'
  | 'Expired'
  | 'SansChanged'
  | 'KeyTypeChanged'
  | 'AriWindow'
  | 'LifetimeElapsed'
  | 'BackingOff'
  | 'NotDue';

export interface Decision {
  /** Issue a new version now. */
  reissue: boolean;
  /** Stable code for machines, filters and metrics. */
  reason: DecisionReason;
  /** A sentence with dates, for people. */
  message: string;
  /** When renewal should happen (past or now when `reissue`), or the earliest it next could. */
  dueAt: Date;
  /** Past the point of no return: may spend reserved rate-limit headroom, and retries come faster. */
  urgent: boolean;
}

export interface RenewalPolicy {
  /** Renew when this fraction of the lifetime has elapsed (certbot, cert-manager, LE guidance: 2/3). */
  renewAtFraction: number;
  /** Lifetimes shorter than this renew at `shortLifetimeRenewAtFraction` (LE's 6-day certificates: 1/2). */
  shortLifetimeMs: number;
  shortLifetimeRenewAtFraction: number;
  /** Renew up to this fraction of the lifetime earlier, spread per certificate, so a fleet does not renew at once. */
  jitterFraction: number;
  /**
   * When less than this fraction of the lifetime remains, decisions are urgent. 1/6 sits halfway between the
   * normal renewal point (1/3 left) and expiry, so normal retries and urgent retries get equal time: 15 days of
   * a 90-day certificate, 1 day of a 6-day one, both still long enough for an alert to reach a person.
   */
  urgentFraction: number;
  /** Backoff after n consecutive failures: base · 2^(n-1) ... */
  backoffBaseMs: number;
  /** ... capped at this while not urgent, */
  backoffCapMs: number;
  /** ... at this once urgent, */
  urgentBackoffCapMs: number;
  /** ... and never more than the remaining validity divided by this, */
  backoffRemainingDivisor: number;
  /**
   * ... but the cap never shrinks below this. 12 min matches the refill of Let's Encrypt's "5 authorization
   * failures per hostname per account per hour" limit: retrying faster only earns rate-limit errors.
   */
  backoffCapFloorMs: number;
  /**
   * A CA's Retry-After on a failed order is honoured up to this long after the failure (a garbage or year-long
   * value must not park a certificate); it never holds back an urgent renewal longer than `urgentBackoffCapMs`.
   */
  retryAfterCapMs: number;
  /** ARI polling when the CA sent no Retry-After, and the bounds Retry-After is clamped to (RFC 9773 §4.3). */
  ariDefaultPollMs: number;
  ariMinPollMs: number;
  ariMaxPollMs: number;
}

export const DEFAULT_POLICY: Readonly<RenewalPolicy> = Object.freeze({
  renewAtFraction: 2 / 3,
  shortLifetimeMs: 10 * DAY_MS,
  shortLifetimeRenewAtFraction: 1 / 2,
  jitterFraction: 0.05,
  urgentFraction: 1 / 6,
  backoffBaseMs: MINUTE_MS,
  backoffCapMs: 6 * HOUR_MS,
  urgentBackoffCapMs: 30 * MINUTE_MS,
  backoffRemainingDivisor: 10,
  backoffCapFloorMs: 12 * MINUTE_MS,
  retryAfterCapMs: DAY_MS,
  ariDefaultPollMs: 6 * HOUR_MS,
  ariMinPollMs: MINUTE_MS,
  ariMaxPollMs: DAY_MS,
});

/** One link of the chain: a decision, or undefined to let the next link decide. */
export type PolicyCheck = (input: PlanInput, policy: RenewalPolicy) => Decision | undefined;

// ---------------------------------------------------------------------------------------------------------------
// Shared arithmetic, exported for tests and for the plan view.

/** A deterministic number in [0, 1) from a seed: a stand-in for "uniformly random" that is stable per certificate. */
export function seededFraction(seed: string, salt: string): number {
  const h = createHash('sha256').update(`${salt}\0${seed}`).digest();
  return h.readUIntBE(0, 6) / 2 ** 48;
}

type Version = NonNullable<PlanInput['current']>;

const lifetimeOf = (v: Version): number => v.notAfter.getTime() - v.notBefore.getTime();

/** The point of no return: from here on, decisions are urgent. */
export function urgentAt(current: Version, policy: RenewalPolicy = DEFAULT_POLICY): Date {
  return new Date(current.notAfter.getTime() - policy.urgentFraction * lifetimeOf(current));
}

export function isUrgent(input: PlanInput, policy: RenewalPolicy = DEFAULT_POLICY): boolean {
  return input.current !== undefined && input.now.getTime() >= urgentAt(input.current, policy).getTime();
}

/** The fraction of the lifetime after which a version renews, before jitter. */
export function renewFractionFor(lifetimeMs: number, policy: RenewalPolicy = DEFAULT_POLICY): number {
  return lifetimeMs < policy.shortLifetimeMs ? policy.shortLifetimeRenewAtFraction : policy.renewAtFraction;
}

/** How much earlier than the nominal point this certificate renews: in [0, jitterFraction · lifetime). */
export function jitterMs(seed: string, lifetimeMs: number, policy: RenewalPolicy = DEFAULT_POLICY): number {
  return Math.floor(seededFraction(seed, 'lifetime-jitter') * policy.jitterFraction * lifetimeMs);
}

/** Renewal time by lifetime alone: notBefore + fraction · lifetime − jitter. */
export function lifetimeRenewalPoint(
  current: Version,
  seed: string,
  policy: RenewalPolicy = DEFAULT_POLICY,
): Date {
  const lifetime = lifetimeOf(current);
  const nominal = current.notBefore.getTime() + renewFractionFor(lifetime, policy) * lifetime;
  return new Date(nominal - jitterMs(seed, lifetime, policy));
}

/** RFC 9773 §4.2: a (here: seeded) uniformly random time within the suggested window. */
export function ariRenewalPoint(ari: AriInfo, seed: string): Date {
  const start = ari.suggestedWindow.start.getTime();
  const end = ari.suggestedWindow.end.getTime();
  // Salted with the window, so a window the CA moves (e.g. ahead of a revocation) gets a fresh draw.
  const u = seededFraction(seed, `ari:${start}:${end}`);
  return new Date(start + Math.floor(u * (end - start)));
}

/** An ARI window is usable when both ends are valid dates and it is not empty (RFC 9773: end after start). */
export function ariWindowValid(ari: AriInfo | undefined): ari is AriInfo {
  if (!ari) return false;
  const s = ari.suggestedWindow.start.getTime();
  const e = ari.suggestedWindow.end.getTime();
  return Number.isFinite(s) && Number.isFinite(e) && e > s;
}

/**
 * When to fetch renewalInfo again (RFC 9773 §4.3): at the CA's Retry-After, clamped to [1 min, 1 day] after the
 * last fetch; 6 h after it when the CA sent none; at once when we never fetched. Never earlier than `now`.
 */
export function nextAriFetch(
  ari: AriInfo | undefined,
  now: Date,
  policy: RenewalPolicy = DEFAULT_POLICY,
): Date {
  if (!ari) return now;
  const fetched = ari.fetchedAt.getTime();
  const wanted = ari.retryAfter ? ari.retryAfter.getTime() : fetched + policy.ariDefaultPollMs;
  const clamped = Math.min(Math.max(wanted, fetched + policy.ariMinPollMs), fetched + policy.ariMaxPollMs);
  return new Date(Math.max(clamped, now.getTime()));
}

/**
 * Backoff delay after `count` consecutive failures: base · 2^(count-1), capped at 6 h (30 min once urgent), and
 * at a tenth of the remaining validity when little remains; the cap never goes below the floor.
 */
export function backoffDelayMs(
  count: number,
  remainingMs: number | undefined,
  urgent: boolean,
  policy: RenewalPolicy = DEFAULT_POLICY,
): number {
  if (count <= 0) return 0;
  let cap = urgent ? policy.urgentBackoffCapMs : policy.backoffCapMs;
  if (remainingMs !== undefined)
    cap = Math.min(cap, Math.max(0, remainingMs) / policy.backoffRemainingDivisor);
  cap = Math.max(cap, policy.backoffCapFloorMs);
  // 2^(count-1) overflows to Infinity for huge counts; min() handles that.
  return Math.min(policy.backoffBaseMs * 2 ** Math.min(count - 1, 60), cap);
}

// ---------------------------------------------------------------------------------------------------------------
// The chain.

function normalizeSans(sans: string[]): string[] {
  return [...new Set(sans.map((s) => s.trim().toLowerCase().replace(/\.$/, '')))].sort();
}

function fractionWords(f: number): string {
  if (Math.abs(f - 2 / 3) < 1e-9) return 'two thirds';
  if (Math.abs(f - 1 / 2) < 1e-9) return 'half';
  if (Math.abs(f - 3 / 4) < 1e-9) return 'three quarters';
  return `${Math.round(f * 100)}%`;
}

function urgentNote(input: PlanInput): string {
  if (!input.current) return '';
  const left = input.current.notAfter.getTime() - input.now.getTime();
  return ` Only ${formatSpan(left)} of validity left (expires ${formatInstant(input.current.notAfter)}): urgent.`;
}

/**
 * A revoked current version, or a requested reissue that has not happened yet, stays due until a new version
 * exists: the first link, so a replacement that failed after a revocation is retried (with backoff) like any
 * renewal instead of being forgotten. A revoked certificate fails in clients, so that is urgent. Once the
 * replacement exists the certificate stays due (urgent, reason `Revoked`) until the replacement is served on every
 * subscribed endpoint, but without another issuance: what is missing then is delivery, not a version.
 */
export const reissueWanted: PolicyCheck = (input, policy) => {
  const { now, certificate, current, revoked, replacingRevoked, reissueRequested } = input;
  if (current && revoked)
    return {
      reissue: true,
      reason: 'Revoked',
      message: `The current version of ${certificate.name} was revoked (${revoked.reason}) at ${formatInstant(revoked.at)}; it stays due until a replacement is issued and served.`,
      dueAt: revoked.at,
      urgent: true,
    };
  if (!reissueRequested && current && replacingRevoked && replacingRevoked.unserved > 0) {
    const r = replacingRevoked;
    return {
      reissue: false,
      reason: 'Revoked',
      message: `A version of ${certificate.name} was revoked (${r.reason}) at ${formatInstant(r.at)}; its replacement is issued but not yet served on ${r.unserved} of ${r.subscribed} subscribed endpoint${r.subscribed === 1 ? '' : 's'}; it stays due until it is.`,
      dueAt: r.at,
      urgent: true,
    };
  }
  if (!reissueRequested) return undefined;
  const urgent = reissueRequested.urgent === true || isUrgent(input, policy);
  return {
    reissue: true,
    reason: 'ReissueRequested',
    message: `A new version of ${certificate.name} was requested (${reissueRequested.reason}) at ${formatInstant(reissueRequested.at)} (${formatRelative(reissueRequested.at, now)}); it stays due until one is issued.${urgent && isUrgent(input, policy) ? urgentNote(input) : ''}`,
    dueAt: reissueRequested.at,
    urgent,
  };
};

export const noVersion: PolicyCheck = ({ now, certificate, current }) =>
  current
    ? undefined
    : {
        reissue: true,
        reason: 'NoVersion',
        message: `No version of ${certificate.name} has been issued yet; issuing one now.`,
        dueAt: now,
        urgent: false,
      };

export const expired: PolicyCheck = ({ now, certificate, current }) =>
  current && now.getTime() >= current.notAfter.getTime()
    ? {
        reissue: true,
        reason: 'Expired',
        message: `The current version of ${certificate.name} expired at ${formatInstant(current.notAfter)} (${formatRelative(current.notAfter, now)}); reissuing urgently.`,
        dueAt: now,
        urgent: true,
      }
    : undefined;

export const sansChanged: PolicyCheck = (input, policy) => {
  const { now, certificate, current } = input;
  if (!current) return undefined;
  const want = normalizeSans(certificate.sans);
  const have = normalizeSans(current.sans);
  const added = want.filter((s) => !have.includes(s));
  const removed = have.filter((s) => !want.includes(s));
  if (added.length === 0 && removed.length === 0) return undefined;
  const parts = [
    added.length ? `added ${added.join(', ')}` : '',
    removed.length ? `removed ${removed.join(', ')}` : '',
  ].filter(Boolean);
  const urgent = isUrgent(input, policy);
  return {
    reissue: true,
    reason: 'SansChanged',
    message: `The SANs of ${certificate.name} changed (${parts.join('; ')}); issuing a new version now.${urgent ? urgentNote(input) : ''}`,
    dueAt: now,
    urgent,
  };
};

export const keyTypeChanged: PolicyCheck = (input, policy) => {
  const { now, certificate, current } = input;
  if (!current || current.keyType === certificate.keyType) return undefined;
  const urgent = isUrgent(input, policy);
  return {
    reissue: true,
    reason: 'KeyTypeChanged',
    message: `The key type of ${certificate.name} changed from ${current.keyType} to ${certificate.keyType}; issuing a new version now.${urgent ? urgentNote(input) : ''}`,
    dueAt: now,
    urgent,
  };
};

/**
 * Follow the CA's suggested window (RFC 9773 §4.2). If the window has already ended, renew now (and treat it as
 * urgent: a CA moves the window into the past ahead of a revocation). The point is never later than the point
 * of no return, so a strange window cannot carry a certificate past it.
 */
export const ariWindow: PolicyCheck = (input, policy) => {
  const { now, certificate, current, ari, jitterSeed } = input;
  if (!current || !ariWindowValid(ari)) return undefined;
  const { start, end } = ari.suggestedWindow;
  const windowText = `${formatInstant(start)} – ${formatInstant(end)}`;
  const explanation = ari.explanationUrl ? ` (CA explanation: ${ari.explanationUrl})` : '';
  if (now.getTime() >= end.getTime()) {
    return {
      reissue: true,
      reason: 'AriWindow',
      message: `The CA's suggested renewal window for ${certificate.name} (${windowText}) has already ended; renewing now.${explanation}`,
      dueAt: now,
      urgent: true,
    };
  }
  const noReturn = urgentAt(current, policy).getTime();
  const at = new Date(Math.min(ariRenewalPoint(ari, jitterSeed).getTime(), noReturn));
  const urgent = isUrgent(input, policy);
  if (now.getTime() >= at.getTime()) {
    return {
      reissue: true,
      reason: 'AriWindow',
      message: `The CA suggests renewing ${certificate.name} within ${windowText}; the time picked in it, ${formatInstant(at)}, has come; renewing.${explanation}${urgent ? urgentNote(input) : ''}`,
      dueAt: at,
      urgent,
    };
  }
  return {
    reissue: false,
    reason: 'NotDue',
    message: `The CA suggests renewing ${certificate.name} within ${windowText}; renewing at ${formatInstant(at)} (${formatRelative(at, now)}).${explanation}`,
    dueAt: at,
    urgent: false,
  };
};

/** No ARI: renew at 2/3 of the lifetime (1/2 under 10 days), a little earlier per certificate (jitter). */
export const lifetimeElapsed: PolicyCheck = (input, policy) => {
  const { now, certificate, current, jitterSeed } = input;
  if (!current) return undefined;
  const lifetime = lifetimeOf(current);
  const at = lifetimeRenewalPoint(current, jitterSeed, policy);
  const how = `${fractionWords(renewFractionFor(lifetime, policy))} of its ${formatDays(lifetime)}-day lifetime`;
  const expires = `expires ${formatInstant(current.notAfter)}`;
  if (now.getTime() >= at.getTime()) {
    const urgent = isUrgent(input, policy);
    return {
      reissue: true,
      reason: 'LifetimeElapsed',
      message: `${certificate.name} reached ${how} at ${formatInstant(at)}; renewing (${expires}).${urgent ? urgentNote(input) : ''}`,
      dueAt: at,
      urgent,
    };
  }
  return {
    reissue: false,
    reason: 'NotDue',
    message: `${certificate.name} renews at ${how}, at ${formatInstant(at)} (${formatRelative(at, now)}); ${expires}.`,
    dueAt: at,
    urgent: false,
  };
};

/** Order matters: the first link that decides wins. */
export const RENEWAL_CHAIN: readonly PolicyCheck[] = Object.freeze([
  reissueWanted,
  noVersion,
  expired,
  sansChanged,
  keyTypeChanged,
  ariWindow,
  lifetimeElapsed,
]);

/**
 * Hold back a decision to issue after recent failures: exponential backoff from the last failure, or the CA's
 * Retry-After when that is later (capped at `retryAfterCapMs`; retrying sooner only earns another refusal and
 * spends New Orders per Account), never past the point of no return while not urgent, never past expiry. Once
 * urgent, urgency wins over the CA: Retry-After holds the retry back at most `urgentBackoffCapMs` after the failure,
 * because a refused order costs one attempt while an expired certificate takes the service down, and a CA's
 * Retry-After is often the end of a whole window while a rate-limit slot (a token) frees sooner. Returns undefined
 * to let the decision stand.
 */
export function backoffGate(
  input: PlanInput,
  decision: Decision,
  policy: RenewalPolicy,
): Decision | undefined {
  const f = input.failures;
  if (!decision.reissue || !f || f.count <= 0) return undefined;
  const { now, current } = input;
  const remaining = current ? current.notAfter.getTime() - now.getTime() : undefined;
  const failedAt = f.lastFailureAt.getTime();
  let retryAt = failedAt + backoffDelayMs(f.count, remaining, decision.urgent, policy);
  let caNote = '';
  if (f.retryAfter) {
    const asked = f.retryAfter.getTime();
    const honoured = Math.min(
      asked,
      failedAt + (decision.urgent ? policy.urgentBackoffCapMs : policy.retryAfterCapMs),
    );
    if (honoured > retryAt) retryAt = honoured;
    if (asked > now.getTime())
      caNote =
        honoured < asked
          ? ` The CA asked to wait until ${formatInstant(f.retryAfter)}; ${decision.urgent ? 'the renewal is urgent, so it is retried sooner' : `honoured for at most ${formatSpan(policy.retryAfterCapMs)}`}.`
          : ` The CA asked to wait until ${formatInstant(f.retryAfter)} (Retry-After).`;
  }
  if (current && !decision.urgent) retryAt = Math.min(retryAt, urgentAt(current, policy).getTime());
  if (current && remaining! > 0) retryAt = Math.min(retryAt, current.notAfter.getTime());
  if (retryAt <= now.getTime()) return undefined;
  const at = new Date(retryAt);
  const last = f.lastError ? ` (last error: ${f.lastError.slice(0, 200)})` : '';
  return {
    reissue: false,
    reason: 'BackingOff',
    message: `Issuing ${input.certificate.name} failed ${f.count} time${f.count === 1 ? '' : 's'}${last}; retrying at ${formatInstant(at)} (${formatRelative(at, now)}).${caNote} Wanted because: ${decision.message}`,
    dueAt: at,
    urgent: decision.urgent,
  };
}

/** Run the chain, then the backoff gate. Total: every input yields a decision. */
export function evaluateRenewal(
  input: PlanInput,
  policy: RenewalPolicy = DEFAULT_POLICY,
  chain: readonly PolicyCheck[] = RENEWAL_CHAIN,
): Decision {
  let decision: Decision | undefined;
  for (const check of chain) {
    decision = check(input, policy);
    if (decision) break;
  }
  // Unreachable with the default chain (noVersion or lifetimeElapsed always decide); kept total for custom chains.
  decision ??= {
    reissue: false,
    reason: 'NotDue',
    message: `No rule asks to renew ${input.certificate.name}.`,
    dueAt: input.now,
    urgent: false,
  };
  return backoffGate(input, decision, policy) ?? decision;
}
