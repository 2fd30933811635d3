import { z } from 'zod';
import type { AppDeps, ZodApi } from './build-app.ts';
import { eventSchema } from './response-schemas.ts';

export function registerEventRoutes(api: ZodApi, { ctx }: AppDeps): void {
  api.get(
    '/events',
    {
      config: { access: 'read', pageCache: { reads: ['events'] } },
      schema: {
        summary: 'Audit events, oldest first',
        description:
          'Without `after`: the newest `limit` events. With `after`: the oldest `limit` events whose id is greater, ' +
          'so passing the last id received as the next `after` walks every event once. With `before`: the newest ' +
          '`limit` events whose id is smaller (paging backwards from the first id received).',
        tags: ['events'],
        operationId: 'listEvents',
        response: { 200: z.array(eventSchema) },
        querystring: z.object({
          subject: z.string().optional(),
          kind: z.string().optional(),
          after: z.coerce.number().int().min(0).optional(),
          before: z.coerce.number().int().min(1).optional(),
          limit: z.coerce.number().int().min(1).max(1000).default(100),
        }),
      },
    },
    async (req) =>
      ctx.store.listEvents({
        limit: req.query.limit,
        ...(req.query.subject ? { subject: req.query.subject } : {}),
        ...(req.query.kind ? { kind: req.query.kind } : {}),
        ...(req.query.after !== undefined ? { afterId: req.query.after } : {}),
        ...(req.query.before !== undefined && req.query.after === undefined
          ? { beforeId: req.query.before }
          : {}),
      }),
  );
}
