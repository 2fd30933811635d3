import { z } from 'zod';
import type { Store } from '../../store/store.ts';
import { RevisionNotifier } from './revision-notifier.ts';

/** The `agent:` section of the hub config. */
export const agentHubConfigShape = {
  agent: z
    .strictObject({
      /** How long `GET /agent/desired` holds when nothing changed (agents may ask for less with `wait`). */
      longPollSeconds: z.number().int().min(1).max(300).default(25),
      /** Fallback poll of the store revision while agents wait (bumps by other hubs or processes). */
      revisionPollMs: z.number().int().min(50).max(60_000).default(1000),
    })
    .prefault({}),
};

export type AgentHubConfig = z.output<(typeof agentHubConfigShape)['agent']>;

/** What the agent routes are given: their settings and the notifier that wakes long-polls. */
export interface AgentProtocol {
  config: AgentHubConfig;
  notifier: RevisionNotifier;
}

/** Composition root: the agent settings (defaults filled in) and a revision notifier subscribed to `store`. */
export function createAgentProtocol(store: Store, config?: Partial<AgentHubConfig>): AgentProtocol {
  const full = agentHubConfigShape.agent.parse(config ?? {});
  return { config: full, notifier: RevisionNotifier.forStore(store, full.revisionPollMs) };
}
