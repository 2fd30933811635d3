/**
 * Dashboard sessions, in memory: the browser holds only an opaque random id in an HttpOnly cookie; the token it
 * signed in with stays here as its hash, looked up again on every request so a revoked or expired token ends the
 * session at once. A hub restart signs everyone out (nothing about a session is persisted).
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Clock } from '../../core/clock.ts';
import { CertfleetError } from '../../core/errors.ts';
import type { Store, TokenRecord } from '../../store/store.ts';

export interface Session {
  id: string;
  /** SHA-256 of the token signed in with (never the token). */
  tokenHash: string;
  /** Sent back by the page in `x-csrf-token` on every change. */
  csrf: string;
  expiresAt: number;
}

export const SESSION_COOKIE = 'certfleet_session';
/** Absolute lifetime of a session: a working day. */
export const SESSION_TTL_MS = 12 * 3_600_000;

const random = () => randomBytes(32).toString('base64url');

export class SessionStore {
  private readonly sessions = new Map<string, Session>();
  private readonly endListeners = new Set<(sessionId: string) => void>();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly ttlMs = SESSION_TTL_MS,
  ) {}

  create(tokenHash: string): Session {
    this.sweep();
    const session = {
      id: random(),
      tokenHash,
      csrf: random(),
      expiresAt: this.clock.now().getTime() + this.ttlMs,
    };
    this.sessions.set(session.id, session);
    return session;
  }

  /** The live session and its token, or UNAUTHENTICATED (no cookie, unknown, expired, token revoked). */
  async resolve(id: string | undefined): Promise<{ session: Session; token: TokenRecord }> {
    const session = id ? this.sessions.get(id) : undefined;
    const now = this.clock.now();
    if (!session || session.expiresAt <= now.getTime()) {
      if (session) this.end(session.id);
      throw signInAgain('no dashboard session');
    }
    const token = await this.store.findTokenByHash(session.tokenHash);
    if (!token || token.kind === 'enroll' || (token.expiresAt && new Date(token.expiresAt) < now)) {
      this.end(session.id);
      throw signInAgain('the token of this session is no longer valid');
    }
    return { session, token };
  }

  end(id: string): void {
    if (!this.sessions.delete(id)) return;
    for (const l of this.endListeners) l(id);
  }

  /** Called when a session ends (sign-out, expiry, revocation): live streams of that session close. */
  onEnd(listener: (sessionId: string) => void): () => void {
    this.endListeners.add(listener);
    return () => this.endListeners.delete(listener);
  }

  private sweep(): void {
    const now = this.clock.now().getTime();
    for (const s of this.sessions.values()) if (s.expiresAt <= now) this.end(s.id);
  }
}

/** Constant-time comparison of a presented CSRF token with the session's. */
export function csrfMatches(session: Session, presented: string | undefined): boolean {
  if (!presented) return false;
  const a = Buffer.from(session.csrf);
  const b = Buffer.from(presented);
  return a.length === b.length && timingSafeEqual(a, b);
}

const signInAgain = (message: string) =>
  new CertfleetError('UNAUTHENTICATED', message, 'sign in to the dashboard again with an API token');
