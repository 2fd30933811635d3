import { z } from 'zod';
import { nameSchema } from '../../core/config-schema.ts';
import { auditRequest, type AppDeps, type ZodApi } from './build-app.ts';
import { endpointProbeReportSchema, probeViewSchema, servedRowSchema } from './response-schemas.ts';

/** Probe results (latest per target), the served view per certificate × endpoint, and probe-now. */
export function registerProbeRoutes(api: ZodApi, deps: AppDeps): void {
  const probes = () => deps.verification.probes;

  api.get(
    '/probes',
    {
      config: { access: 'read' },
      schema: {
        summary: 'Latest probe result of every endpoint target',
        tags: ['probes'],
        operationId: 'listProbeResults',
        response: { 200: z.array(probeViewSchema) },
      },
    },
    async () => probes().listResults(),
  );

  api.get(
    '/probes/served',
    {
      config: { access: 'read' },
      schema: {
        summary:
          'Per certificate × endpoint: served fingerprint, whether it is the current version, probe age',
        tags: ['probes'],
        operationId: 'listServed',
        response: { 200: z.array(servedRowSchema) },
      },
    },
    async () => probes().servedSummary(),
  );

  api.post(
    '/probes/run',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Probe every endpoint now and apply verified / diverged decisions',
        tags: ['probes'],
        operationId: 'runProbes',
        response: { 200: z.array(endpointProbeReportSchema) },
      },
    },
    async (req) => {
      await auditRequest(deps.ctx, req, 'probe.requested', 'probes:all');
      return probes().runOnce();
    },
  );

  api.post(
    '/endpoints/:name/probe',
    {
      config: { access: 'admin' },
      schema: {
        summary: "Probe one endpoint's targets now",
        tags: ['probes'],
        operationId: 'probeEndpoint',
        response: { 200: endpointProbeReportSchema },
        params: z.object({ name: nameSchema }),
      },
    },
    async (req) => {
      await auditRequest(deps.ctx, req, 'probe.requested', `endpoint:${req.params.name}`);
      return probes().probeEndpoint(req.params.name);
    },
  );
}
