import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { CertfleetError } from '../core/errors.ts';
import { newToken } from '../core/ids.ts';
import type { Store, TokenRecord } from '../store/store.ts';

/** Tokens are high-entropy random strings, so one SHA-256 is enough to store them safely (no password stretching). */
export const hashToken = (token: string): string => createHash('sha256').update(token).digest('hex');

export function bearerToken(req: FastifyRequest): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  return m?.[1];
}

/** Resolves the token of a request to its record, or throws UNAUTHENTICATED with a hint. */
export async function authenticate(store: Store, req: FastifyRequest, now: Date): Promise<TokenRecord> {
  const token = bearerToken(req);
  if (!token) {
    throw new CertfleetError(
      'UNAUTHENTICATED',
      'missing API token',
      'pass --token or set CERTFLEET_TOKEN (header "Authorization: Bearer <token>")',
    );
  }
  // Looking up by hash means the secret itself is never compared byte by byte (no timing oracle on the token).
  const record = await store.findTokenByHash(hashToken(token));
  if (!record) {
    throw new CertfleetError(
      'UNAUTHENTICATED',
      'invalid API token',
      'check --token / CERTFLEET_TOKEN; the hub printed the admin token at first start',
    );
  }
  if (record.expiresAt && new Date(record.expiresAt) < now) {
    throw new CertfleetError('UNAUTHENTICATED', 'API token expired', 'create a new token');
  }
  if (record.kind === 'enroll') {
    throw new CertfleetError(
      'FORBIDDEN',
      'an enrollment token cannot call the admin API',
      'use it with `certfleet agent enroll`',
    );
  }
  return record;
}

/**
 * Creates the bootstrap admin token when none exists. Returns the token in clear exactly once (at first start);
 * CERTFLEET_ADMIN_TOKEN presets it for automation.
 */
export async function ensureAdminToken(store: Store, preset?: string): Promise<string | undefined> {
  if ((await store.countTokens('admin')) > 0) return undefined;
  if (preset !== undefined && preset.length < 16) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      'CERTFLEET_ADMIN_TOKEN is too short',
      'use at least 16 random characters',
    );
  }
  const token = preset ?? newToken('cfa');
  await store.createToken({ kind: 'admin', name: 'bootstrap', hash: hashToken(token) }, 'system');
  return token;
}
