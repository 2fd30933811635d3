import type { FastifyInstance, FastifyRequest } from 'fastify';
import { isIP } from 'node:net';
import { authenticate } from '../auth.ts';
import { verificationFor } from '../verification.ts';
import type { AppDeps } from './build-app.ts';

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6. */
export function isLoopback(address: string | undefined): boolean {
  if (!address) return false;
  const a = address.startsWith('::ffff:') && isIP(address.slice(7)) === 4 ? address.slice(7) : address;
  return a === '::1' || (isIP(a) === 4 && a.startsWith('127.'));
}

/**
 * `GET /metrics` in Prometheus text format. Access: any API token (read or admin) as `Authorization: Bearer`;
 * without a token only from a loopback peer that did not come through a proxy (no X-Forwarded-For /
 * Forwarded header), so a Prometheus on the hub's host scrapes with no secret while a reverse proxy in front of
 * the hub cannot expose names of certificates and endpoints to the world.
 */
export function registerMetricsRoute(app: FastifyInstance, deps: AppDeps): void {
  const metrics = () => verificationFor(deps.ctx, deps.verification).metrics;
  const anonymousOk = (req: FastifyRequest) =>
    isLoopback(req.socket.remoteAddress) &&
    !req.headers['x-forwarded-for'] &&
    !req.headers.forwarded &&
    !req.headers.authorization;

  app.get('/metrics', { schema: { hide: true } }, async (req, reply) => {
    if (!anonymousOk(req)) await authenticate(deps.ctx.store, req, deps.ctx.clock.now());
    const m = metrics();
    const text = await m.text();
    return reply.header('content-type', m.contentType).header('cache-control', 'no-store').send(text);
  });
}
