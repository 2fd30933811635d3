import { CertfleetError } from '../core/errors.ts';
import { AgentClient, certFingerprint, fetchPinnedCa } from './agent-client.ts';
import {
  DEFAULT_STATE_DIR,
  generateAgentKeys,
  publicKeysOf,
  saveIdentity,
  type AgentIdentity,
} from './agent-identity.ts';

export interface EnrollOptions {
  hub: string;
  token: string;
  caFingerprint: string;
  stateDir?: string;
  signal?: AbortSignal;
  now?: () => Date;
}

/**
 * `certfleet agent enroll`: pins the hub CA by fingerprint, generates the agent's own keys (they never leave the
 * endpoint), redeems the one-time token with the public halves, and writes `agent.json` + `agent-key.pem` (0600,
 * state dir 0700).
 */
export async function enrollAgent(opts: EnrollOptions): Promise<AgentIdentity> {
  const stateDir = opts.stateDir ?? DEFAULT_STATE_DIR;
  const hub = opts.hub.replace(/\/+$/, '');
  if (!/^https:\/\//.test(hub)) {
    throw new CertfleetError(
      'VALIDATION_FAILED',
      `--hub must be an https:// URL, got "${hub}"`,
      'use the URL the hub prints',
    );
  }
  const caPem = await fetchPinnedCa(hub, opts.caFingerprint, opts.signal ? { signal: opts.signal } : {});
  const keys = generateAgentKeys();
  const client = new AgentClient(hub, caPem);
  try {
    const res = await client.enroll(
      { token: opts.token, ...publicKeysOf(keys) },
      opts.signal ? { signal: opts.signal } : {},
    );
    const identity: AgentIdentity = {
      hub,
      endpointId: res.endpointId,
      endpointName: res.endpointName,
      caPem,
      caFingerprint: certFingerprint(caPem),
      enrolledAt: (opts.now?.() ?? new Date()).toISOString(),
      keys,
    };
    await saveIdentity(stateDir, identity);
    return identity;
  } finally {
    client.close();
  }
}
