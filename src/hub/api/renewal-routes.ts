import { z } from 'zod';
import { nameSchema } from '../../core/config-schema.ts';
import { REVOCATION_REASONS, type RevocationReason } from '../../issuers/acme/acme-issuer.ts';
import { actorOf, type AppDeps, type ZodApi } from './build-app.ts';
import { versionView } from './views.ts';
import { dryRunSchema, planSchema, revokeSchema, versionSchema } from './response-schemas.ts';

const nameParams = z.object({ name: nameSchema });
const reasons = Object.keys(REVOCATION_REASONS) as [RevocationReason, ...RevocationReason[]];

/** Renewal calendar, renew now (or dry run), revoke. */
export function registerRenewalRoutes(api: ZodApi, deps: AppDeps): void {
  const { renewal } = deps;

  api.get(
    '/plan',
    {
      config: { access: 'read' },
      schema: {
        summary: 'The renewal calendar: decisions, reasons, budget headroom',
        tags: ['renewal'],
        operationId: 'getPlan',
        response: { 200: planSchema },
      },
    },
    async () => ({
      now: deps.ctx.clock.now().toISOString(),
      entries: (await renewal.plan()).map((e) => ({ ...e, dueAt: e.dueAt.toISOString() })),
    }),
  );

  api.post(
    '/certificates/:name/renew',
    {
      config: { access: 'admin' },
      schema: {
        summary:
          'Issue a new version now, or with dryRun run the whole order against staging and store nothing',
        tags: ['certificates'],
        operationId: 'renewCertificate',
        response: { 200: dryRunSchema, 201: versionSchema },
        params: nameParams,
        querystring: z.object({ dryRun: z.enum(['true', 'false']).optional() }),
        body: z.object({ dryRun: z.boolean().optional() }).optional().nullable(),
      },
    },
    async (req, reply) => {
      if (req.query.dryRun === 'true' || req.body?.dryRun === true) {
        return renewal.dryRun(req.params.name);
      }
      const version = await renewal.renewNow(req.params.name, actorOf(req));
      reply.status(201);
      return versionView(version);
    },
  );

  api.post(
    '/certificates/:name/revoke',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Revoke the current version with an RFC 5280 reason, then issue a replacement',
        tags: ['certificates'],
        operationId: 'revokeCertificate',
        response: { 200: revokeSchema },
        params: nameParams,
        body: z.strictObject({ reason: z.enum(reasons).default('unspecified') }),
      },
    },
    async (req) => renewal.revoke(req.params.name, req.body.reason, actorOf(req)),
  );
}
