/** Builders for planner tests: readable inputs around a fixed start time. */
import { DAY_MS } from '../../src/core/clock.ts';
import type { AriInfo, PlanInput } from '../../src/hub/planner/renewal-policy.ts';

export const T0 = new Date('2025-01-01T00:00:00Z');
export const HOUR = 3_600_000;
export const MIN = 60_000;
export { DAY_MS as DAY };

/** T0 plus a number of days (fractions allowed). */
export const day = (d: number): Date => new Date(T0.getTime() + d * DAY_MS);
export const plus = (at: Date, ms: number): Date => new Date(at.getTime() + ms);

export function version(
  notBefore: Date,
  lifetimeDays: number,
  sans = ['www.example.com'],
  keyType = 'ecdsa-p256',
) {
  return { notBefore, notAfter: plus(notBefore, lifetimeDays * DAY_MS), sans, keyType };
}

export function ari(start: Date, end: Date, extra: Partial<AriInfo> = {}): AriInfo {
  return { suggestedWindow: { start, end }, fetchedAt: extra.fetchedAt ?? start, ...extra };
}

/** A 90-day ecdsa-p256 certificate for www.example.com issued at T0, evaluated at `now`. */
export function input(now: Date, over: Partial<PlanInput> = {}): PlanInput {
  return {
    now,
    certificate: { name: 'web', sans: ['www.example.com'], keyType: 'ecdsa-p256', lifetimeDays: 90 },
    current: version(T0, 90),
    jitterSeed: 'cert-web',
    ...over,
  };
}
