import type { HubContext } from '../hub/hub-context.ts';
import type { Issuer } from '../issuers/issuer.ts';
import type { HubMetrics } from './hub-metrics.ts';

/**
 * Wraps every issuer in `ctx.issuers` so each `issue()` counts into certfleet_issuance_total and
 * certfleet_issuance_duration_seconds. Every issuance path (create, renew, planner) goes through these issuers,
 * so this is the one hook. Call after all issuers are registered; idempotent per issuer.
 */
export function instrumentIssuers(ctx: HubContext, metrics: HubMetrics): void {
  for (const [name, issuer] of ctx.issuers) {
    if ((issuer as { [INSTRUMENTED]?: true })[INSTRUMENTED]) continue;
    ctx.issuers.set(name, instrument(name, issuer, metrics));
  }
}

const INSTRUMENTED = Symbol('certfleet.instrumented');

function instrument(name: string, issuer: Issuer, metrics: HubMetrics): Issuer {
  return new Proxy(issuer, {
    get(target, prop) {
      if (prop === INSTRUMENTED) return true;
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== 'function') return value;
      if (prop !== 'issue') return value.bind(target);
      return async (...args: Parameters<Issuer['issue']>) => {
        const end = metrics.issuanceDuration.startTimer({ issuer: name });
        try {
          const out = await target.issue(...args);
          end({ result: 'success' });
          metrics.issuance.inc({ issuer: name, result: 'success' });
          return out;
        } catch (e) {
          end({ result: 'failure' });
          metrics.issuance.inc({ issuer: name, result: 'failure' });
          throw e;
        }
      };
    },
  });
}
