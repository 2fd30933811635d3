import type { ConnectorKind, ConnectorSettings } from './connector-config.ts';
import type { ConnectorTarget, RecordStore, UploadedStore } from './connector-target.ts';
import { CommandTarget } from './command-target.ts';
import { HttpTarget } from './http-target.ts';
import { SshTarget } from './ssh-target.ts';

/** What a connector target is built from: the endpoint, its settings, its unsealed secrets, its record store. */
export interface ConnectorContext {
  endpoint: { id: string; name: string };
  settings: ConnectorSettings;
  /** Unsealed for this run only; never logged. */
  secrets: Record<string, string>;
  records: RecordStore & UploadedStore;
}

export type ConnectorFactory = (c: ConnectorContext) => ConnectorTarget;

/** One line per kind (a new connector is one file plus one line here). */
export const CONNECTOR_FACTORIES: Record<ConnectorKind, ConnectorFactory> = {
  ssh: ({ endpoint, settings, secrets, records }) => {
    if (settings.kind !== 'ssh') throw new Error('ssh factory given another kind');
    return new SshTarget({
      key: `connector:${endpoint.id}`,
      ssh: {
        host: settings.host,
        port: settings.port,
        user: settings.user,
        privateKeyPem: secrets.privateKey ?? '',
        endpointName: endpoint.name,
        connectTimeoutMs: settings.connectTimeoutSeconds * 1000,
        ...(settings.hostKeyFingerprint ? { hostKeyFingerprint: settings.hostKeyFingerprint } : {}),
      },
      stepTimeoutMs: settings.stepTimeoutSeconds * 1000,
      records,
    });
  },
  command: ({ endpoint }) => new CommandTarget(`connector:${endpoint.id}`),
  http: ({ endpoint, settings, secrets, records }) => {
    if (settings.kind !== 'http') throw new Error('http factory given another kind');
    return new HttpTarget({
      key: `connector:${endpoint.id}`,
      endpointName: endpoint.name,
      settings,
      secrets,
      records,
    });
  },
};

export function createConnectorTarget(c: ConnectorContext): ConnectorTarget {
  return CONNECTOR_FACTORIES[c.settings.kind](c);
}
