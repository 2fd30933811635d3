import { hash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { CertfleetError } from '../core/errors.ts';
import { newToken } from '../core/ids.ts';
import type { NewToken, Store, TokenRecord } from '../store/store.ts';

/**
 * Tokens are high-entropy random strings, so one SHA-256 is enough to store them safely (no password stretching).
 * Every API request hashes its token: the one-shot `hash` is ~4× cheaper than a `createHash` object.
 */
export const hashToken = (token: string): string => hash('sha256', token, 'hex');

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
      'invalid API token (unknown, revoked or rotated)',
      'check --token / CERTFLEET_TOKEN; an admin can list tokens with `certfleet token list` and create one with `certfleet token create`',
    );
  }
  if (record.expiresAt && new Date(record.expiresAt) <= now) {
    throw new CertfleetError(
      'UNAUTHENTICATED',
      `API token "${record.name}" expired at ${record.expiresAt}`,
      `ask an admin for a new one: \`certfleet token rotate ${record.name}\` or \`certfleet token create\``,
    );
  }
  if (record.kind === 'enroll') {
    throw new CertfleetError(
      'FORBIDDEN',
      'an enrollment token cannot call the admin API',
      'use it with `certfleet agent enroll`',
    );
  }
  await recordUse(store, record, now);
  return record;
}

/** `last used` is kept to the minute: one write per token per minute, not one per request. */
const LAST_USED_RESOLUTION_MS = 60_000;

async function recordUse(store: Store, record: TokenRecord, now: Date): Promise<void> {
  if (record.lastUsedAt && now.getTime() - new Date(record.lastUsedAt).getTime() < LAST_USED_RESOLUTION_MS)
    return;
  await store.touchToken(record.id, now.toISOString());
}

/** The admin token created at first start, and replaced by `certfleet hub reset-admin-token`. */
export const BOOTSTRAP_TOKEN_NAME = 'bootstrap';

/** Refuses a CERTFLEET_ADMIN_TOKEN too weak to use; checked before the hub listens, so a bad preset fails early. */
export function checkAdminTokenPreset(preset?: string): void {
  if (preset !== undefined && preset.length < 16) {
    throw new CertfleetError(
      'CONFIG_INVALID',
      'CERTFLEET_ADMIN_TOKEN is too short',
      'use at least 16 random characters',
    );
  }
}

/** A new admin token secret and the record that stores only its hash. */
export function newAdminToken(preset?: string): { token: string; record: NewToken } {
  checkAdminTokenPreset(preset);
  const token = preset ?? newToken('cfa');
  return { token, record: { kind: 'admin', name: BOOTSTRAP_TOKEN_NAME, hash: hashToken(token) } };
}

/**
 * Creates the bootstrap admin token when none exists. Returns the token in clear exactly once (the start that
 * created it); CERTFLEET_ADMIN_TOKEN presets it for automation. `keep` stores the secret (the hub writes its 0600
 * file) before the token exists, so a token that works was always kept. The hub calls this only once it listens,
 * so a first start that fails (port in use, bad config) creates no token and the next start creates one.
 */
export async function ensureAdminToken(
  store: Store,
  preset?: string,
  keep?: (token: string) => Promise<void>,
): Promise<string | undefined> {
  if ((await store.countTokens('admin')) > 0) return undefined;
  const { token, record } = newAdminToken(preset);
  await keep?.(token);
  await store.createToken(record, 'system');
  return token;
}
