import { randomBytes } from 'node:crypto';
import { CertfleetError } from '../core/errors.ts';
import { newToken } from '../core/ids.ts';
import type { Actor, ApiTokenKind, Store, TokenRecord } from '../store/store.ts';
import { hashToken } from './auth.ts';

/** Readable prefixes, so a leaked secret says what it opens (and secret scanners can match it). */
export const TOKEN_PREFIX: Record<ApiTokenKind, string> = { admin: 'cfa', read: 'cfr' };

/** What the API and CLI show of a token: never its secret or hash. */
export interface TokenView {
  name: string;
  role: ApiTokenKind;
  createdAt: string;
  expiresAt: string | null;
  lastUsedAt: string | null;
}

/** A token just made: its secret, returned this once. */
export interface IssuedToken {
  token: TokenView;
  secret: string;
}

export function tokenView(r: TokenRecord): TokenView {
  return {
    name: r.name,
    role: r.kind as ApiTokenKind,
    createdAt: r.createdAt,
    expiresAt: r.expiresAt ?? null,
    lastUsedAt: r.lastUsedAt ?? null,
  };
}

const expiryAfter = (now: Date, seconds: number | undefined): string | undefined =>
  seconds === undefined ? undefined : new Date(now.getTime() + seconds * 1000).toISOString();

/** Creates an API token; without a name it gets `<role>-<6 hex>`. Names are unique (ALREADY_EXISTS). */
export async function createApiToken(
  store: Store,
  input: { role: ApiTokenKind; name?: string; expiresInSeconds?: number },
  now: Date,
  actor: Actor,
): Promise<IssuedToken> {
  const secret = newToken(TOKEN_PREFIX[input.role]);
  const expiresAt = expiryAfter(now, input.expiresInSeconds);
  const record = await store.createToken(
    {
      kind: input.role,
      name: input.name ?? `${input.role}-${randomBytes(3).toString('hex')}`,
      hash: hashToken(secret),
      ...(expiresAt ? { expiresAt } : {}),
    },
    actor,
  );
  return { token: tokenView(record), secret };
}

/**
 * Replaces the secret of token `name` in one transaction: the old secret stops working at once. The role stays;
 * the new secret lives as long as the old one was given (from now), unless `expiresInSeconds` says otherwise.
 */
export async function rotateApiToken(
  store: Store,
  name: string,
  opts: { expiresInSeconds?: number },
  now: Date,
  actor: Actor,
): Promise<IssuedToken> {
  const old = (await store.listTokens()).find((r) => r.name === name);
  if (!old) throw new CertfleetError('NOT_FOUND', `no token named "${name}"`, 'see `certfleet token list`');
  const lifetime = old.expiresAt
    ? (new Date(old.expiresAt).getTime() - new Date(old.createdAt).getTime()) / 1000
    : undefined;
  const role = old.kind as ApiTokenKind;
  const secret = newToken(TOKEN_PREFIX[role]);
  const expiresAt = expiryAfter(now, opts.expiresInSeconds ?? lifetime);
  const { token } = await store.replaceTokens(
    { kind: role, name },
    { kind: role, name, hash: hashToken(secret), ...(expiresAt ? { expiresAt } : {}) },
    actor,
  );
  return { token: tokenView(token), secret };
}
