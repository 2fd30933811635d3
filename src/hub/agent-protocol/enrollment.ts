import { CertfleetError } from '../../core/errors.ts';
import { newToken } from '../../core/ids.ts';
import type { Endpoint } from '../../core/types.ts';
import type { Actor, Store } from '../../store/store.ts';
import type { EnrollRequest, EnrollResponse } from '../../protocol/wire.ts';
import { hashToken } from '../auth.ts';
import { encodeAgentKeys } from './agent-keys.ts';

export const DEFAULT_ENROLL_TTL_SECONDS = 24 * 3600;

export interface EnrollmentToken {
  endpoint: string;
  token: string;
  expiresAt: string;
  caFingerprint: string;
}

/** Mints a one-time enrollment token for an agent endpoint; only its hash is stored. */
export async function mintEnrollmentToken(
  store: Store,
  endpoint: Endpoint,
  opts: { ttlSeconds?: number; now: Date; caFingerprint: string },
  actor: Actor,
): Promise<EnrollmentToken> {
  if (endpoint.kind !== 'agent') {
    throw new CertfleetError(
      'VALIDATION_FAILED',
      `endpoint "${endpoint.name}" is a connector endpoint, not an agent endpoint`,
      'create an agent endpoint with `certfleet endpoint add NAME --agent`',
    );
  }
  const token = newToken('cfe');
  const expiresAt = new Date(
    opts.now.getTime() + (opts.ttlSeconds ?? DEFAULT_ENROLL_TTL_SECONDS) * 1000,
  ).toISOString();
  await store.createToken(
    {
      kind: 'enroll',
      name: `enroll:${endpoint.name}`,
      hash: hashToken(token),
      endpointId: endpoint.id,
      expiresAt,
    },
    actor,
  );
  return { endpoint: endpoint.name, token, expiresAt, caFingerprint: opts.caFingerprint };
}

/** Redeems an enrollment token (exactly once) and stores the agent's public keys on its endpoint. */
export async function redeemEnrollmentToken(
  store: Store,
  req: EnrollRequest,
  now: Date,
): Promise<EnrollResponse> {
  const record = await store.findTokenByHash(hashToken(req.token));
  if (!record || record.kind !== 'enroll' || !record.endpointId) {
    throw new CertfleetError(
      'UNAUTHENTICATED',
      'invalid enrollment token',
      'mint a token on the hub with `certfleet endpoint enroll-token NAME` and copy it exactly',
    );
  }
  if (record.usedAt) throw alreadyUsed();
  if (record.expiresAt && new Date(record.expiresAt) <= now) {
    throw new CertfleetError(
      'UNAUTHENTICATED',
      `enrollment token expired at ${record.expiresAt}`,
      'mint a new one with `certfleet endpoint enroll-token NAME`',
    );
  }
  const endpoint = await store.getEndpointById(record.endpointId);
  if (!endpoint) {
    throw new CertfleetError(
      'ENDPOINT_NOT_FOUND',
      'the endpoint of this token was deleted',
      'create it again',
    );
  }
  // The atomic consume decides between concurrent redeemers: exactly one gets past this line.
  if (!(await store.consumeToken(record.id, now.toISOString()))) throw alreadyUsed();
  await store.setAgentPublicKey(
    endpoint.id,
    encodeAgentKeys(req.signingKey, req.sealingKey),
    `agent:${endpoint.name}`,
  );
  return { endpointId: endpoint.id, endpointName: endpoint.name };
}

const alreadyUsed = () =>
  new CertfleetError(
    'UNAUTHENTICATED',
    'enrollment token already used',
    'tokens are single-use: mint a new one with `certfleet endpoint enroll-token NAME`',
  );
