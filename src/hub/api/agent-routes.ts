import type { ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { deploymentSummary } from '../../deploy/deployment-summary.ts';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { CertfleetError, endpointNotFound } from '../../core/errors.ts';
import { SIGNATURE_HEADERS } from '../../protocol/request-signature.ts';
import { nameSchema } from '../../core/config-schema.ts';
import type { Certificate, CertificateVersion } from '../../core/types.ts';
import { splitPemCertificates } from '../../pki/inspect.ts';
import { sealKey } from '../../protocol/sealed-key.ts';
import {
  agentProbeReportResponseSchema,
  agentProbeReportSchema,
  enrollRequestSchema,
  reportBodySchema,
  type BundleResponse,
  type HubCaResponse,
} from '../../protocol/wire.ts';
import type { AuthenticatedAgent } from '../agent-protocol/agent-auth.ts';
import { AnswerSlots } from '../agent-protocol/answer-slots.ts';
import { DesiredStateBuilder } from '../agent-protocol/desired-state.ts';
import { mintEnrollmentToken, redeemEnrollmentToken } from '../agent-protocol/enrollment.ts';
import { ReportWriter } from '../agent-protocol/report-writer.ts';
import type { DeploymentTransitionInput } from '../../store/store.ts';
import { actorOf, type AppDeps, type ZodApi } from './build-app.ts';
import { pageOf, pageQuerySchema, sendPage } from './pagination.ts';
import { READS } from '../../store/fleet-queries.ts';
import {
  bundleSchema,
  desiredStateSchema,
  enrollResponseSchema,
  enrollmentTokenSchema,
  hubCaSchema,
  reportAcceptedSchema,
  statusRowSchema,
} from './response-schemas.ts';

declare module 'fastify' {
  interface FastifyRequest {
    rawBody?: Buffer;
  }
}

/** Touching `last_seen_at` at most this often per endpoint keeps a thousand long-polls from becoming writes. */
const TOUCH_EVERY_MS = 10_000;
/** ... and the write waits this long, so it does not compete with the reports of a convergence burst. */
const TOUCH_DELAY_MS = 2_000;
/** How long an unsealed version key stays in memory for sealing to the agents woken by one renewal. */
const KEY_CACHE_MS = 30_000;
/** Answers built and written at once when a renewal wakes thousands of long-polls (see answer-slots.ts). */
const ANSWERS_AT_ONCE = 32;

/**
 * Waits for one of `slots` for an answer, then keeps it until the response was handed to the socket or the
 * connection closed. A connection that closed while the answer waited (`gone`, or already destroyed) gets no slot
 * (false), and one taken meanwhile is given back at once: its `close` has passed and would never release it.
 */
async function answerSlot(slots: AnswerSlots, res: ServerResponse, gone: AbortSignal): Promise<boolean> {
  const release = await slots.acquire(gone);
  if (!release) return false;
  if (gone.aborted || res.destroyed) {
    release();
    return false;
  }
  res.once('finish', release);
  res.once('close', release);
  return true;
}

/** Aborts when the response's connection closes, until `done` is called. */
function closeSignal(res: NodeJS.EventEmitter): { signal: AbortSignal; done: () => void } {
  const gone = new AbortController();
  const onClose = () => gone.abort();
  res.once('close', onClose);
  return { signal: gone.signal, done: () => res.off('close', onClose) };
}

/**
 * The agent protocol under `/api/v1/agent/` (signed requests, see src/protocol/request-signature.ts) plus the admin
 * route that mints enrollment tokens. Registered inside the `/api/v1` plugin.
 */
export function registerAgentRoutes(api: ZodApi, deps: AppDeps): void {
  const { ctx, certificates } = deps;
  const { config, notifier } = deps.agentProtocol;
  const store = ctx.store;
  const probeService = deps.verification.probes;
  const desired = new DesiredStateBuilder(
    store,
    {
      intervalSeconds: probeService.config.intervalSeconds,
      timeoutMs: probeService.config.timeoutMs,
    },
    (from, to) => notifier.changesBetween(from, to),
  );
  const lastTouch = new Map<string, number>();
  const versions = new Map<string, CertificateVersion>();
  const reports = new ReportWriter(store);
  /** Answers carrying a desired state or a sealed bundle, built and written a bounded number at a time. */
  const answers = new AnswerSlots(ANSWERS_AT_ONCE);
  /**
   * `last_seen_at` writes, deferred off the request path: when a renewal wakes a thousand agents their touches
   * would otherwise be a thousand writes competing with the reports on the one database connection; written
   * together, in one statement.
   */
  const touches = new Map<string, string>();
  let touchTimer: NodeJS.Timeout | undefined;
  const flushTouches = async () => {
    touchTimer = undefined;
    const due = [...touches].map(([endpointId, at]) => ({ endpointId, at }));
    touches.clear();
    await store.touchEndpoints(due).catch((e: Error) => {
      ctx.logger.warn({ endpoints: due.length, err_message: e.message }, 'touching last_seen_at failed');
    });
  };
  const touchSoon = () => {
    touchTimer ??= setTimeout(() => void flushTouches(), TOUCH_DELAY_MS);
    touchTimer.unref();
  };
  /** Unsealed (at-rest) version keys for a short while: a renewal seals one key to many agents. */
  const keys = new Map<string, { pem: Promise<string>; until: number }>();

  const keyOf = (cert: Certificate, version: CertificateVersion): Promise<string> => {
    const now = Date.now();
    const hit = keys.get(version.id);
    if (hit && hit.until > now) return hit.pem;
    for (const [id, k] of keys) if (k.until <= now) keys.delete(id);
    const pem = certificates.privateKeyOf(cert, version);
    pem.catch(() => keys.delete(version.id));
    keys.set(version.id, { pem, until: now + KEY_CACHE_MS });
    return pem;
  };

  /** A version for one agent; the key is sealed per agent (fresh ephemeral X25519 key each time). */
  const bundleOf = async (
    agent: AuthenticatedAgent,
    cert: Certificate,
    version: CertificateVersion,
  ): Promise<BundleResponse> => ({
    versionId: version.id,
    certificateName: cert.name,
    fingerprint: version.fingerprint,
    certPem: version.certPem,
    chainPems: splitPemCertificates(version.chainPem),
    sealedKey: sealKey(await keyOf(cert, version), agent.keys.sealing, agent.endpoint.id, version.id),
  });

  api.post(
    '/endpoints/:name/enroll-token',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Mint a one-time enrollment token for an agent endpoint',
        tags: ['agents'],
        operationId: 'createEnrollmentToken',
        response: { 201: enrollmentTokenSchema },
        params: z.object({ name: nameSchema }),
        body: z
          .object({
            ttlSeconds: z
              .number()
              .int()
              .min(60)
              .max(90 * 86400)
              .optional(),
          })
          .optional(),
      },
    },
    async (req, reply) => {
      const endpoint = await store.getEndpoint(req.params.name);
      if (!endpoint) {
        throw endpointNotFound(req.params.name);
      }
      const minted = await mintEnrollmentToken(
        store,
        endpoint,
        {
          ...(req.body?.ttlSeconds ? { ttlSeconds: req.body.ttlSeconds } : {}),
          now: ctx.clock.now(),
          caFingerprint: ctx.internalCa.rootFingerprint,
        },
        actorOf(req),
      );
      reply.status(201).header('cache-control', 'no-store');
      return minted;
    },
  );

  api.get(
    '/status',
    {
      config: { access: 'read', pageCache: { reads: READS.fleetStatusRows } },
      schema: {
        summary:
          'Certificate × endpoint: current version, deployment state, agent contact; one page by certificate, then endpoint',
        tags: ['agents'],
        operationId: 'getStatus',
        response: { 200: z.array(statusRowSchema) },
        querystring: pageQuerySchema.extend({ certificate: nameSchema.optional() }),
      },
    },
    async (req, reply) => {
      const { certificate, ...query } = req.query;
      const only = certificate === undefined ? undefined : await store.getCertificate(certificate);
      if (certificate !== undefined && !only) return []; // as before: no rows for an unknown certificate
      const page = await store.fleetStatus(only ? { certificateId: only.id } : {}, pageOf(query));
      return sendPage(req, reply, page, (r) => ({
        subscriptionId: r.subscriptionId,
        certificate: r.certificateName,
        endpoint: r.endpointName,
        endpointKind: r.endpointKind,
        version: r.current
          ? {
              id: r.current.id,
              serial: r.current.serial,
              fingerprint: r.current.fingerprint,
              notAfter: r.current.notAfter,
            }
          : null,
        deployment: r.deployment
          ? {
              state: r.deployment.state,
              reason: r.deployment.reason ?? null,
              summary: deploymentSummary(r.deployment),
              updatedAt: r.deployment.updatedAt,
            }
          : null,
        lastSeenAt: r.lastSeenAt ?? null,
      }));
    },
  );

  const agentRoutes = async (instance: FastifyInstance) => {
    const agentApi = instance.withTypeProvider<ZodTypeProvider>();
    // Signatures cover the exact body bytes, so keep them next to the parsed JSON.
    agentApi.addContentTypeParser('application/json', { parseAs: 'buffer' }, (req, body, done) => {
      req.rawBody = body as Buffer;
      if ((body as Buffer).length === 0) return done(null, undefined);
      try {
        done(null, JSON.parse((body as Buffer).toString('utf8')));
      } catch {
        done(new CertfleetError('BAD_REQUEST', 'request body is not valid JSON', 'send JSON'), undefined);
      }
    });
    // Open long-polls answer at once on shutdown instead of holding the server for up to a poll period.
    agentApi.addHook('preClose', async () => notifier.close());
    agentApi.addHook('onClose', async () => {
      await reports.drain();
      if (touchTimer) clearTimeout(touchTimer);
      await flushTouches();
    });

    /** The agent the access hook authenticated (routes declared `agent`), with its contact recorded. */
    const seen = async (req: { agent?: AuthenticatedAgent }): Promise<AuthenticatedAgent> => {
      const agent = req.agent;
      if (!agent) throw new CertfleetError('UNAUTHENTICATED', 'not a signed agent request', 'enroll first');
      const now = Date.now();
      if ((lastTouch.get(agent.endpoint.id) ?? 0) + TOUCH_EVERY_MS <= now) {
        const first = !lastTouch.has(agent.endpoint.id);
        lastTouch.set(agent.endpoint.id, now);
        // First contact since this hub started is recorded at once; later ones may wait a moment.
        if (first) await store.touchEndpoint(agent.endpoint.id, ctx.clock.now().toISOString());
        else {
          touches.set(agent.endpoint.id, ctx.clock.now().toISOString());
          touchSoon();
        }
      }
      return agent;
    };

    const versionById = async (id: string): Promise<CertificateVersion | undefined> => {
      const hit = versions.get(id);
      if (hit) return hit;
      const v = await store.getVersion(id);
      if (v) {
        if (versions.size > 1000) versions.clear();
        versions.set(id, v); // versions never change once stored
      }
      return v;
    };

    agentApi.get(
      '/ca',
      {
        config: { access: 'public' },
        schema: {
          summary: "The hub's CA chain (pinned by fingerprint at enrollment)",
          tags: ['agents'],
          operationId: 'agentGetHubCa',
          response: { 200: hubCaSchema },
        },
      },
      async () => {
        return {
          rootPem: ctx.internalCa.rootPem,
          intermediatePem: ctx.internalCa.intermediatePem,
        } satisfies HubCaResponse;
      },
    );

    agentApi.post(
      '/enroll',
      {
        config: { access: 'public', guardsSecret: true },
        schema: {
          summary: 'Redeem an enrollment token with the agent public keys',
          tags: ['agents'],
          operationId: 'agentEnroll',
          response: { 200: enrollResponseSchema },
          body: enrollRequestSchema,
        },
      },
      async (req) => redeemEnrollmentToken(store, req.body, ctx.clock.now()),
    );

    agentApi.get(
      '/desired',
      {
        config: { access: 'agent' },
        schema: {
          summary: "Long-poll for this endpoint's desired state",
          tags: ['agents'],
          operationId: 'agentGetDesiredState',
          response: { 200: desiredStateSchema },
          querystring: z.object({
            since: z.coerce.number().int().min(-1).optional(),
            wait: z.coerce.number().min(0).max(300).optional(),
            /** Comma-separated version ids the agent holds; asks for the others' bundles inline. */
            have: z
              .string()
              .max(64 * 37)
              .regex(/^[0-9a-f,-]*$/)
              .optional(),
          }),
        },
      },
      async (req, reply) => {
        const agent = await seen(req);
        const since = req.query.since ?? -1;
        const waitMs = Math.min(req.query.wait ?? config.longPollSeconds, config.longPollSeconds) * 1000;
        // Only what concerns this endpoint wakes it: its own changes and new versions of what it subscribes to.
        const interest = {
          endpointId: agent.endpoint.id,
          certificateIds: (await desired.subscriptionsOf(agent.endpoint.id)).map((s) => s.certificateId),
        };
        const gone = closeSignal(reply.raw);
        let answering = false;
        try {
          if (waitMs > 0 && !(await notifier.hasNews(since, interest)))
            await notifier.wait(since, waitMs, gone.signal, interest);
          answering = await answerSlot(answers, reply.raw, gone.signal);
        } finally {
          gone.done();
        }
        if (!answering) return reply; // the agent hung up; nothing to send
        reply.header('cache-control', 'no-store');
        const have = req.query.have;
        return desired.build(
          agent.endpoint,
          have === undefined
            ? undefined
            : {
                have: new Set(have.split(',').filter(Boolean)),
                bundle: (cert, version) => bundleOf(agent, cert, version),
              },
        );
      },
    );

    agentApi.get(
      '/bundle/:versionId',
      {
        config: { access: 'agent' },
        schema: {
          summary: 'A version for this agent: certificate and chain, private key sealed to the agent key',
          tags: ['agents'],
          operationId: 'agentGetBundle',
          response: { 200: bundleSchema },
          params: z.object({ versionId: z.string().uuid() }),
        },
      },
      async (req, reply) => {
        const agent = await seen(req);
        const version = await versionById(req.params.versionId);
        if (!version) {
          throw new CertfleetError(
            'NOT_FOUND',
            `version ${req.params.versionId} not found`,
            'resync the desired state',
          );
        }
        const subs = await desired.subscriptionsOf(agent.endpoint.id);
        if (!subs.some((s) => s.certificateId === version.certificateId)) {
          throw new CertfleetError(
            'FORBIDDEN',
            `endpoint "${agent.endpoint.name}" does not subscribe to the certificate of version ${version.id}`,
            'subscribe the endpoint with `certfleet subscribe`',
          );
        }
        const cert = await store.getCertificateById(version.certificateId);
        if (!cert)
          throw new CertfleetError('NOT_FOUND', 'certificate was deleted', 'resync the desired state');
        const gone = closeSignal(reply.raw);
        const answering = await answerSlot(answers, reply.raw, gone.signal).finally(gone.done);
        if (!answering) return reply; // the agent hung up; nothing to send
        const bundle = await bundleOf(agent, cert, version);
        reply.header('cache-control', 'no-store');
        return bundle;
      },
    );

    agentApi.post(
      '/report',
      {
        config: { access: 'agent' },
        schema: {
          summary: 'Report deployment transitions',
          tags: ['agents'],
          operationId: 'agentReport',
          response: { 200: reportAcceptedSchema },
          body: reportBodySchema,
        },
      },
      async (req) => {
        const agent = await seen(req);
        const sent = 'reports' in req.body ? req.body.reports : [req.body];
        const items: DeploymentTransitionInput[] = [];
        const mine = await desired.subscriptionsOf(agent.endpoint.id);
        for (const r of sent) {
          const sub = mine.find((s) => s.id === r.subscriptionId);
          if (!sub) {
            throw new CertfleetError(
              'FORBIDDEN',
              `subscription ${r.subscriptionId} does not belong to endpoint "${agent.endpoint.name}"`,
              'resync the desired state',
            );
          }
          const version = await versionById(r.versionId);
          if (!version || version.certificateId !== sub.certificateId) {
            throw new CertfleetError(
              'FORBIDDEN',
              `version ${r.versionId} is not a version of this subscription's certificate`,
              'resync the desired state',
            );
          }
          items.push({
            subscriptionId: sub.id,
            versionId: version.id,
            state: r.state,
            info: { ...(r.reason ? { reason: r.reason } : {}), detail: { ...r.detail, at: r.at } },
            actor: agent.actor,
          });
        }
        // Answers only after the batch holding these transitions committed (durable before acknowledged). All or
        // nothing: a move the lifecycle table refuses answers 409 naming it, and the agent resends one by one.
        await reports.write(items);
        return { accepted: items.length };
      },
    );

    agentApi.post(
      '/probe-results',
      {
        config: { access: 'agent' },
        schema: {
          summary: "Report the agent's own probes of its endpoint's targets marked from: agent | both",
          tags: ['agents'],
          operationId: 'agentReportProbeResults',
          body: agentProbeReportSchema,
          response: { 200: agentProbeReportResponseSchema },
        },
      },
      async (req) => {
        const agent = await seen(req);
        // the signed timestamp (checked by the access hook) is the agent's clock when it sent the results
        const sentAt = Number(req.headers[SIGNATURE_HEADERS.timestamp]);
        const judgements = await probeService.acceptAgentResults(agent.endpoint, req.body.results, sentAt);
        return {
          accepted: req.body.results.length,
          judgements: judgements.map((j) => ({
            certificate: j.certificate,
            status: j.status,
            action: j.action,
          })),
        };
      },
    );
  };
  api.register(agentRoutes, { prefix: '/agent' });
}
