import type { KeyObject } from 'node:crypto';
import { publicKeyFromRaw } from '../../protocol/request-signature.ts';

/** What the hub stores in `endpoints.agent_public_key`: both of the agent's public keys, raw base64url. */
export interface StoredAgentKeys {
  v: 1;
  signing: string;
  sealing: string;
}

export const encodeAgentKeys = (signing: string, sealing: string): string =>
  JSON.stringify({ v: 1, signing, sealing } satisfies StoredAgentKeys);

export interface AgentKeys {
  signing: KeyObject;
  sealing: string;
}

const parsed = new Map<string, AgentKeys>();

/** Parses the stored JSON once per distinct value (key objects are reused across requests). */
export function decodeAgentKeys(stored: string): AgentKeys | undefined {
  const hit = parsed.get(stored);
  if (hit) return hit;
  try {
    const v = JSON.parse(stored) as StoredAgentKeys;
    if (v.v !== 1 || typeof v.signing !== 'string' || typeof v.sealing !== 'string') return undefined;
    const keys = { signing: publicKeyFromRaw('Ed25519', v.signing), sealing: v.sealing };
    if (parsed.size > 50_000) parsed.clear();
    parsed.set(stored, keys);
    return keys;
  } catch {
    return undefined;
  }
}
