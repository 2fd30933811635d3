import { CertfleetError } from '../core/errors.ts';
import { AgentClient, certFingerprint, fetchPinnedCa, isTransient } from './agent-client.ts';
import { parseHubList } from './hub-list.ts';
import {
  DEFAULT_STATE_DIR,
  generateAgentKeys,
  publicKeysOf,
  saveIdentity,
  type AgentIdentity,
} from './agent-identity.ts';

export interface EnrollOptions {
  /** One hub URL, several separated by commas, or a list (hubs over one database, in order of preference). */
  hub: string | string[];
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
  const hubs = parseHubList(opts.hub);
  const plain = hubs.find((h) => !/^https:\/\//.test(h));
  if (plain) {
    throw new CertfleetError(
      'VALIDATION_FAILED',
      `--hub must be an https:// URL, got "${plain}"`,
      'use the URL the hub prints',
    );
  }
  const keys = generateAgentKeys();
  // Through the first hub that answers: they share one database, so the token and the CA are the same at each.
  let last: unknown;
  for (const hub of hubs) {
    try {
      return await enrollThrough(hub, hubs, keys, stateDir, opts);
    } catch (e) {
      last = e;
      if (!isTransient(e) || opts.signal?.aborted) throw e;
    }
  }
  throw last;
}

async function enrollThrough(
  hub: string,
  hubs: string[],
  keys: ReturnType<typeof generateAgentKeys>,
  stateDir: string,
  opts: EnrollOptions,
): Promise<AgentIdentity> {
  const caPem = await fetchPinnedCa(hub, opts.caFingerprint, opts.signal ? { signal: opts.signal } : {});
  const client = new AgentClient(hub, caPem);
  try {
    const res = await client.enroll(
      { token: opts.token, ...publicKeysOf(keys) },
      opts.signal ? { signal: opts.signal } : {},
    );
    const identity: AgentIdentity = {
      hub: hubs[0],
      ...(hubs.length > 1 ? { hubs } : {}),
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
