import { z } from 'zod';
import { fleetConfigSchema } from '../../core/config-schema.ts';
import { runApply } from '../apply.ts';
import { actorOf, type AppDeps, type ZodApi } from './build-app.ts';
import { applyResultSchema } from './response-schemas.ts';

export function registerApplyRoutes(api: ZodApi, { ctx, certificates, renewal, connectors }: AppDeps): void {
  api.post(
    '/apply',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Make certificates, endpoints and subscriptions match a declarative config (idempotent)',
        tags: ['apply'],
        operationId: 'applyConfig',
        response: { 200: applyResultSchema },
        body: z.object({ config: fleetConfigSchema, dryRun: z.boolean().default(false) }),
      },
    },
    async (req) => ({
      dryRun: req.body.dryRun,
      steps: await runApply(ctx, certificates, renewal, req.body.config, `${actorOf(req)} (apply)`, {
        dryRun: req.body.dryRun,
        connectorChanged: (id) => connectors?.request(id),
      }),
    }),
  );
}
