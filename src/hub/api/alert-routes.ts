import { auditRequest, type AppDeps, type ZodApi } from './build-app.ts';
import { alertEvaluationSchema, alertTestSchema, alertsSchema } from './response-schemas.ts';

/** Active alerts, channel delivery stats, a test message to every channel, and evaluate-now. */
export function registerAlertRoutes(api: ZodApi, deps: AppDeps): void {
  const alerts = () => deps.verification.alerts;

  api.get(
    '/alerts',
    {
      config: { access: 'read' },
      schema: {
        summary: 'Alerts firing now and per-channel delivery counts',
        tags: ['alerts'],
        operationId: 'listAlerts',
        response: { 200: alertsSchema },
      },
    },
    async () => {
      const service = alerts();
      const stats = service.manager.stats();
      return { alerts: await service.list(), evaluating: service.looping, channels: stats.channels };
    },
  );

  api.post(
    '/alerts/test',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Send a test alert to every configured channel and report each result',
        tags: ['alerts'],
        operationId: 'testAlertChannels',
        response: { 200: alertTestSchema },
      },
    },
    async (req, reply) => {
      await auditRequest(deps.ctx, req, 'alert.test_requested', 'alerts:channels');
      const ac = new AbortController();
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) ac.abort(new Error('client went away'));
      });
      const results = await alerts().sendTest(ac.signal);
      return { ok: results.every((r) => r.ok), results };
    },
  );

  api.post(
    '/alerts/evaluate',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Evaluate alert conditions now and notify what changed',
        tags: ['alerts'],
        operationId: 'evaluateAlerts',
        response: { 200: alertEvaluationSchema },
      },
    },
    async (req) => {
      await auditRequest(deps.ctx, req, 'alert.evaluate_requested', 'alerts:all');
      const r = await alerts().runOnce();
      return {
        active: r.active,
        notified: r.notified.map((n) => ({
          reason: n.reason,
          key: n.alert.key,
          kind: n.alert.kind,
          title: n.alert.title,
          deliveries: n.deliveries,
        })),
      };
    },
  );
}
