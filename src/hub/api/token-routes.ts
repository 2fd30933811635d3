import { z } from 'zod';
import { nameSchema } from '../../core/config-schema.ts';
import { API_TOKEN_KINDS } from '../../store/store.ts';
import { createApiToken, rotateApiToken, tokenView } from '../api-tokens.ts';
import { actorOf, type AppDeps, type ZodApi } from './build-app.ts';
import { apiTokenSchema, issuedApiTokenSchema, noContent } from './response-schemas.ts';

/** From one minute to ten years; absent means the token does not expire. */
const expiresInSeconds = z
  .number()
  .int()
  .min(60)
  .max(10 * 366 * 86400)
  .optional();

/** API tokens (admin, read): every route is admin-only, listing included (names show who can do what). */
export function registerTokenRoutes(api: ZodApi, { ctx }: AppDeps): void {
  const { store, clock } = ctx;

  api.get(
    '/tokens',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'List API tokens by name (never their secrets)',
        tags: ['tokens'],
        operationId: 'listApiTokens',
        response: { 200: z.array(apiTokenSchema) },
      },
    },
    async () => (await store.listTokens()).map(tokenView),
  );

  api.post(
    '/tokens',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Create an API token; its secret is in this response only',
        tags: ['tokens'],
        operationId: 'createApiToken',
        body: z.object({ role: z.enum(API_TOKEN_KINDS), name: nameSchema.optional(), expiresInSeconds }),
        response: { 201: issuedApiTokenSchema },
      },
    },
    async (req, reply) => {
      const { role, name, expiresInSeconds: ttl } = req.body;
      const issued = await createApiToken(
        store,
        { role, ...(name ? { name } : {}), ...(ttl ? { expiresInSeconds: ttl } : {}) },
        clock.now(),
        actorOf(req),
      );
      reply.status(201).header('cache-control', 'no-store');
      return issued;
    },
  );

  api.post(
    '/tokens/:name/rotate',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Replace the secret of an API token (the old secret stops working at once)',
        tags: ['tokens'],
        operationId: 'rotateApiToken',
        params: z.object({ name: nameSchema }),
        body: z.object({ expiresInSeconds }).optional(),
        response: { 200: issuedApiTokenSchema },
      },
    },
    async (req, reply) => {
      const ttl = req.body?.expiresInSeconds;
      const issued = await rotateApiToken(
        store,
        req.params.name,
        ttl ? { expiresInSeconds: ttl } : {},
        clock.now(),
        actorOf(req),
      );
      reply.header('cache-control', 'no-store');
      return issued;
    },
  );

  api.delete(
    '/tokens/:name',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Revoke an API token (refused for the last admin token)',
        tags: ['tokens'],
        operationId: 'revokeApiToken',
        params: z.object({ name: nameSchema }),
        response: { 204: noContent },
      },
    },
    async (req, reply) => {
      await store.revokeToken(req.params.name, actorOf(req));
      reply.status(204);
    },
  );
}
