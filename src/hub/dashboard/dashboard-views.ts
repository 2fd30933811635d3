/**
 * The dashboard's JSON views (read access, session cookie). Each answers from a bounded number of queries:
 * the overview from the cached read model (fleet-overview.ts), a detail from one certificate's or endpoint's rows.
 * Views carry public material only (fingerprints, serials, dates, names), never a PEM, key or token.
 */
import { z } from 'zod';
import { nameSchema } from '../../core/config-schema.ts';
import { certificateNotFound, endpointNotFound } from '../../core/errors.ts';
import { windowState } from '../../deploy/change-window.ts';
import type { ZodApi } from '../api/build-app.ts';
import { versionView } from '../api/views.ts';
import { renewFractionFor } from '../planner/renewal-policy.ts';
import { probeTargetKey, sourcesFor, targetsForSubscription } from '../../probe/probe-targets.ts';
import type { Dashboard } from './dashboard-routes.ts';
import { OVERVIEW_READS } from './fleet-overview.ts';

const read = { access: 'read' as const, session: true };
/** Cached pages (page-cache.ts) of views that also move with the clock (attention, due times, windows). */
const cachedRead = { ...read, pageCache: { maxAgeMs: 5000 } };
/** The overview's pages, drawn from its read model (fleet-overview.ts): fresh while nothing it reads is written. */
const cachedOverview = { ...read, pageCache: { maxAgeMs: 5000, reads: OVERVIEW_READS } };
const cachedEvents = { ...read, pageCache: { reads: ['events' as const] } };
const OVERVIEW_PAGE = 50;
/** Deployments whose state timeline a certificate detail shows (one event query each). */
const TIMELINES_SHOWN = 20;
/** How far ahead the expiry timeline looks, and how many certificates it draws. */
export const TIMELINE_DAYS = 42;
const TIMELINE_ROWS = 60;

const overviewQuery = z.object({
  state: z.string().max(40).optional(),
  issuer: z.string().max(200).optional(),
  endpoint: z.string().max(200).optional(),
  name: z.string().max(200).optional(),
  cursor: z
    .string()
    .regex(/^\d{1,7}$/)
    .optional(),
  limit: z.coerce.number().int().min(1).max(500).default(OVERVIEW_PAGE),
});

export function registerDashboardViews(api: ZodApi, d: Dashboard): void {
  const { ctx, renewal, verification } = d.deps;
  const store = ctx.store;

  api.get(
    '/api/overview',
    { schema: { hide: true, querystring: overviewQuery }, config: cachedOverview },
    async (req) => {
      const { cursor, limit, ...filter } = req.query;
      const clean = Object.fromEntries(Object.entries(filter).filter(([, v]) => v !== undefined && v !== ''));
      return d.overview.page(clean, Number(cursor ?? 0), limit);
    },
  );

  // The overview's emergency panel: running campaigns with the progress the CLI shows (same service, same counts).
  api.get('/api/emergency', { schema: { hide: true }, config: read }, async () => {
    return { running: (await d.deps.campaigns?.list({ state: 'running' })) ?? [] };
  });

  api.get('/api/timeline', { schema: { hide: true }, config: cachedOverview }, async () => {
    const now = ctx.clock.now();
    const until = now.getTime() + TIMELINE_DAYS * 86_400_000;
    const page = await d.overview.page({}, 0, Number.MAX_SAFE_INTEGER);
    // One bar per certificate (its rows share the version), soonest expiry first, within the horizon.
    const seen = new Set<string>();
    const bars = [];
    for (const r of [...page.items].sort((a, b) => (a.notAfter ?? '~').localeCompare(b.notAfter ?? '~'))) {
      if (seen.has(r.certificate) || !r.notAfter || !r.notBefore || Date.parse(r.notBefore) > until) continue;
      seen.add(r.certificate);
      const lifetime = Date.parse(r.notAfter) - Date.parse(r.notBefore);
      bars.push({
        certificate: r.certificate,
        notBefore: r.notBefore,
        notAfter: r.notAfter,
        // the renewal window: the CA's (ARI) when given, else from the lifetime fraction to expiry
        renewFrom:
          r.ari?.start ??
          new Date(Date.parse(r.notBefore) + lifetime * renewFractionFor(lifetime)).toISOString(),
        renewUntil: r.ari?.end ?? r.notAfter,
        basis: r.ari ? 'ari' : 'lifetime',
        attention: r.attention.kind,
      });
      if (bars.length >= TIMELINE_ROWS) break;
    }
    return { now: now.toISOString(), until: new Date(until).toISOString(), bars };
  });

  api.get(
    '/api/certificates/:name',
    { schema: { hide: true, params: z.object({ name: nameSchema }) }, config: cachedRead },
    async (req) => {
      const cert = await store.getCertificate(req.params.name);
      if (!cert) throw certificateNotFound(req.params.name);
      const [versions, plan, fleet, rows] = await Promise.all([
        store.listVersions(cert.id),
        renewal.planOne(cert.name),
        store.fleet({ certificateId: cert.id }, { limit: 200 }),
        d.overview.rowsOf({ certificate: cert.name }),
      ]);
      const attentionOf = new Map(rows.map((r) => [r.endpoint, r.attention]));
      const deployments = await Promise.all(
        fleet.items.map(async (f, i) => {
          const targets = targetsForSubscription(
            f.endpoint,
            f.subscription,
            f.certificate,
            f.endpointSubscriptions,
          );
          const timeline =
            f.deployment && i < TIMELINES_SHOWN
              ? (await store.listEvents({ subject: `deployment:${f.deployment.id}`, limit: 50 })).map(
                  (e) => ({
                    at: e.at,
                    state: e.kind.replace(/^deployment\./, ''),
                    actor: e.actor,
                    ...(typeof e.data.reason === 'string' ? { reason: e.data.reason } : {}),
                  }),
                )
              : [];
          return {
            endpoint: f.endpoint.name,
            endpointKind: f.endpoint.kind,
            state: f.deployment?.state ?? null,
            reason: f.deployment?.reason ?? null,
            since: f.deployment?.updatedAt ?? null,
            attention: attentionOf.get(f.endpoint.name) ?? null,
            timeline,
            // one row per target and source that probes it (hub, the endpoint's agent, or both)
            served: targets.flatMap((t) =>
              sourcesFor(t, f.endpoint.name).map((source) => {
                const p = f.probes.find((r) => r.targetKey === probeTargetKey(t) && r.source === source);
                return {
                  target: probeTargetKey(t),
                  source,
                  issued: f.current?.fingerprint ?? null,
                  served: p?.fingerprint ?? null,
                  matches: p?.fingerprint !== undefined && p.fingerprint === f.current?.fingerprint,
                  probedAt: p?.at ?? null,
                  error: p && !p.ok ? `${p.errorKind ?? 'error'}: ${p.errorMessage ?? ''}` : null,
                };
              }),
            ),
          };
        }),
      );
      return {
        certificate: cert,
        versions: versions.map(versionView).reverse(),
        plan: {
          reason: plan.decision.reason,
          message: plan.decision.message,
          reissue: plan.decision.reissue,
          urgent: plan.decision.urgent,
          dueAt: plan.dueAt.toISOString(),
          headroom: plan.headroom,
          ...(plan.deferral
            ? { deferral: { ...plan.deferral, freesAt: plan.deferral.freesAt.toISOString() } }
            : {}),
        },
        deployments,
        moreDeployments: fleet.next !== undefined,
      };
    },
  );

  api.get(
    '/api/endpoints/:name',
    { schema: { hide: true, params: z.object({ name: nameSchema }) }, config: cachedRead },
    async (req) => {
      const endpoint = await store.getEndpoint(req.params.name);
      if (!endpoint) throw endpointNotFound(req.params.name);
      const now = ctx.clock.now();
      const [lastSeenAt, fleet, probes, rows] = await Promise.all([
        store.lastSeen(endpoint.id),
        store.fleet({ endpointId: endpoint.id }, { limit: 500 }),
        store.listProbeResults({ endpointId: endpoint.id }),
        d.overview.rowsOf({ endpoint: endpoint.name }),
      ]);
      const attentionOf = new Map(rows.map((r) => [r.certificate, r.attention]));
      return {
        endpoint,
        lastSeenAt: lastSeenAt ?? null,
        subscriptions: fleet.items.map((f) => {
          const w = f.subscription.window;
          const ws = w ? windowState(w, now) : undefined;
          return {
            certificate: f.certificate.name,
            state: f.deployment?.state ?? null,
            since: f.deployment?.updatedAt ?? null,
            attention: attentionOf.get(f.certificate.name) ?? null,
            outputs: f.subscription.outputs,
            reload: f.subscription.reload ?? null,
            configTest: f.subscription.configTest ?? null,
            window: w
              ? {
                  cron: w.cron,
                  timezone: w.timezone,
                  durationMinutes: w.durationMinutes,
                  open: ws!.open,
                  ...(ws!.open ? { closesAt: ws!.closesAt } : { opensAt: ws!.opensAt ?? null }),
                }
              : null,
          };
        }),
        moreSubscriptions: fleet.next !== undefined,
        probes: probes.map((p) => ({
          target: p.targetKey,
          at: p.at,
          ok: p.ok,
          fingerprint: p.fingerprint ?? null,
          notAfter: p.notAfter ?? null,
          error: p.ok ? null : `${p.errorKind ?? 'error'}: ${p.errorMessage ?? ''}`,
        })),
      };
    },
  );

  api.get(
    '/api/events',
    {
      schema: {
        hide: true,
        querystring: z.object({
          kind: z.string().max(100).optional(),
          subject: z.string().max(300).optional(),
          afterId: z.coerce.number().int().min(0).optional(),
          beforeId: z.coerce.number().int().min(1).optional(),
          limit: z.coerce.number().int().min(1).max(500).default(50),
        }),
      },
      config: cachedEvents,
    },
    async (req) => {
      const { kind, subject, afterId, beforeId, limit } = req.query;
      const events = await store.listEvents({
        ...(kind ? { kind } : {}),
        ...(subject ? { subject } : {}),
        ...(afterId !== undefined ? { afterId } : beforeId !== undefined ? { beforeId } : {}),
        limit,
      });
      // `next`: newer events may follow (a forward walk); `older`: older ones may precede (paging backwards)
      const full = events.length === limit;
      return {
        events,
        ...(afterId !== undefined && full ? { next: events.at(-1)!.id } : {}),
        ...(afterId === undefined && full ? { older: events[0].id } : {}),
      };
    },
  );

  api.get('/api/alerts', { schema: { hide: true }, config: read }, async () => {
    const [firing, resolved, acks] = await Promise.all([
      verification.alerts.list(),
      store.listEvents({ kind: 'alert.resolved', limit: 50 }),
      store.listEvents({ kind: 'alert.acknowledged', limit: 500 }),
    ]);
    // an acknowledgement holds for the firing it named (key + since), never for a later firing of the same alert
    const firingOf = (key: string, since: unknown) => `${key}\n${typeof since === 'string' ? since : ''}`;
    const ackOf = new Map(
      acks
        .filter((e) => 'firingSince' in e.data)
        .map((e) => [
          firingOf(e.subject.replace(/^alert:/, ''), e.data.firingSince),
          { by: typeof e.data.token === 'string' ? e.data.token : e.actor, at: e.at },
        ]),
    );
    return {
      firing: firing.map((a) => ({ ...a, acknowledged: ackOf.get(firingOf(a.key, a.since)) ?? null })),
      resolved: resolved
        .reverse()
        .map((e) => ({ ...e.data, key: e.subject.replace(/^alert:/, ''), at: e.at })),
    };
  });
}
