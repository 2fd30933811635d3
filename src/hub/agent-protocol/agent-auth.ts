import { CertfleetError } from '../../core/errors.ts';
import type { Endpoint } from '../../core/types.ts';
import {
  canonicalRequest,
  MAX_SKEW_MS,
  SIGNATURE_HEADERS,
  verifySignature,
} from '../../protocol/request-signature.ts';
import type { Store } from '../../store/store.ts';
import { decodeAgentKeys, type AgentKeys } from './agent-keys.ts';
import type { NonceLedger } from './shared-nonces.ts';

export interface AgentRequestParts {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawBody?: Buffer;
}

export interface AuthenticatedAgent {
  endpoint: Endpoint;
  keys: AgentKeys;
  actor: string;
}

/**
 * Past one long-poll (25 s by default) and its answer: an agent a renewal wakes after a quiet wait is still cached,
 * so waking ten thousand agents costs no endpoint and key reads (two round trips each on PostgreSQL). Changes are
 * not waited for: they drop entries at once through the store's events; the TTL only bounds what a change the
 * events never told of (none known) could leave.
 */
const AUTH_CACHE_TTL_MS = 60_000;

interface AuthEntry {
  endpoint?: Endpoint;
  keys?: AgentKeys;
  until: number;
}

/**
 * Endpoint + keys per endpoint id, for one hub: each signed request needs both, and a renewal makes every agent
 * send three within seconds. Any change to an endpoint (enrolled with new keys, updated, deleted), made through
 * this hub or relayed from another (PostgreSQL), drops its entry when committed; a resync drops them all. Expired
 * entries are dropped every TTL, so the cache holds the agents heard from lately, not every agent ever seen.
 */
export class AgentAuthCache {
  private readonly entries = new Map<string, AuthEntry>();
  private sweepAt = 0;
  /** Counts the changes seen: a read that a change overtook is answered but not kept. */
  private changes = 0;
  private readonly unsubscribe: Array<() => void>;

  constructor(
    private readonly store: Store,
    private readonly ttlMs = AUTH_CACHE_TTL_MS,
  ) {
    this.unsubscribe = [
      store.events.on('endpoint.changed', (e) => {
        this.changes++;
        this.entries.delete(e.endpoint.id);
      }),
      store.events.on('store.resynced', () => {
        this.changes++;
        this.entries.clear();
      }),
    ];
  }

  async lookup(endpointId: string, now: number): Promise<AuthEntry> {
    const hit = this.entries.get(endpointId);
    if (hit && hit.until > now) return hit;
    const before = this.changes;
    const endpoint = await this.store.getEndpointById(endpointId);
    const stored = endpoint && (await this.store.agentPublicKey(endpointId));
    const entry = { endpoint, keys: stored ? decodeAgentKeys(stored) : undefined, until: now + this.ttlMs };
    if (now >= this.sweepAt) {
      for (const [id, e] of this.entries) if (e.until <= now) this.entries.delete(id);
      this.sweepAt = now + this.ttlMs;
    }
    if (endpoint && this.changes === before) this.entries.set(endpointId, entry);
    return entry;
  }

  /** Entries held now (expired ones included until the next sweep). */
  get size(): number {
    return this.entries.size;
  }

  close(): void {
    for (const off of this.unsubscribe) off();
  }
}

const header = (h: AgentRequestParts['headers'], name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

const unauthenticated = (message: string, hint: string) =>
  new CertfleetError('UNAUTHENTICATED', message, hint);

/** Verifies a signed agent request (see request-signature.ts) and returns the endpoint it speaks for. */
export async function authenticateAgent(
  cache: AgentAuthCache,
  nonces: NonceLedger,
  req: AgentRequestParts,
  now: number,
): Promise<AuthenticatedAgent> {
  const endpointId = header(req.headers, SIGNATURE_HEADERS.endpoint);
  const timestamp = header(req.headers, SIGNATURE_HEADERS.timestamp);
  const nonce = header(req.headers, SIGNATURE_HEADERS.nonce);
  const signature = header(req.headers, SIGNATURE_HEADERS.signature);
  if (!endpointId || !timestamp || !nonce || !signature) {
    throw unauthenticated(
      'missing agent signature headers',
      'agent requests must be signed; enroll with `certfleet agent enroll`',
    );
  }
  const ts = Number(timestamp);
  if (!Number.isFinite(ts) || Math.abs(now - ts) > MAX_SKEW_MS) {
    throw unauthenticated(
      'agent request timestamp is outside the 5 minute window',
      "synchronise the endpoint's clock (NTP) with the hub",
    );
  }
  if (!/^[0-9a-f-]{36}$/.test(endpointId) || nonce.length < 16 || nonce.length > 64) {
    throw unauthenticated('malformed agent signature headers', 'upgrade the agent');
  }
  const { endpoint, keys } = await cache.lookup(endpointId, now);
  if (!endpoint || !keys) {
    throw unauthenticated(
      'this agent is not enrolled',
      'enroll it again with a new token (`certfleet endpoint enroll-token`)',
    );
  }
  const canonical = canonicalRequest(req.method, req.url, timestamp, nonce, req.rawBody);
  if (!verifySignature(keys.signing, canonical, signature)) {
    throw unauthenticated(
      'invalid agent request signature',
      "check the agent's key in its state directory, or re-enroll",
    );
  }
  // Only after the signature checks out, so unauthenticated traffic cannot fill the nonce cache.
  if (!(await nonces.remember(`${endpointId}:${nonce}`, now))) {
    throw unauthenticated('replayed agent request (nonce already used)', 'each request needs a fresh nonce');
  }
  return { endpoint, keys, actor: `agent:${endpoint.name}` };
}
