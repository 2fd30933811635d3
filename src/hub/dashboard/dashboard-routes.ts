/**
 * The web dashboard, served by the hub itself under /ui: a static page and a small dependency-free script
 * (assets/), JSON views and actions for it (dashboard-views.ts, dashboard-actions.ts), a live stream
 * (live-stream.ts), and sign-in/sign-out. Every /ui response carries a strict CSP and no-sniff/no-referrer headers;
 * the views and actions take the session cookie and nothing else (see session-auth.ts and api/access.ts).
 */
import { existsSync, readFileSync } from 'node:fs';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { CertfleetError } from '../../core/errors.ts';
import { hashToken } from '../auth.ts';
import type { AppDeps } from '../api/build-app.ts';
import { checkSameOrigin } from './session-auth.ts';
import { SESSION_COOKIE, type SessionStore } from './session-store.ts';
import { LiveStreams } from './live-stream.ts';
import { FleetOverview } from './fleet-overview.ts';
import { registerDashboardViews } from './dashboard-views.ts';
import { registerDashboardActions } from './dashboard-actions.ts';

export const SECURITY_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
});

const ASSETS: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
};

/** Beside this module in src/, or dist/ui/ in the compiled package (scripts/build.mjs copies them there). */
function loadAssets(): Map<string, Buffer> {
  const dir = [new URL('./assets/', import.meta.url), new URL('../ui/', import.meta.url)].find((d) =>
    existsSync(new URL('index.html', d)),
  );
  if (!dir) throw new Error('dashboard assets not found: run `npm run build`');
  return new Map(Object.keys(ASSETS).map((f) => [f, readFileSync(new URL(f, dir))]));
}

export interface Dashboard {
  sessions: SessionStore;
  overview: FleetOverview;
  live: LiveStreams;
  deps: AppDeps;
}

function sessionCookie(req: FastifyRequest, value: string, maxAgeSeconds?: number): string {
  const secure = req.protocol === 'https' ? '; Secure' : '';
  const age = maxAgeSeconds !== undefined ? `; Max-Age=${maxAgeSeconds}` : '';
  return `${SESSION_COOKIE}=${value}; Path=/ui; HttpOnly; SameSite=Strict${secure}${age}`;
}

export async function registerDashboard(
  app: FastifyInstance,
  deps: AppDeps,
  sessions: SessionStore,
): Promise<Dashboard> {
  const { ctx } = deps;
  const silentAfterMs = deps.verification.alerts.config.agentSilentAfterMinutes * 60_000;
  const dashboard: Dashboard = {
    sessions,
    overview: new FleetOverview(ctx.store, ctx.clock, silentAfterMs),
    live: new LiveStreams(ctx.store.events, sessions),
    deps,
  };
  // Streams first, or closing the server would wait for them.
  app.addHook('preClose', async () => dashboard.live.closeAll());
  app.addHook('onClose', async () => dashboard.overview.close());
  // the first visitor finds the overview built (10,000 rows take seconds); a failure here is retried on first read
  dashboard.overview.start((e) =>
    ctx.logger.warn(
      { err_message: e instanceof Error ? e.message : String(e) },
      'building the fleet overview failed',
    ),
  );
  const assets = loadAssets();

  await app.register(
    async (ui) => {
      ui.addHook('onSend', async (_req, reply) => {
        for (const [k, v] of Object.entries(SECURITY_HEADERS)) void reply.header(k, v);
      });
      const z2 = ui.withTypeProvider<ZodTypeProvider>();
      const page = (file: string) => async (_req: FastifyRequest, reply: FastifyReply) =>
        reply
          .type(ASSETS[file])
          .header('cache-control', file === 'index.html' ? 'no-store' : 'no-cache')
          .send(assets.get(file));
      const publicAsset = { schema: { hide: true }, config: { access: 'public' as const } };
      ui.get('/', publicAsset, page('index.html'));
      ui.get('/assets/app.js', publicAsset, page('app.js'));
      ui.get('/assets/app.css', publicAsset, page('app.css'));

      z2.post(
        '/session',
        {
          schema: { hide: true, body: z.strictObject({ token: z.string().min(1).max(512) }) },
          config: { access: 'public', guardsSecret: true },
        },
        async (req, reply) => {
          checkSameOrigin(req);
          const hash = hashToken(req.body.token.trim());
          const token = await ctx.store.findTokenByHash(hash);
          const now = ctx.clock.now();
          if (
            !token ||
            (token.kind !== 'admin' && token.kind !== 'read') ||
            (token.expiresAt && new Date(token.expiresAt) < now)
          ) {
            throw new CertfleetError(
              'UNAUTHENTICATED',
              'this token cannot sign in to the dashboard',
              'use a read or admin API token (`certfleet token create`)',
            );
          }
          const session = sessions.create(hash);
          await ctx.store.appendEvent({
            actor: `${token.kind}:${token.name}`,
            kind: 'dashboard.signed_in',
            subject: `token:${token.name}`,
            data: {},
          });
          void reply.header('set-cookie', sessionCookie(req, session.id));
          return { name: token.name, role: token.kind, csrf: session.csrf };
        },
      );

      z2.get(
        '/api/session',
        { schema: { hide: true }, config: { access: 'read', session: true } },
        async (req) => ({ name: req.token!.name, role: req.token!.kind, csrf: req.session!.csrf }),
      );

      z2.post(
        '/session/end',
        { schema: { hide: true }, config: { access: 'read', session: true } },
        async (req, reply) => {
          sessions.end(req.session!.id);
          void reply.header('set-cookie', sessionCookie(req, '', 0));
          return { signedOut: true };
        },
      );

      z2.get(
        '/live',
        { schema: { hide: true }, config: { access: 'read', session: true } },
        async (req, reply) => dashboard.live.serve(req, reply, { ...SECURITY_HEADERS }),
      );

      registerDashboardViews(z2, dashboard);
      registerDashboardActions(z2, dashboard);
    },
    { prefix: '/ui' },
  );
  return dashboard;
}
