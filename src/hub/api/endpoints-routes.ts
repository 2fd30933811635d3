import { z } from 'zod';
import { certificateNotFound, endpointNotFound, errorOf } from '../../core/errors.ts';
import {
  endpointPatchSchema,
  endpointSpecSchema,
  nameSchema,
  subscriptionSpecSchema,
} from '../../core/config-schema.ts';
import { subscriptionSpecOf } from '../../core/subscription-spec.ts';
import type { FleetFilter, Store, SubscriptionRow } from '../../store/store.ts';
import { actorOf, type AppDeps, type ZodApi } from './build-app.ts';
import { pageOf, pageQuerySchema, sendPage } from './pagination.ts';
import { READS } from '../../store/fleet-queries.ts';
import {
  endpointSchema,
  endpointWithContactSchema,
  noContent,
  subscriptionSchema,
  subscriptionWithDeploymentSchema,
} from './response-schemas.ts';

export function registerEndpointRoutes(api: ZodApi, { ctx }: AppDeps): void {
  const { store } = ctx;

  api.post(
    '/endpoints',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Create an endpoint',
        tags: ['endpoints'],
        operationId: 'createEndpoint',
        response: { 201: endpointSchema },
        body: endpointSpecSchema,
      },
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
      config: { access: 'read', pageCache: { reads: READS.endpointRows } },
      schema: {
        summary: 'List endpoints by name, one page (next page: x-next-cursor / Link headers)',
        tags: ['endpoints'],
        operationId: 'listEndpoints',
        response: { 200: z.array(endpointWithContactSchema) },
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
      config: { access: 'read', pageCache: { reads: READS.endpointRows } },
      schema: {
        summary: 'Show an endpoint',
        tags: ['endpoints'],
        operationId: 'getEndpoint',
        response: { 200: endpointWithContactSchema },
        params: z.object({ name: nameSchema }),
      },
    },
    async (req) => {
      const endpoint = await store.getEndpoint(req.params.name);
      if (!endpoint) {
        throw endpointNotFound(req.params.name);
      }
      return { ...endpoint, lastSeenAt: (await store.lastSeen(endpoint.id)) ?? null };
    },
  );

  api.patch(
    '/endpoints/:name',
    {
      config: { access: 'admin' },
      schema: {
        summary: "Change an endpoint's probe targets or labels; its subscriptions stay",
        tags: ['endpoints'],
        operationId: 'updateEndpoint',
        response: { 200: endpointWithContactSchema },
        params: z.object({ name: nameSchema }),
        body: endpointPatchSchema,
      },
    },
    async (req) => {
      const endpoint = await store.updateEndpoint(req.params.name, req.body, actorOf(req));
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
        operationId: 'deleteEndpoint',
        response: { 204: noContent },
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
        operationId: 'putSubscription',
        response: { 200: subscriptionSchema, 201: subscriptionSchema },
        body: subscriptionSpecSchema,
      },
    },
    async (req, reply) => {
      const { endpoint: endpointName, certificate: certName } = req.body;
      const endpoint = await store.getEndpoint(endpointName);
      if (!endpoint) {
        throw endpointNotFound(endpointName);
      }
      const cert = await store.getCertificate(certName);
      if (!cert) {
        throw certificateNotFound(certName);
      }
      const spec = subscriptionSpecOf(req.body);
      const result = await store.upsertSubscription(endpoint.id, cert.id, spec, actorOf(req));
      reply.status(result.created ? 201 : 200);
      return { ...result.subscription, endpoint: endpoint.name, certificate: cert.name };
    },
  );

  api.get(
    '/subscriptions',
    {
      config: { access: 'read', pageCache: { reads: READS.subscriptionRows } },
      schema: {
        summary:
          'List subscriptions by certificate, then endpoint, with the deployment of the current version, one page',
        tags: ['subscriptions'],
        operationId: 'listSubscriptions',
        response: { 200: z.array(subscriptionWithDeploymentSchema) },
        querystring: pageQuerySchema.extend({
          endpoint: nameSchema.optional(),
          certificate: nameSchema.optional(),
        }),
      },
    },
    async (req, reply) => {
      const filter = await fleetFilterOf(store, req.query);
      return sendPage(req, reply, await store.subscriptionRows(filter, pageOf(req.query)), subscriptionView);
    },
  );

  api.get(
    '/subscriptions/:id',
    {
      config: { access: 'read', pageCache: { reads: READS.subscriptionRows } },
      schema: {
        summary: 'Show a subscription with the deployment of the current version',
        tags: ['subscriptions'],
        operationId: 'getSubscription',
        response: { 200: subscriptionWithDeploymentSchema },
        params: z.object({ id: z.string().uuid() }),
      },
    },
    async (req) => {
      const sub = await store.getSubscription(req.params.id);
      const row =
        sub &&
        (
          await store.subscriptionRows(
            { endpointId: sub.endpointId, certificateId: sub.certificateId },
            { limit: 1 },
          )
        ).items[0];
      if (!row) throw subscriptionNotFound(req.params.id);
      return subscriptionView(row);
    },
  );

  api.delete(
    '/subscriptions/:id',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Remove a subscription',
        tags: ['subscriptions'],
        operationId: 'deleteSubscription',
        response: { 204: noContent },
        params: z.object({ id: z.string().uuid() }),
      },
    },
    async (req, reply) => {
      await store.deleteSubscription(req.params.id, actorOf(req));
      reply.status(204);
    },
  );
}

const subscriptionNotFound = (id: string) => errorOf('SUBSCRIPTION_NOT_FOUND', id);

/** A subscription as the API shows it: its spec, the names around it and the current version's deployment. */
function subscriptionView(r: SubscriptionRow) {
  return {
    ...r.subscription,
    endpoint: r.endpointName,
    endpointKind: r.endpointKind,
    certificate: r.certificateName,
    deployment: r.deployment ?? null,
  };
}

/** `?endpoint=&certificate=` names as the fleet read's ids; an unknown name is a 404, not an empty list. */
async function fleetFilterOf(
  store: Store,
  q: { endpoint?: string; certificate?: string },
): Promise<FleetFilter> {
  const filter: FleetFilter = {};
  if (q.endpoint) {
    const e = await store.getEndpoint(q.endpoint);
    if (!e) throw endpointNotFound(q.endpoint);
    filter.endpointId = e.id;
  }
  if (q.certificate) {
    const c = await store.getCertificate(q.certificate);
    if (!c) throw certificateNotFound(q.certificate);
    filter.certificateId = c.id;
  }
  return filter;
}
