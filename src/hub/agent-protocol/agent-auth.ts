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
 * Endpoint + keys per endpoint id, cached for a few seconds: when a renewal wakes a thousand agents, each sends
 * three signed requests within a second, and two lookups each would double the hub's database work. Enrollment
 * and endpoint deletion through this hub drop the entry at once (`forgetAgent`); other hubs see them within TTL.
 */
const AUTH_CACHE_TTL_MS = 5000;
const authCache = new Map<string, { endpoint?: Endpoint; keys?: AgentKeys; until: number }>();
/** When expired entries are dropped next: a parked agent comes back after its long-poll, past the TTL anyway. */
let sweepAt = 0;

export function forgetAgent(endpointId: string): void {
  authCache.delete(endpointId);
}

async function lookup(store: Store, endpointId: string, now: number) {
  const hit = authCache.get(endpointId);
  if (hit && hit.until > now) return hit;
  const endpoint = await store.getEndpointById(endpointId);
  const stored = endpoint && (await store.agentPublicKey(endpointId));
  const entry = {
    endpoint,
    keys: stored ? decodeAgentKeys(stored) : undefined,
    until: now + AUTH_CACHE_TTL_MS,
  };
  if (now >= sweepAt) {
    for (const [id, e] of authCache) if (e.until <= now) authCache.delete(id);
    sweepAt = now + AUTH_CACHE_TTL_MS;
  }
  if (endpoint) authCache.set(endpointId, entry);
  return entry;
}

const header = (h: AgentRequestParts['headers'], name: string): string | undefined => {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
};

const unauthenticated = (message: string, hint: string) =>
  new CertfleetError('UNAUTHENTICATED', message, hint);

/** Verifies a signed agent request (see request-signature.ts) and returns the endpoint it speaks for. */
export async function authenticateAgent(
  store: Store,
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
  const { endpoint, keys } = await lookup(store, endpointId, now);
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
