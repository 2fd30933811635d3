import { z } from 'zod';
import { CertfleetError } from '../../core/errors.ts';
import { nameSchema } from '../../core/config-schema.ts';
import {
  connectorInputSchema,
  connectorView,
  hostKeyFingerprintSchema,
} from '../../connectors/connector-config.ts';
import { SshSession } from '../../connectors/ssh-session.ts';
import { requireConnectorEndpoint } from '../connector-config-store.ts';
import { actorOf, type AppDeps, type ZodApi } from './build-app.ts';
import { connectorViewSchema, hostKeyScanSchema } from './response-schemas.ts';

const params = z.object({ name: nameSchema });

/**
 * A connector endpoint's settings: set (secrets sealed on the hub, never returned), shown (the names of the
 * secrets that are set, no values), and the SSH host key: scanned by the hub and pinned
 * (`certfleet endpoint trust-host-key NAME`).
 */
export function registerConnectorRoutes(api: ZodApi, { ctx, connectors }: AppDeps): void {
  if (!connectors) return;
  const { store } = ctx;
  const endpointNamed = async (name: string) => requireConnectorEndpoint(await store.getEndpoint(name), name);

  api.put(
    '/endpoints/:name/connector',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Set how the hub pushes to a connector endpoint (secrets are sealed and never returned)',
        tags: ['endpoints'],
        operationId: 'setEndpointConnector',
        response: { 200: connectorViewSchema },
        params,
        body: connectorInputSchema,
      },
    },
    async (req) => {
      const endpoint = await endpointNamed(req.params.name);
      const view = await connectors.configs.set(endpoint, req.body, actorOf(req));
      connectors.request(endpoint.id);
      return view;
    },
  );

  api.get(
    '/endpoints/:name/connector',
    {
      config: { access: 'read' },
      schema: {
        summary: "Show a connector endpoint's settings (without secrets)",
        tags: ['endpoints'],
        operationId: 'getEndpointConnector',
        response: { 200: connectorViewSchema },
        params,
      },
    },
    async (req) => connectorView(await connectors.configs.require(await endpointNamed(req.params.name))),
  );

  api.post(
    '/endpoints/:name/connector/host-key-scan',
    {
      config: { access: 'admin' },
      schema: {
        summary: 'Connect to an ssh connector endpoint and report the host key it presents (nothing is sent)',
        tags: ['endpoints'],
        operationId: 'scanConnectorHostKey',
        response: { 200: hostKeyScanSchema },
        params,
      },
    },
    async (req) => {
      const endpoint = await endpointNamed(req.params.name);
      const { settings } = await connectors.configs.require(endpoint);
      if (settings.kind !== 'ssh') {
        throw new CertfleetError(
          'CONFLICT',
          `endpoint "${endpoint.name}" has a ${settings.kind} connector, which has no host key`,
          'only ssh connector endpoints pin a host key',
        );
      }
      const seen = await SshSession.scanHostKey({
        host: settings.host,
        port: settings.port,
        connectTimeoutMs: settings.connectTimeoutSeconds * 1000,
      });
      return {
        endpoint: endpoint.name,
        host: settings.host,
        port: settings.port,
        fingerprint: seen.fingerprint,
        keyType: seen.type,
        pinned: settings.hostKeyFingerprint ?? null,
      };
    },
  );

  api.put(
    '/endpoints/:name/connector/host-key',
    {
      config: { access: 'admin' },
      schema: {
        summary: "Pin an ssh connector endpoint's host key (SHA256 fingerprint)",
        tags: ['endpoints'],
        operationId: 'pinConnectorHostKey',
        response: { 200: connectorViewSchema },
        params,
        body: z.strictObject({ fingerprint: hostKeyFingerprintSchema }),
      },
    },
    async (req) => {
      const endpoint = await endpointNamed(req.params.name);
      const view = await connectors.configs.pinHostKey(endpoint, req.body.fingerprint, actorOf(req));
      connectors.request(endpoint.id);
      return view;
    },
  );
}
