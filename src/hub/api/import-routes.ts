import { z } from 'zod';
import { importCertbot } from '../../migrate/certbot-import.ts';
import { actorOf, type AppDeps, type ZodApi } from './build-app.ts';
import { importResultSchema } from './response-schemas.ts';

const pem = z
  .string()
  .min(1)
  .max(64 * 1024);

const renewalSchema = z.object({
  authenticator: z.string().optional(),
  installer: z.string().optional(),
  server: z.string().optional(),
  account: z.string().optional(),
  webrootPath: z.array(z.string()).default([]),
  webrootMap: z.record(z.string(), z.string()).default({}),
  keyType: z.string().optional(),
  ellipticCurve: z.string().optional(),
  rsaKeySize: z.string().optional(),
  preHook: z.string().optional(),
  postHook: z.string().optional(),
  deployHook: z.string().optional(),
  manualAuthHook: z.string().optional(),
  manualCleanupHook: z.string().optional(),
  preferredChallenges: z.string().optional(),
});

export const certbotImportSchema = z.strictObject({
  lineages: z
    .array(
      z.object({
        name: z.string().min(1).max(255),
        certPem: pem,
        chainPems: z.array(pem).max(10),
        keyPem: pem,
        renewal: renewalSchema.optional(),
      }),
    )
    .max(5000),
  accounts: z
    .array(
      z.object({ server: z.string().min(1), id: z.string().min(1), uri: z.string().optional(), keyPem: pem }),
    )
    .max(100)
    .default([]),
  dryRun: z.boolean().default(false),
});

export function registerImportRoutes(api: ZodApi, { ctx, certificates }: AppDeps): void {
  api.post(
    '/import/certbot',
    {
      config: { access: 'admin' },
      // A few thousand lineages with keys and chains exceed the default 1 MiB.
      bodyLimit: 64 * 1024 * 1024,
      schema: {
        summary:
          'Import certbot lineages (current version with key) and accounts; reports what could not be mapped',
        tags: ['import'],
        operationId: 'importCertbot',
        response: { 200: importResultSchema },
        body: certbotImportSchema,
      },
    },
    async (req) => importCertbot(ctx, certificates, req.body, actorOf(req)),
  );
}
