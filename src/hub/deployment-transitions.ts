import type { Deployment, DeploymentState } from '../core/types.ts';
import type { Store } from '../store/store.ts';
import type { HubContext } from './hub-context.ts';

export interface DeploymentTransition {
  deployment: Deployment;
  subscriptionId: string;
  versionId: string;
  state: DeploymentState;
  actor: string;
}

export type TransitionListener = (t: DeploymentTransition) => void;

const listeners = new WeakMap<HubContext, Set<TransitionListener>>();

/**
 * Calls `listener` after every committed `transitionDeployment` made through `ctx.store`, whoever made it (agent
 * report route, connectors, probes). Wraps `ctx.store` once, like the revision notifier: call at the composition
 * root before routes capture `ctx.store`. Listeners must not throw or block; they run after the commit.
 */
export function onDeploymentTransition(ctx: HubContext, listener: TransitionListener): () => void {
  let set = listeners.get(ctx);
  if (!set) {
    const created = new Set<TransitionListener>();
    set = created;
    listeners.set(ctx, created);
    const store = ctx.store;
    ctx.store = new Proxy(store, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target) as unknown;
        if (typeof value !== 'function') return value;
        if (prop === 'transitionDeployments') {
          // Batched agent reports (agent-protocol/report-writer.ts): one commit, then each transition is announced.
          return async (...args: Parameters<Store['transitionDeployments']>) => {
            const deployments = await target.transitionDeployments(...args);
            args[0].forEach(({ subscriptionId, versionId, state, actor }, i) => {
              for (const l of [...created]) {
                try {
                  l({ deployment: deployments[i], subscriptionId, versionId, state, actor });
                } catch {
                  // a listener's bug must not fail the reports that triggered it
                }
              }
            });
            return deployments;
          };
        }
        if (prop !== 'transitionDeployment') return value.bind(target);
        return async (...args: Parameters<Store['transitionDeployment']>) => {
          const deployment = await target.transitionDeployment(...args);
          const [subscriptionId, versionId, state, , actor] = args;
          for (const l of [...created]) {
            try {
              l({ deployment, subscriptionId, versionId, state, actor });
            } catch {
              // a listener's bug must not fail the report that triggered it
            }
          }
          return deployment;
        };
      },
    }) as Store;
  }
  set.add(listener);
  return () => set.delete(listener);
}
