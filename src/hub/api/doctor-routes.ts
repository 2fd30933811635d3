import { z } from 'zod';
import { nameSchema } from '../../core/config-schema.ts';
import { runDoctor } from '../../doctor/run-doctor.ts';
import type { AppDeps, ZodApi } from './build-app.ts';
import { doctorReportSchema } from './response-schemas.ts';

export function registerDoctorRoutes(api: ZodApi, { ctx }: AppDeps): void {
  api.get(
    '/doctor',
    {
      config: { access: 'read' },
      schema: {
        summary:
          'Run the doctor checks (ACME issuers, last failures classified, clock skew) with fixes in words',
        tags: ['doctor'],
        operationId: 'runDoctor',
        response: { 200: doctorReportSchema },
        querystring: z.object({ certificate: nameSchema.optional() }),
      },
    },
    async (req, reply) => {
      const ac = new AbortController();
      // Stop probing the CA when the client hangs up before the answer.
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) ac.abort(new Error('client went away'));
      });
      return runDoctor(ctx, {
        ...(req.query.certificate ? { certificate: req.query.certificate } : {}),
        signal: ac.signal,
      });
    },
  );
}
