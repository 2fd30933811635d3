/**
 * How a dashboard route authenticates (called by src/hub/api/access.ts for routes with `config.session`): only
 * the session cookie counts there, and only there (API routes never look at cookies, so a signed-in browser cannot
 * be used to reach them cross-site). A change also needs the session's CSRF token in `x-csrf-token` and an Origin
 * equal to the hub's own.
 */
import type { FastifyRequest } from 'fastify';
import { CertfleetError } from '../../core/errors.ts';
import type { TokenRecord } from '../../store/store.ts';
import { csrfMatches, SESSION_COOKIE, type Session, type SessionStore } from './session-store.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set on dashboard routes (`config.session`). */
    session?: Session;
  }
}

export function cookieValue(req: FastifyRequest, name: string): string | undefined {
  const header = req.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

/** The origin this request was addressed to, as a browser on the same page would send it. */
export function ownOrigin(req: FastifyRequest): string {
  return `${req.protocol}://${req.headers.host ?? ''}`;
}

const SAFE_METHODS = new Set(['GET', 'HEAD']);

/** A cross-site request carries another Origin (or none from a non-browser): changes need ours exactly. */
export function checkSameOrigin(req: FastifyRequest): void {
  if (req.headers.origin !== ownOrigin(req)) {
    throw new CertfleetError(
      'FORBIDDEN',
      'cross-site request refused',
      'use the dashboard page served by this hub (the Origin header must be the hub itself)',
    );
  }
}

export async function authenticateSession(sessions: SessionStore, req: FastifyRequest): Promise<TokenRecord> {
  const { session, token } = await sessions.resolve(cookieValue(req, SESSION_COOKIE));
  if (!SAFE_METHODS.has(req.method)) {
    checkSameOrigin(req);
    const presented = req.headers['x-csrf-token'];
    if (!csrfMatches(session, typeof presented === 'string' ? presented : undefined)) {
      throw new CertfleetError(
        'FORBIDDEN',
        'missing or wrong CSRF token',
        'reload the dashboard page and retry',
      );
    }
  }
  req.session = session;
  return token;
}
