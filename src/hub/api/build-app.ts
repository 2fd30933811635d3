import swagger from '@fastify/swagger';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import {
  hasZodFastifySchemaValidationErrors,
  serializerCompiler,
  validatorCompiler,
  type ZodTypeProvider,
} from 'fastify-type-provider-zod';
import { z } from 'zod';
import { isCertfleetError } from '../../core/errors.ts';
import { formatIssuePath } from '../../core/config-schema.ts';
import type { TokenRecord } from '../../store/store.ts';
import { installAccessControl, type RouteAccess } from './access.ts';
import { FailureLimiter, type FailureLimitOptions } from './failure-limiter.ts';
import { PageCache, type PageCacheOptions } from './page-cache.ts';
import { AgentAuthCache, authenticateAgent } from '../agent-protocol/agent-auth.ts';
import { NonceCache } from '../agent-protocol/nonce-cache.ts';
import type { NonceLedger } from '../agent-protocol/shared-nonces.ts';
import { MAX_SKEW_MS } from '../../protocol/request-signature.ts';
import type { CertificateService } from '../certificate-service.ts';
import type { HubContext } from '../hub-context.ts';
import { registerApplyRoutes } from './apply-routes.ts';
import { registerCertificateRoutes } from './certificates-routes.ts';
import { registerEndpointRoutes } from './endpoints-routes.ts';
import { registerEventRoutes } from './events-routes.ts';
import { registerAgentRoutes } from './agent-routes.ts';
import { registerRedeployRoutes } from './redeploy-routes.ts';
import { registerRenewalRoutes } from './renewal-routes.ts';
import { http01Route, type Http01TokenStore } from '../../solvers/http01-responder.ts';
import type { RenewalService } from '../renewal/renewal-service.ts';
import { registerImportRoutes } from './import-routes.ts';
import { registerDoctorRoutes } from './doctor-routes.ts';
import type { Verification } from '../verification.ts';
import type { AgentProtocol } from '../agent-protocol/agent-config.ts';
import { registerProbeRoutes } from './probe-routes.ts';
import { registerAlertRoutes } from './alert-routes.ts';
import { registerMetricsRoute } from './metrics-route.ts';
import { swaggerOptions } from './openapi.ts';
import { healthSchema } from './response-schemas.ts';
import { checkingSerializerCompiler } from './checked-responses.ts';
import { registerConnectorRoutes } from './connector-routes.ts';
import type { ConnectorService } from '../connector-service.ts';
import { SessionStore } from '../dashboard/session-store.ts';
import { authenticateSession } from '../dashboard/session-auth.ts';
import { registerDashboard } from '../dashboard/dashboard-routes.ts';
import { registerTokenRoutes } from './token-routes.ts';
import { registerEmergencyRoutes } from './emergency-routes.ts';
import type { CampaignService } from '../emergency/campaign-service.ts';
import { isDatabaseUnavailable, storeUnavailable } from '../../store/postgres/database-url.ts';

export interface AppDeps {
  ctx: HubContext;
  certificates: CertificateService;
  https?: { key: string; cert: string };
  bodyLimit?: number;
  /** Renewal (plan, renew, dry run, revoke): every issuance after the first goes through it. */
  renewal: RenewalService;
  /** Answers http-01 challenges at /.well-known/acme-challenge/:token (for proxies in front of endpoints). */
  http01Store?: Http01TokenStore;
  /** Probes, alerts, metrics (src/hub/verification.ts). */
  verification: Verification;
  /** Agent protocol settings and the long-poll wake-up (src/hub/agent-protocol/agent-config.ts). */
  agentProtocol: AgentProtocol;
  /** Connector endpoints' settings and deploys (src/hub/connector-service.ts); absent: no connector routes. */
  connectors?: ConnectorService;
  /** Where agent request nonces are remembered (the store when hubs share one); default: this process's memory. */
  nonces?: NonceLedger;
  /** Whether this hub leads the cluster now (runs the planner, probes, alerts, backups); absent: always. */
  leader?: () => boolean;
  /** Emergency mass reissue campaigns (src/hub/emergency/); absent: no emergency routes. */
  campaigns?: CampaignService;
  /** Failed token and enrollment attempts allowed per client address (default 20 a minute). */
  authFailureLimit?: FailureLimitOptions;
  /**
   * Proxies whose X-Forwarded-For / X-Forwarded-Proto are believed (trusted-proxies.ts, parsed there): the client's
   * address and the scheme it used, for the failure limiter and the dashboard's Origin check. Default: none.
   */
  trustedProxies?: string[];
  /**
   * Tests: an answer that its response schema would shrink (a field the schema does not list) fails the request
   * instead of losing the field, so every API test also checks the schemas (checked-responses.ts).
   */
  checkResponses?: boolean;
  /** The rendered-page cache of read routes (page-cache.ts); on by default. */
  pageCache?: PageCacheOptions;
}

/** A fastify instance whose routes are typed by their zod schemas. */
export type ZodApi = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
>;

/** Builds the hub's HTTP app without listening, so tests drive it with `app.inject()`. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const { ctx } = deps;
  const app = Fastify({
    logger: false,
    bodyLimit: deps.bodyLimit ?? 1024 * 1024,
    ...(deps.trustedProxies?.length ? { trustProxy: deps.trustedProxies } : {}),
    ...(deps.https ? { https: deps.https } : {}),
  }) as unknown as FastifyInstance;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(deps.checkResponses ? checkingSerializerCompiler : serializerCompiler);

  await app.register(swagger, swaggerOptions);

  const nonces = deps.nonces ?? new NonceCache(MAX_SKEW_MS);
  const sessions = new SessionStore(ctx.store, ctx.clock);
  const agentAuth = new AgentAuthCache(ctx.store);
  app.addHook('onClose', async () => agentAuth.close());
  const routeAccess = installAccessControl(app, {
    store: ctx.store,
    clock: ctx.clock,
    authenticateAgent: (req) => authenticateAgent(agentAuth, nonces, req, ctx.clock.now().getTime()),
    failures: new FailureLimiter(deps.authFailureLimit),
    authenticateSession: (req) => authenticateSession(sessions, req),
  });
  app.decorate('routeAccess', routeAccess);
  // after access control: its preHandler runs once the route's own auth accepted the request
  const pageCache = new PageCache(ctx.store.generation, deps.pageCache);
  pageCache.install(app);
  app.decorate('pageCache', pageCache);

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) {
      const problems = err.validation.map((v) => {
        const parts = v.instancePath
          .split('/')
          .filter(Boolean)
          .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
        const path = formatIssuePath(parts);
        return `${path ? `${path}: ` : ''}${v.message}`;
      });
      return reply.status(400).send({
        code: 'VALIDATION_FAILED',
        message: `invalid ${err.validationContext ?? 'request'}: ${problems.join('; ')}`,
        hint: 'see /api/v1/openapi.json for the expected shape',
      });
    }
    if (isCertfleetError(err)) return reply.status(err.status).send(err.toJSON());
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      return reply.status(413).send({
        code: 'PAYLOAD_TOO_LARGE',
        message: 'request body is too large',
        hint: `send at most ${Math.round((deps.bodyLimit ?? 1024 * 1024) / 1024)} KiB per request`,
      });
    }
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.status(err.statusCode).send({
        code: 'BAD_REQUEST',
        message: err.message,
        hint: 'send a JSON body with content-type application/json',
      });
    }
    if (isDatabaseUnavailable(err)) {
      // a database restart or failover: expected now and then, worth a line, not a stack
      ctx.logger.warn(
        { err: err.message, url: req.url, method: req.method },
        'request failed: the database is unreachable; answered 503',
      );
      return reply.status(503).send(storeUnavailable(err).toJSON());
    }
    ctx.logger.error({ err, url: req.url, method: req.method }, 'request failed');
    return reply.status(500).send({ code: 'INTERNAL', message: 'internal error', hint: 'see the hub log' });
  });

  app.setNotFoundHandler((req, reply) =>
    reply.status(404).send({
      code: 'NOT_FOUND',
      message: `no route ${req.method} ${req.url.split('?')[0]}`,
      hint: 'see /api/v1/openapi.json',
    }),
  );

  app.get(
    '/healthz',
    {
      schema: {
        summary: "Liveness and the store's desired-state revision",
        tags: ['hub'],
        operationId: 'getHealth',
        response: { 200: healthSchema },
      },
      config: { access: 'public' },
    },
    async () => ({
      status: 'ok' as const,
      revision: await ctx.store.revision(),
      leader: deps.leader?.() ?? true,
    }),
  );

  await app.register(
    async (api) => {
      const z = api.withTypeProvider<ZodTypeProvider>();
      registerCertificateRoutes(z, deps);
      registerEndpointRoutes(z, deps);
      registerConnectorRoutes(z, deps);
      registerEventRoutes(z, deps);
      registerApplyRoutes(z, deps);
      registerRenewalRoutes(z, deps);
      registerAgentRoutes(z, deps);
      registerRedeployRoutes(z, deps);
      registerImportRoutes(z, deps);
      registerDoctorRoutes(z, deps);
      registerProbeRoutes(z, deps);
      registerAlertRoutes(z, deps);
      registerTokenRoutes(z, deps);
      registerEmergencyRoutes(z, deps);
    },
    { prefix: '/api/v1' },
  );
  if (deps.http01Store)
    app.get(
      '/.well-known/acme-challenge/:token',
      {
        schema: {
          summary: 'Answers ACME http-01 challenges for names whose port 80 is proxied to the hub',
          tags: ['hub'],
          operationId: 'getAcmeChallenge',
          params: z.object({ token: z.string() }),
          response: {
            200: { description: 'The key authorization', content: { 'text/plain': { schema: z.string() } } },
            404: { description: 'No such challenge', content: { 'text/plain': { schema: z.string() } } },
          },
        },
        config: { access: 'public' },
      },
      http01Route(deps.http01Store),
    );
  registerMetricsRoute(app, deps);
  await registerDashboard(app, deps, sessions);
  app.get(
    '/api/v1/openapi.json',
    {
      schema: {
        summary: 'This OpenAPI document',
        tags: ['hub'],
        operationId: 'getOpenApiDocument',
        response: { 200: z.record(z.string(), z.unknown()).describe('an OpenAPI 3.1 document') },
      },
      config: { access: 'public' },
    },
    async () => app.swagger(),
  );
  return app;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Every route as registered with its declared access (see access.ts). */
    routeAccess: RouteAccess[];
    pageCache: PageCache;
  }
}

/** The actor recorded in events for a request: `admin:<token name>`, never the secret. */
export const actorOf = (req: { token?: TokenRecord }): string =>
  req.token ? `${req.token.kind}:${req.token.name}` : 'anonymous';

/**
 * Records an admin request whose effects carry another actor (probes run now: transitions by `probe`; alert
 * evaluation: notifications), so the audit log still says which token asked for it. Appended before the action
 * runs: a request that then fails was still made.
 */
export const auditRequest = (
  ctx: HubContext,
  req: { token?: TokenRecord },
  kind: string,
  subject: string,
): Promise<void> => ctx.store.appendEvent({ actor: actorOf(req), kind, subject, data: {} });
