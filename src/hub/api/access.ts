/**
 * Route access, decided from the route the router matched, never from the URL string.
 *
 * Every route declares `config.access` in its own options:
 * - `public`: no credential (health, the OpenAPI document, http-01 answers, agent enrollment with its token in the body)
 * - `agent`: a signed agent request (src/hub/agent-protocol/agent-auth.ts); `req.agent` is set before validation
 * - `read`: a read or admin API token; `admin`: an admin API token
 * - with `session: true` (the dashboard's own routes only), `read`/`admin` come from the dashboard session cookie
 *   instead of a bearer token, and changes need the CSRF token and our Origin (src/hub/dashboard/session-auth.ts).
 *   No other route accepts the cookie, and a session route accepts nothing else.
 * A route that declares nothing cannot be registered (deny by default), and a request whose matched route has no
 * declaration is refused anyway. Requests that match no route go to the 404 handler, which reaches no handler.
 *
 * Wave 1 compared the raw URL with "/api/v1/" while the router decoded it first, so `/%61pi/v1/...` ran admin
 * handlers with no token; here the decision and the handler come from the same lookup.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteOptions } from 'fastify';
import { CertfleetError } from '../../core/errors.ts';
import type { Clock } from '../../core/clock.ts';
import type { Store, TokenRecord } from '../../store/store.ts';
import { authenticate } from '../auth.ts';
import type { AuthenticatedAgent } from '../agent-protocol/agent-auth.ts';
import type { FailureLimiter } from './failure-limiter.ts';

export const ACCESS_LEVELS = ['public', 'agent', 'read', 'admin'] as const;
export type Access = (typeof ACCESS_LEVELS)[number];

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
    /** `read` routes only: a loopback peer that came through no proxy needs no token (Prometheus on the hub host). */
    loopbackAnonymous?: boolean;
    /** A `public` route that takes a secret in its body (enrollment): failed attempts count toward the limiter. */
    guardsSecret?: boolean;
    /** A dashboard route: authenticated by the session cookie (see above), never by a bearer token. */
    session?: boolean;
  }
  interface FastifyRequest {
    token?: TokenRecord;
    agent?: AuthenticatedAgent;
  }
}

/** One row of the route table as registered: what `test/hub/route-access.test.ts` walks. */
export interface RouteAccess {
  method: string;
  url: string;
  access: Access | undefined;
}

export interface AccessDeps {
  store: Store;
  clock: Clock;
  /** Verifies a signed agent request (needs the raw body, so it runs after parsing). */
  authenticateAgent(req: FastifyRequest): Promise<AuthenticatedAgent>;
  /** Failed token and enrollment attempts per client address. */
  failures: FailureLimiter;
  /** Resolves a dashboard session to its token (routes with `config.session`); absent: such routes refuse. */
  authenticateSession?(req: FastifyRequest): Promise<TokenRecord>;
}

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') ? address.slice(7) : address;
  return a === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

const isAccess = (v: unknown): v is Access => (ACCESS_LEVELS as readonly unknown[]).includes(v);

const methodsOf = (o: RouteOptions): string[] => (Array.isArray(o.method) ? o.method : [o.method]);

/**
 * Installs the access checks on `app`. Call before any route is registered: routes registered later without a
 * valid `config.access` make registration throw. Returns the route table as it fills.
 */
export function installAccessControl(app: FastifyInstance, deps: AccessDeps): RouteAccess[] {
  const table: RouteAccess[] = [];
  app.addHook('onRoute', (route) => {
    const access = route.config?.access;
    for (const method of methodsOf(route)) table.push({ method, url: route.url, access });
    if (!isAccess(access)) {
      throw new Error(
        `route ${methodsOf(route).join(',')} ${route.url} declares no access: add config: { access: 'public' | 'agent' | 'read' | 'admin' }`,
      );
    }
  });

  const guarded = (req: FastifyRequest): boolean => {
    const c = req.routeOptions.config;
    return c.access === 'read' || c.access === 'admin' || c.guardsSecret === true;
  };

  app.addHook('onRequest', async (req, reply) => {
    // No route matched: the 404 handler answers, nothing else runs.
    if (req.routeOptions.url === undefined) return;
    const { access, loopbackAnonymous } = req.routeOptions.config;
    if (!isAccess(access)) {
      throw new CertfleetError('FORBIDDEN', 'this route declares no access', 'report this as a bug');
    }
    if (guarded(req)) {
      const wait = deps.failures.retryAfterSeconds(req.ip);
      if (wait > 0) {
        void reply.header('retry-after', String(wait));
        throw new CertfleetError(
          'RATE_LIMITED',
          'too many failed authentication attempts from this address',
          `wait ${wait} s, then retry with a valid token`,
        );
      }
    }
    if (access === 'public' || access === 'agent') return;
    if (loopbackAnonymous && anonymousLoopback(req)) return;
    const token = req.routeOptions.config.session
      ? await sessionToken(deps, req)
      : await authenticate(deps.store, req, deps.clock.now());
    if (access === 'admin' && token.kind !== 'admin') {
      throw new CertfleetError('FORBIDDEN', 'this token is read-only', 'use an admin token for changes');
    }
    req.token = token;
  });

  // Agent signatures cover the exact body bytes, so they are checked once the body is read.
  app.addHook('preValidation', async (req) => {
    if (req.routeOptions.config.access === 'agent') req.agent = await deps.authenticateAgent(req);
  });

  app.addHook('onResponse', async (req: FastifyRequest, reply: FastifyReply) => {
    if (req.routeOptions.url === undefined || !guarded(req)) return;
    if (reply.statusCode === 401 || (reply.statusCode === 403 && req.routeOptions.config.guardsSecret)) {
      deps.failures.fail(req.ip);
    }
  });
  return table;
}

function sessionToken(deps: AccessDeps, req: FastifyRequest): Promise<TokenRecord> {
  if (!deps.authenticateSession) {
    throw new CertfleetError('FORBIDDEN', 'the dashboard is not enabled on this hub', 'report this as a bug');
  }
  return deps.authenticateSession(req);
}

/** A loopback peer that did not come through a proxy and sent no credential. */
function anonymousLoopback(req: FastifyRequest): boolean {
  return (
    isLoopback(req.socket.remoteAddress) &&
    !req.headers['x-forwarded-for'] &&
    !req.headers.forwarded &&
    !req.headers.authorization
  );
}
