import type { Subscription } from './types.ts';

/** The fields of a subscription that say how to deploy (everything but ids and times), in one list. */
export const SUBSCRIPTION_SPEC_FIELDS = [
  'outputs',
  'configTest',
  'reload',
  'window',
  'verify',
  'certbotLineage',
] as const satisfies ReadonlyArray<keyof Subscription>;

export type SubscriptionSpec = Pick<Subscription, (typeof SUBSCRIPTION_SPEC_FIELDS)[number]>;

/**
 * The deployment spec of a subscription (or of a file's or request's subscription entry), with only the fields
 * that are set: what the store keeps, apply compares and the agent receives, built in this one place.
 */
export function subscriptionSpecOf(s: SubscriptionSpec): SubscriptionSpec {
  const spec: Record<string, unknown> = { outputs: s.outputs ?? [] };
  for (const key of SUBSCRIPTION_SPEC_FIELDS) {
    if (key !== 'outputs' && s[key] !== undefined && s[key] !== '') spec[key] = s[key];
  }
  return spec as SubscriptionSpec;
}
