import { z } from 'zod';
import { CertfleetError, certificateNotFound, endpointNotFound } from '../../core/errors.ts';
import { nameSchema } from '../../core/config-schema.ts';
import type { Actor, Store } from '../../store/store.ts';
import { actorOf, type AppDeps, type ZodApi } from './build-app.ts';
import { redeploySchema } from './response-schemas.ts';

/** One endpoint's part of a `POST /certificates/:name/deploy` answer. */
export interface RedeployRequestView {
  endpoint: string;
  subscriptionId: string;
  /** The deployment's state when the request was made (null: never reported). */
  previousState: string | null;
  token: string;
}

export interface RedeployResponse {
  certificate: string;
  version: { id: string; serial: string; fingerprint: string };
  overrideWindow: boolean;
  requests: RedeployRequestView[];
}

/**
 * `POST /certificates/:name/deploy {endpoint?, overrideWindow?}` (`certfleet deploy`): asks the subscribed agents to
 * deploy the current version again (after a `rolled_back` or `failed` deployment, or a server change), optionally
 * reloading outside the change window. Each request is a store transaction that bumps the desired-state revision
 * (waking long-polling agents at once) and records an event with the admin token as actor.
 */
export function registerRedeployRoutes(api: ZodApi, { ctx }: AppDeps): void {
  api.post(
    '/certificates/:name/deploy',
    {
      config: { access: 'admin' },
      schema: {
        summary: "Ask the subscribed agents to (re)deploy the certificate's current version now",
        tags: ['agents'],
        operationId: 'redeployCertificate',
        response: { 202: redeploySchema },
        params: z.object({ name: nameSchema }),
        body: z
          .object({
            /** Only this endpoint (default: every endpoint subscribed to the certificate). */
            endpoint: nameSchema.optional(),
            /** Reload even outside the change window; recorded as `deployment.window_override_requested`. */
            overrideWindow: z.boolean().optional(),
          })
          .optional(),
      },
    },
    async (req, reply) => {
      // Read ctx.store per request: the revision notifier wraps it so the bump wakes long-polls at once.
      const answer = await requestRedeploys(ctx.store, req.params.name, req.body ?? {}, actorOf(req));
      reply.status(202);
      return answer;
    },
  );
}

/** Records one redeploy request per subscribed endpoint (or only `opts.endpoint`): the API's and the dashboard's. */
export async function requestRedeploys(
  store: Store,
  name: string,
  opts: { endpoint?: string; overrideWindow?: boolean },
  actor: Actor,
): Promise<RedeployResponse> {
  const overrideWindow = opts.overrideWindow ?? false;
  const cert = await store.getCertificate(name);
  if (!cert) {
    throw certificateNotFound(name);
  }
  const version = await store.currentVersion(cert.id);
  if (!version) {
    throw new CertfleetError(
      'CONFLICT',
      `certificate "${name}" has no version to deploy yet`,
      `issue one with \`certfleet cert renew ${name}\``,
    );
  }
  let subs = await store.listSubscriptions({ certificateId: cert.id });
  const wanted = opts.endpoint;
  if (wanted) {
    const endpoint = await store.getEndpoint(wanted);
    if (!endpoint) {
      throw endpointNotFound(wanted);
    }
    subs = subs.filter((s) => s.endpointId === endpoint.id);
    if (subs.length === 0) {
      throw new CertfleetError(
        'NOT_FOUND',
        `endpoint "${wanted}" does not subscribe to certificate "${name}"`,
        `subscribe it with \`certfleet subscribe ${wanted} ${name} ...\`, or leave out --endpoint`,
      );
    }
  } else if (subs.length === 0) {
    throw new CertfleetError(
      'NOT_FOUND',
      `no endpoint subscribes to certificate "${name}"`,
      `subscribe one with \`certfleet subscribe ENDPOINT ${name} ...\``,
    );
  }
  const requests: RedeployRequestView[] = [];
  for (const s of subs) {
    const previous = await store.getDeployment(s.id, version.id);
    const r = await store.requestRedeploy(s.id, version.id, { overrideWindow }, actor);
    requests.push({
      endpoint: (await store.getEndpointById(s.endpointId))?.name ?? s.endpointId,
      subscriptionId: s.id,
      previousState: previous?.state ?? null,
      token: r.token,
    });
  }
  return {
    certificate: cert.name,
    version: { id: version.id, serial: version.serial, fingerprint: version.fingerprint },
    overrideWindow,
    requests,
  };
}
