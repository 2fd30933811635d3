import { z } from 'zod';
import { certificateNotFound } from '../../core/errors.ts';
import { certificateSpecSchema, nameSchema } from '../../core/config-schema.ts';
import { actorOf, type AppDeps, type ZodApi } from './build-app.ts';
import { pageOf, pageQuerySchema, sendPage } from './pagination.ts';
import { READS } from '../../store/fleet-queries.ts';
import { certificateView, versionView } from './views.ts';
import { certificateDetailSchema, certificateSchema, noContent, versionSchema } from './response-schemas.ts';

const nameParams = z.object({ name: nameSchema });

export function registerCertificateRoutes(api: ZodApi, { ctx, certificates }: AppDeps): void {
  const { store } = ctx;
  const mustGet = async (name: string) => {
    const cert = await store.getCertificate(name);
    if (!cert) {
      throw certificateNotFound(name);
    }
    return cert;
  };

  api.post(
    '/certificates',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Create a certificate and issue its first version',
        tags: ['certificates'],
        operationId: 'createCertificate',
        response: { 201: certificateSchema },
        body: certificateSpecSchema,
      },
    },
    async (req, reply) => {
      const cert = await certificates.create(req.body, actorOf(req));
      reply.status(201);
      return certificateView(cert, await store.currentVersion(cert.id));
    },
  );

  api.get(
    '/certificates',
    {
      config: { access: 'read', pageCache: { reads: READS.certificateRows } },
      schema: {
        summary: 'List certificates by name, one page (next page: x-next-cursor / Link headers)',
        tags: ['certificates'],
        operationId: 'listCertificates',
        response: { 200: z.array(certificateSchema) },
        querystring: pageQuerySchema,
      },
    },
    async (req, reply) =>
      sendPage(req, reply, await store.certificateRows(pageOf(req.query)), (r) =>
        certificateView(r.certificate, r.current),
      ),
  );

  api.get(
    '/certificates/:name',
    {
      config: { access: 'read', pageCache: true },
      schema: {
        summary: 'Show a certificate with its current chain',
        tags: ['certificates'],
        operationId: 'getCertificate',
        response: { 200: certificateDetailSchema },
        params: nameParams,
      },
    },
    async (req) => {
      const cert = await mustGet(req.params.name);
      const current = await store.currentVersion(cert.id);
      const subscriptions = await store.listSubscriptions({ certificateId: cert.id });
      return {
        ...certificateView(cert, current),
        currentPem: current ? current.certPem + current.chainPem : null,
        subscriptions: await Promise.all(
          subscriptions.map(async (s) => ({
            id: s.id,
            endpoint: (await store.getEndpointById(s.endpointId))?.name,
          })),
        ),
      };
    },
  );

  // POST /certificates/:name/renew (incl. dry run) lives in renewal-routes.ts.

  api.delete(
    '/certificates/:name',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Delete a certificate (refused while subscribed unless force=true)',
        tags: ['certificates'],
        operationId: 'deleteCertificate',
        response: { 204: noContent },
        params: nameParams,
        querystring: z.object({ force: z.enum(['true', 'false']).optional() }),
      },
    },
    async (req, reply) => {
      await store.deleteCertificate(req.params.name, actorOf(req), { force: req.query.force === 'true' });
      reply.status(204);
    },
  );

  api.get(
    '/certificates/:name/versions',
    {
      config: { access: 'read', pageCache: { reads: READS.certificateRows } },
      schema: {
        summary: 'List versions, newest first',
        tags: ['certificates'],
        operationId: 'listVersions',
        response: { 200: z.array(versionSchema) },
        params: nameParams,
      },
    },
    async (req) => {
      const cert = await mustGet(req.params.name);
      return (await store.listVersions(cert.id)).map(versionView);
    },
  );
}
