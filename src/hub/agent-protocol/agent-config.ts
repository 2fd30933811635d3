import { z } from 'zod';
import type { HubContext } from '../hub-context.ts';
import { attachRevisionNotifier } from './revision-notifier.ts';

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

const configs = new WeakMap<HubContext, AgentHubConfig>();

/** Composition root: wraps the store for revision wake-ups and remembers the agent settings for the routes. */
export function configureAgentProtocol(ctx: HubContext, config?: Partial<AgentHubConfig>): void {
  const full = agentHubConfigShape.agent.parse(config ?? {});
  configs.set(ctx, full);
  attachRevisionNotifier(ctx, full.revisionPollMs);
}

export const agentConfigOf = (ctx: HubContext): AgentHubConfig =>
  configs.get(ctx) ?? agentHubConfigShape.agent.parse({});
