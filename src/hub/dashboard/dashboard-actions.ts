/**
 * The dashboard's actions: admin sessions only (access.ts refuses a read session before the handler), each with
 * the session's CSRF token and our Origin (session-auth.ts). They call the same services as the API routes, so
 * each is audited the same way, with the signed-in token as actor.
 */
import { z } from 'zod';
import { nameSchema } from '../../core/config-schema.ts';
import { CertfleetError } from '../../core/errors.ts';
import { actorOf, type ZodApi } from '../api/build-app.ts';
import { versionView } from '../api/views.ts';
import { requestRedeploys } from '../api/redeploy-routes.ts';
import type { Dashboard } from './dashboard-routes.ts';

const admin = { access: 'admin' as const, session: true };
const nameParams = z.object({ name: nameSchema });

export function registerDashboardActions(api: ZodApi, d: Dashboard): void {
  const { ctx, renewal, verification } = d.deps;

  api.post(
    '/api/certificates/:name/renew',
    { schema: { hide: true, params: nameParams }, config: admin },
    async (req, reply) => {
      const version = await renewal.renewNow(req.params.name, actorOf(req));
      reply.status(201);
      return versionView(version);
    },
  );

  // Redeploy; with overrideWindow the reload happens now, outside the change window (the page asks first, and the
  // store records `deployment.window_override_requested`).
  api.post(
    '/api/certificates/:name/deploy',
    {
      schema: {
        hide: true,
        params: nameParams,
        body: z.strictObject({ endpoint: nameSchema.optional(), overrideWindow: z.boolean().optional() }),
      },
      config: admin,
    },
    async (req, reply) => {
      const answer = await requestRedeploys(ctx.store, req.params.name, req.body, actorOf(req));
      reply.status(202);
      return answer;
    },
  );

  api.post(
    '/api/endpoints/:name/probe',
    { schema: { hide: true, params: nameParams }, config: admin },
    async (req) => verification.probes.probeEndpoint(req.params.name),
  );

  // Acknowledging says "a person is on it": an audited event the alerts view shows; it does not silence channels.
  // It names the firing it acknowledges (`firingSince`): once that firing resolves, a new one is not acknowledged.
  api.post(
    '/api/alerts/acknowledge',
    { schema: { hide: true, body: z.strictObject({ key: z.string().min(1).max(500) }) }, config: admin },
    async (req) => {
      const alert = (await verification.alerts.list()).find((a) => a.key === req.body.key);
      if (!alert) {
        throw new CertfleetError(
          'NOT_FOUND',
          `no firing alert "${req.body.key}"`,
          'reload the alerts view: it may have resolved',
        );
      }
      await ctx.store.appendEvent({
        actor: actorOf(req),
        kind: 'alert.acknowledged',
        subject: `alert:${req.body.key}`,
        data: { firingSince: alert.since ?? null, token: req.token!.name },
      });
      return { acknowledged: req.body.key, firingSince: alert.since ?? null };
    },
  );
}
