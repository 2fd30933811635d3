/**
 * What needs a person first: the fleet overview's order, as an ordered chain of pure checks (first match wins),
 * like the renewal chain in src/hub/planner/renewal-policy.ts. "Close to expiry" is a fraction of each version's
 * own lifetime (the renewal point: 2/3, or 1/2 under 10 days) or the start of its ARI window, never a fixed number
 * of days: a 6-day certificate at day 2 is fine, a 90-day one with 2 days left is not.
 */
import type { DeploymentState } from '../../core/types.ts';
import { renewFractionFor } from '../planner/renewal-policy.ts';

/** In attention order; `ok` rows come last. */
export const ATTENTION_KINDS = [
  'diverged',
  'failed',
  'rolled_back',
  'window_missed',
  'agent_silent',
  'renewal_failing',
  'expiring',
  'in_progress',
  'ok',
] as const;
export type AttentionKind = (typeof ATTENTION_KINDS)[number];

export interface AttentionInput {
  now: Date;
  state?: DeploymentState;
  /** The deployment is waiting for a window that already closed. */
  windowEndedAt?: Date;
  /** Agent endpoints that checked in before, and how long ago they last did. */
  silentForMs?: number;
  silentAfterMs: number;
  renewalFailures: number;
  notBefore?: Date;
  notAfter?: Date;
  /** The CA's suggested renewal window (ARI) for the current version. */
  ariStart?: Date;
}

export interface Attention {
  kind: AttentionKind;
  /** Index in ATTENTION_KINDS: lower sorts first. */
  rank: number;
  /** Elapsed fraction of the current version's lifetime (0..1+), for ordering within a kind. */
  lifeFraction: number;
  /** A sentence for the row. */
  why: string;
}

type Check = (i: AttentionInput, lifeFraction: number) => [AttentionKind, string] | undefined;

const CHECKS: readonly Check[] = [
  (i) =>
    i.state === 'diverged' ? ['diverged', 'probes see another certificate than the current one'] : undefined,
  (i) => (i.state === 'failed' ? ['failed', 'the deployment failed'] : undefined),
  (i) => (i.state === 'rolled_back' ? ['rolled_back', 'the deployment was rolled back'] : undefined),
  (i) =>
    i.state === 'waiting_window' && i.windowEndedAt && i.windowEndedAt <= i.now
      ? ['window_missed', `the change window closed at ${i.windowEndedAt.toISOString()} without a reload`]
      : undefined,
  (i) =>
    i.silentForMs !== undefined && i.silentForMs >= i.silentAfterMs
      ? ['agent_silent', `the agent has not checked in for ${Math.round(i.silentForMs / 60_000)} min`]
      : undefined,
  (i) =>
    i.renewalFailures > 0
      ? ['renewal_failing', `renewal failed ${i.renewalFailures} time(s) in a row`]
      : undefined,
  (i, f) => {
    if (!i.notBefore || !i.notAfter) return undefined;
    const lifetime = i.notAfter.getTime() - i.notBefore.getTime();
    if (i.ariStart && i.ariStart <= i.now) return ['expiring', "inside the CA's renewal window (ARI)"];
    const point = renewFractionFor(lifetime);
    return f >= point
      ? [
          'expiring',
          `${Math.round(f * 100)}% of its lifetime elapsed (renews at ${Math.round(point * 100)}%)`,
        ]
      : undefined;
  },
  (i) =>
    i.state !== undefined && i.state !== 'verified'
      ? ['in_progress', `deployment ${i.state.replace('_', ' ')}`]
      : undefined,
];

export function attentionOf(i: AttentionInput): Attention {
  const lifeFraction =
    i.notBefore && i.notAfter
      ? (i.now.getTime() - i.notBefore.getTime()) / Math.max(1, i.notAfter.getTime() - i.notBefore.getTime())
      : 0;
  for (const check of CHECKS) {
    const hit = check(i, lifeFraction);
    if (hit) return { kind: hit[0], rank: ATTENTION_KINDS.indexOf(hit[0]), lifeFraction, why: hit[1] };
  }
  return { kind: 'ok', rank: ATTENTION_KINDS.indexOf('ok'), lifeFraction, why: '' };
}

/** Attention order: kind, then the larger elapsed lifetime fraction, then the given tie-break (names). */
export function byAttention<T extends { attention: Attention; key: string }>(a: T, b: T): number {
  return (
    a.attention.rank - b.attention.rank ||
    b.attention.lifeFraction - a.attention.lifeFraction ||
    (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)
  );
}
