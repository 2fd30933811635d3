/**
 * Agents for bench/convergence.ts, in their own process (the parent forks two), so the hub's event loop and CPU
 * are measured without the clients' work in the same process. Each agent: its own key pair, enrollment, keep-alive
 * HTTPS client; loop: signed long-poll → bundle (inlined in the answer when `have=` is sent, else fetched) → open
 * the sealed key with its X25519 key → signed `installed` report.
 *
 * IPC in: {agents: [{name, enrollToken, subscriptionId}], url, caPem, inline}, then {stop: true}.
 * IPC out: {enrolled}, {installed: versionId, count, at, desiredAt, bundleAt} once all of this process's agents
 * installed a version, {error}.
 */
import { setMaxListeners } from 'node:events';
import { AgentClient } from '../src/agent/agent-client.ts';
import { Backoff, sleep } from '../src/agent/backoff.ts';
import { generateAgentKeys, publicKeysOf, type AgentKeys } from '../src/agent/agent-identity.ts';
import { openSealedKey } from '../src/protocol/sealed-key.ts';
import type { BundleResponse } from '../src/protocol/wire.ts';

interface Setup {
  agents: Array<{ name: string; enrollToken: string; subscriptionId: string }>;
  url: string;
  caPem: string;
  inline: boolean;
  /** What each agent reports for a new version, in order, in one report (default: `installed`). */
  states?: Array<'delivered' | 'installed' | 'reloaded' | 'verified'>;
  /**
   * At most this many of this process's agents make their first exchange (connect, first poll, first report) at
   * once; default: all at once. A fleet's agents start over minutes: a thousand TLS connects in one instant
   * time out and are reset on a loaded machine (retries for minutes), which measures the bench, not the hub.
   */
  firstSyncConcurrency?: number;
}

interface BenchAgent {
  endpointId: string;
  subscriptionId: string;
  keys: AgentKeys;
  client: AgentClient;
  since: number;
  versionId?: string;
}

const now = () => performance.timeOrigin + performance.now();
const abort = new AbortController();
// Hundreds of simulated agents share this one signal, each in-flight request listening on it.
setMaxListeners(0, abort.signal);
const agents: BenchAgent[] = [];
/** Per version: installs so far and the latest time of each phase. */
const progress = new Map<string, { count: number; desiredAt: number; bundleAt: number; at: number }>();

async function pool<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

/** Gates the agents' first exchanges (Setup.firstSyncConcurrency); open when not set. */
let firstSyncSlots = Infinity;
const firstSyncWaiters: Array<() => void> = [];
const firstSyncDone = new WeakSet<BenchAgent>();
async function firstSyncSlot(a: BenchAgent): Promise<void> {
  if (firstSyncDone.has(a)) return;
  while (firstSyncSlots <= 0) await new Promise<void>((r) => firstSyncWaiters.push(r));
  firstSyncSlots--;
}
function firstSyncEnd(a: BenchAgent): void {
  if (firstSyncDone.has(a)) return;
  firstSyncDone.add(a);
  firstSyncSlots++;
  firstSyncWaiters.shift()?.();
}

async function agentLoopOnce(
  a: BenchAgent,
  inline: boolean,
  states: Setup['states'] = ['installed'],
  answered: () => void = () => undefined,
): Promise<void> {
  const signal = abort.signal;
  await firstSyncSlot(a);
  while (!signal.aborted) {
    const state = await a.client.desired(a.since, 25, {
      signal,
      ...(inline ? { have: a.versionId ? [a.versionId] : [] } : {}),
    });
    answered();
    a.since = state.revision;
    const sub = state.subscriptions[0];
    const v = sub?.version;
    if (!v || v.id === a.versionId) continue;
    const desiredAt = now();
    const bundle: BundleResponse = sub.bundle ?? (await a.client.bundle(v.id, { signal }));
    const bundleAt = now();
    openSealedKey(bundle.sealedKey, a.keys.sealing, a.endpointId, v.id);
    const at = new Date().toISOString();
    await a.client.report(
      states.map((state) => ({ subscriptionId: a.subscriptionId, versionId: v.id, state, at })),
      { signal },
    );
    a.versionId = v.id;
    firstSyncEnd(a);
    const p = progress.get(v.id) ?? { count: 0, desiredAt: 0, bundleAt: 0, at: 0 };
    progress.set(v.id, p);
    p.count++;
    p.desiredAt = Math.max(p.desiredAt, desiredAt);
    p.bundleAt = Math.max(p.bundleAt, bundleAt);
    p.at = now();
    if (p.count === agents.length) process.send!({ installed: v.id, ...p });
  }
}

/**
 * A real agent retries after a failed poll or report (a busy hub times out) with exponential backoff and full
 * jitter (src/agent/backoff.ts, its defaults): so do these. A fixed 1 s retry kept thousands of agents
 * reconnecting in step to a hub already behind, each retry a new TLS handshake.
 */
async function agentLoop(a: BenchAgent, inline: boolean, states?: Setup['states']): Promise<void> {
  const backoff = new Backoff();
  while (!abort.signal.aborted) {
    try {
      await agentLoopOnce(a, inline, states, () => backoff.reset());
    } catch (e) {
      if (abort.signal.aborted) return;
      retries++;
      if (retries % 100 === 1)
        process.send!({
          error: `agent request failed (retrying, ${retries} so far): ${(e as Error).message}`,
        });
      await sleep(backoff.next(), abort.signal);
    }
  }
}

let retries = 0;

/**
 * Enrolment as the real agent's first run would retry it: a hub busy with thousands of agents connecting at once
 * may time connections out before accepting them (nothing reached it, the token is still unused). A refusal of
 * the token itself is not retried.
 */
async function enrollWithRetry(url: string, caPem: string, body: Parameters<AgentClient['enroll']>[0]) {
  const backoff = new Backoff();
  for (let attempt = 1; ; attempt++) {
    const bootstrap = new AgentClient(url, caPem);
    try {
      return await bootstrap.enroll(body);
    } catch (e) {
      if (attempt >= 5 || !/ETIMEDOUT|ECONNRESET|ECONNREFUSED/.test((e as Error).message)) throw e;
      retries++;
      await sleep(backoff.next(), abort.signal);
    } finally {
      bootstrap.close();
    }
  }
}

process.on('message', (msg: Partial<Setup> & { stop?: boolean }) => {
  if (msg.stop) {
    abort.abort();
    for (const a of agents) a.client.close();
    process.disconnect();
    return;
  }
  const setup = msg as Setup;
  firstSyncSlots = setup.firstSyncConcurrency ?? Infinity;
  void (async () => {
    await pool(setup.agents, 16, async ({ enrollToken, subscriptionId }) => {
      const keys = generateAgentKeys();
      const { endpointId } = await enrollWithRetry(setup.url, setup.caPem, {
        token: enrollToken,
        ...publicKeysOf(keys),
      });
      agents.push({
        endpointId,
        subscriptionId,
        keys,
        since: -1,
        client: new AgentClient(setup.url, setup.caPem, { endpointId, keys }, { maxSockets: 2 }),
      });
    });
    process.send!({ enrolled: agents.length });
    for (const a of agents) {
      agentLoop(a, setup.inline, setup.states).catch((e: Error) => {
        if (!abort.signal.aborted) process.send!({ error: `agent loop failed: ${e.message}` });
      });
    }
  })().catch((e: Error) => process.send!({ error: e.message }));
});
// The parent sends the agents only after this, so a message cannot arrive before the listener (a 1,000 run once had
// an agent process that never started its agents; an early message was suspected, not proven).
process.send!({ ready: true });
