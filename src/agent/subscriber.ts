import type { Logger } from '../core/log.ts';
import { errorMessage } from '../core/errors.ts';
import type { AgentClient } from './agent-client.ts';
import { Backoff, sleep } from './backoff.ts';
import type { DesiredState } from '../protocol/wire.ts';

export interface SubscribeOptions {
  signal: AbortSignal;
  /** Called with every state whose revision differs from the last one seen; never concurrently. */
  onState: (state: DesiredState) => Promise<void> | void;
  onConnection?: (up: boolean, error?: unknown) => void;
  longPollSeconds?: number;
  backoff?: Backoff;
  logger?: Logger;
}

/**
 * Holds the long-poll on the hub. Starts with a full resync (`since=-1`); after a failure waits with jittered
 * exponential backoff and resumes from the last revision seen. Returns when the signal aborts.
 */
export async function subscribeDesiredState(client: AgentClient, opts: SubscribeOptions): Promise<void> {
  const backoff = opts.backoff ?? new Backoff();
  const wait = opts.longPollSeconds ?? 25;
  let since = -1;
  let up: boolean | undefined;
  while (!opts.signal.aborted) {
    let state: DesiredState;
    try {
      // After a failure ask without holding, so reconnecting (and flushing queued reports) is not delayed by a
      // long-poll that finds nothing new.
      state = await client.desired(since, up === true ? wait : 0, { signal: opts.signal });
    } catch (e) {
      if (opts.signal.aborted) return;
      if (up !== false) opts.onConnection?.(false, e);
      up = false;
      const delay = backoff.next();
      opts.logger?.warn({ err_message: errorMessage(e), retry_in_ms: delay }, 'hub long-poll failed');
      await sleep(delay, opts.signal);
      continue;
    }
    backoff.reset();
    if (up !== true) opts.onConnection?.(true);
    up = true;
    if (state.revision !== since) {
      since = state.revision;
      await opts.onState(state);
    }
  }
}
