import { z } from 'zod';
import { certificateNotFound, endpointNotFound } from '../../core/errors.ts';
import { endpointSpecSchema, nameSchema, subscriptionSpecSchema } from '../../core/config-schema.ts';
import { actorOf, type AppDeps, type ZodApi } from './build-app.ts';
import { pageOf, pageQuerySchema, sendPage } from './pagination.ts';

export function registerEndpointRoutes(api: ZodApi, { ctx }: AppDeps): void {
  const { store } = ctx;

  api.post(
    '/endpoints',
    {
      config: { access: 'admin' },
      schema: { summary: 'Create an endpoint', tags: ['endpoints'], body: endpointSpecSchema },
    },
    async (req, reply) => {
      const endpoint = await store.createEndpoint(req.body, actorOf(req));
      reply.status(201);
      return endpoint;
    },
  );

  api.get(
    '/endpoints',
    {
      config: { access: 'read' },
      schema: {
        summary: 'List endpoints by name, one page (next page: x-next-cursor / Link headers)',
        tags: ['endpoints'],
        querystring: pageQuerySchema,
      },
    },
    async (req, reply) =>
      sendPage(req, reply, await store.endpointRows(pageOf(req.query)), (r) => ({
        ...r.endpoint,
        lastSeenAt: r.lastSeenAt ?? null,
      })),
  );

  api.get(
    '/endpoints/:name',
    {
      config: { access: 'read' },
      schema: { summary: 'Show an endpoint', tags: ['endpoints'], params: z.object({ name: nameSchema }) },
    },
    async (req) => {
      const endpoint = await store.getEndpoint(req.params.name);
      if (!endpoint) {
        throw endpointNotFound(req.params.name);
      }
      return { ...endpoint, lastSeenAt: (await store.lastSeen(endpoint.id)) ?? null };
    },
  );

  api.delete(
    '/endpoints/:name',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Delete an endpoint and its subscriptions',
        tags: ['endpoints'],
        params: z.object({ name: nameSchema }),
      },
    },
    async (req, reply) => {
      await store.deleteEndpoint(req.params.name, actorOf(req));
      reply.status(204);
    },
  );

  api.post(
    '/subscriptions',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Subscribe an endpoint to a certificate (creates or replaces)',
        tags: ['subscriptions'],
        body: subscriptionSpecSchema,
      },
    },
    async (req, reply) => {
      const { endpoint: endpointName, certificate: certName, ...spec } = req.body;
      const endpoint = await store.getEndpoint(endpointName);
      if (!endpoint) {
        throw endpointNotFound(endpointName);
      }
      const cert = await store.getCertificate(certName);
      if (!cert) {
        throw certificateNotFound(certName);
      }
      const result = await store.upsertSubscription(endpoint.id, cert.id, spec, actorOf(req));
      reply.status(result.created ? 201 : 200);
      return { ...result.subscription, endpoint: endpoint.name, certificate: cert.name };
    },
  );

  api.get(
    '/subscriptions',
    {
      config: { access: 'read' },
      schema: {
        summary:
          'List subscriptions by certificate, then endpoint, with the deployment of the current version, one page',
        tags: ['subscriptions'],
        querystring: pageQuerySchema,
      },
    },
    async (req, reply) =>
      sendPage(req, reply, await store.fleet({}, pageOf(req.query)), (r) => ({
        ...r.subscription,
        endpoint: r.endpoint.name,
        certificate: r.certificate.name,
        deployment: r.deployment ?? null,
      })),
  );

  api.delete(
    '/subscriptions/:id',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Remove a subscription',
        tags: ['subscriptions'],
        params: z.object({ id: z.string().uuid() }),
      },
    },
    async (req, reply) => {
      await store.deleteSubscription(req.params.id, actorOf(req));
      reply.status(204);
    },
  );
}
