import { z } from 'zod';
import { actorOf, type AppDeps, type ZodApi } from './build-app.ts';

/** Exactly one selector (the service says which are missing or too many). */
const selectorBody = z.strictObject({
  issuer: z.string().min(1).max(200).optional(),
  serials: z.array(z.string().min(1).max(200)).max(1_000_000).optional(),
  intermediate: z.string().min(1).max(200).optional(),
  all: z.boolean().optional(),
});

const campaignBody = selectorBody.extend({
  rekey: z.boolean().optional(),
  overrideWindows: z.boolean().optional(),
  reason: z.string().max(500).optional(),
});

const planSchema = z.object({
  now: z.string(),
  selector: z.object({ kind: z.string(), value: z.string().optional() }),
  certificates: z.number(),
  subscriptions: z.number(),
  unknownSerials: z.array(z.string()),
  replacedSerials: z.array(z.string()),
  issuers: z.array(
    z.object({
      issuer: z.string(),
      certificates: z.number(),
      ariRenewals: z.number(),
      headroom: z.array(
        z.object({
          limit: z.string(),
          key: z.string(),
          max: z.number(),
          remaining: z.number(),
          nextFreeAt: z.string().optional(),
        }),
      ),
      deferred: z.number(),
      lastOrderAt: z.string(),
      estimatedSeconds: z.number(),
    }),
  ),
  estimatedSeconds: z.number(),
});

const progressSchema = z.object({
  certificates: z.number(),
  issued: z.number(),
  issueFailing: z.number(),
  deployments: z.number(),
  delivered: z.number(),
  reloaded: z.number(),
  verified: z.number(),
  failed: z.number(),
  complete: z.boolean(),
});

const campaignSchema = z.object({
  id: z.string(),
  selector: z.object({ kind: z.string(), value: z.string().optional() }),
  options: z.object({ rekey: z.boolean(), overrideWindows: z.boolean(), reason: z.string() }),
  state: z.enum(['running', 'done', 'cancelled']),
  actor: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
  finishedAt: z.string().optional(),
  summary: z.record(z.string(), z.unknown()).optional(),
  certificates: z.number(),
});

const viewSchema = z.object({ campaign: campaignSchema, progress: progressSchema });

const reportSchema = viewSchema.extend({
  pending: z.array(
    z.object({
      certificate: z.string(),
      endpoint: z.string(),
      state: z.string(),
      reason: z.string().optional(),
      lastError: z.string().optional(),
      probes: z.array(
        z.object({
          target: z.string(),
          at: z.string(),
          ok: z.boolean(),
          servesNew: z.boolean(),
          error: z.string().optional(),
        }),
      ),
    }),
  ),
});

const idParams = z.object({ id: z.string().min(1).max(100) });

/** Emergency mass reissue (`certfleet emergency`, docs/emergency.md): plan, start, follow, cancel, report. */
export function registerEmergencyRoutes(api: ZodApi, { campaigns }: AppDeps): void {
  if (!campaigns) return;

  api.post(
    '/emergency/plan',
    {
      config: { access: 'admin' },
      schema: {
        operationId: 'planEmergencyReissue',
        summary:
          'What an emergency reissue would select: counts and rate-limit headroom per issuer, an estimate',
        tags: ['emergency'],
        body: selectorBody,
        response: { 200: planSchema },
      },
    },
    async (req) => campaigns.plan(req.body),
  );

  api.post(
    '/emergency/campaigns',
    {
      config: { access: 'admin' },
      schema: {
        operationId: 'startEmergencyCampaign',
        summary: 'Start an emergency reissue campaign: every selected certificate becomes due, urgently',
        tags: ['emergency'],
        body: campaignBody,
        response: { 201: viewSchema.extend({ plan: planSchema }) },
      },
    },
    async (req, reply) => {
      const { view, plan } = await campaigns.start(req.body, actorOf(req));
      reply.status(201);
      return { ...view, plan };
    },
  );

  api.get(
    '/emergency/campaigns',
    {
      config: { access: 'read' },
      schema: {
        operationId: 'listEmergencyCampaigns',
        summary: 'Emergency campaigns, newest first, with their progress',
        tags: ['emergency'],
        response: { 200: z.array(viewSchema) },
      },
    },
    async () => campaigns.list(),
  );

  api.get(
    '/emergency/campaigns/:id',
    {
      config: { access: 'read' },
      schema: {
        operationId: 'getEmergencyCampaign',
        summary: "A campaign's progress: issued, delivered, reloaded, verified, failed",
        tags: ['emergency'],
        params: idParams,
        response: { 200: viewSchema },
      },
    },
    async (req) => campaigns.get(req.params.id),
  );

  api.post(
    '/emergency/campaigns/:id/cancel',
    {
      config: { access: 'admin' },
      schema: {
        operationId: 'cancelEmergencyCampaign',
        summary: 'Cancel a running campaign: no further reissues; what it reissued stays and keeps deploying',
        tags: ['emergency'],
        params: idParams,
        response: { 200: viewSchema },
      },
    },
    async (req) => campaigns.cancel(req.params.id, actorOf(req)),
  );

  api.get(
    '/emergency/campaigns/:id/report',
    {
      config: { access: 'read' },
      schema: {
        operationId: 'reportEmergencyCampaign',
        summary: 'Every endpoint not yet serving a new certificate of the campaign, and why',
        tags: ['emergency'],
        params: idParams,
        response: { 200: reportSchema },
      },
    },
    async (req) => campaigns.report(req.params.id),
  );
}
