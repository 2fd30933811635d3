import { z } from 'zod';
import type { FastifyInstance } from 'fastify';
import type { AppDeps } from './build-app.ts';

/**
 * `GET /metrics` in Prometheus text format. Access `read` (any API token as `Authorization: Bearer`), or no token
 * from a loopback peer that did not come through a proxy (no X-Forwarded-For / Forwarded header), so a Prometheus
 * on the hub's host scrapes with no secret while a reverse proxy in front of the hub cannot expose names of
 * certificates and endpoints to the world. The access hook (access.ts) decides both.
 */
export function registerMetricsRoute(app: FastifyInstance, deps: AppDeps): void {
  app.get(
    '/metrics',
    {
      schema: {
        summary:
          'Prometheus metrics (text exposition format); no token needed from a loopback peer with no proxy',
        tags: ['hub'],
        operationId: 'getMetrics',
        response: {
          200: {
            description: 'Prometheus text format 0.0.4',
            content: { 'text/plain': { schema: z.string() } },
          },
        },
      },
      config: { access: 'read', loopbackAnonymous: true },
    },
    async (_req, reply) => {
      const m = deps.verification.metrics;
      const text = await m.text();
      return reply.header('content-type', m.contentType).header('cache-control', 'no-store').send(text);
    },
  );
}
