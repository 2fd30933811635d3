import { CertfleetError, endpointNotFound } from '../core/errors.ts';
import type { Endpoint } from '../core/types.ts';
import {
  connectorSettingsSchema,
  connectorView,
  secretsOf,
  settingsOf,
  type ConnectorInput,
  type ConnectorSettings,
  type ConnectorView,
  type StoredConnector,
} from '../connectors/connector-config.ts';
import { connectorConfigKey, connectorRecordsKey, connectorSecretContext } from '../store/meta-catalogue.ts';
import type { Sealer } from '../store/sealing.ts';
import type { Actor, Store } from '../store/store.ts';
import { fieldChanges } from './field-changes.ts';

/**
 * Connector settings of endpoints, kept with the endpoint (keyed by its id), secrets sealed at rest; keys and seal
 * contexts come from the catalogue (src/store/meta-catalogue.ts: connectorSettings, connectorRecords).
 */
export class ConnectorConfigStore {
  constructor(
    private readonly store: Store,
    private readonly sealer: Sealer,
  ) {}

  async get(endpointId: string): Promise<StoredConnector | undefined> {
    const raw = await this.store.getMeta(connectorConfigKey(endpointId));
    if (!raw) return undefined;
    const doc = JSON.parse(raw) as StoredConnector;
    return { settings: connectorSettingsSchema.parse(doc.settings), sealed: doc.sealed ?? {} };
  }

  /** The secrets in clear, for one deploy run; never logged, never returned by the API. */
  secrets(endpointId: string, stored: StoredConnector): Record<string, string> {
    return Object.fromEntries(
      Object.entries(stored.sealed).map(([name, sealed]) => [
        name,
        this.sealer.unseal(sealed, connectorSecretContext(endpointId, name)),
      ]),
    );
  }

  /** Replaces the endpoint's connector settings; a secret not given again keeps its sealed value. */
  async set(endpoint: Endpoint, input: ConnectorInput, actor: Actor): Promise<ConnectorView> {
    requireConnectorEndpoint(endpoint);
    const previous = await this.get(endpoint.id);
    const settings = settingsFor(input, previous);
    const sealed: Record<string, string> = {};
    for (const [name, value] of Object.entries(secretsOf(input))) {
      if (typeof value === 'string')
        sealed[name] = this.sealer.seal(value, connectorSecretContext(endpoint.id, name));
      else if (previous?.settings.kind === input.kind && previous.sealed[name])
        sealed[name] = previous.sealed[name];
      else
        throw new CertfleetError(
          'VALIDATION_FAILED',
          `the connector's requests use {{secret:${name}}}, but no value is given for it`,
          `give it under "secrets": {"${name}": "..."} (it is sealed on the hub and never shown again)`,
        );
    }
    const stored: StoredConnector = { settings, sealed };
    await this.store.setMeta(connectorConfigKey(endpoint.id), JSON.stringify(stored));
    const view = connectorView(stored);
    await this.store.appendEvent({
      actor,
      kind: 'connector.configured',
      subject: `endpoint:${endpoint.name}`,
      data: { ...view },
    });
    return view;
  }

  /**
   * What `set(endpoint, input)` would change, one line per field (`connector.timeoutSeconds: 30 → 60`) and per
   * secret (`connector secret api_token: changed`, never a value); empty when nothing would.
   */
  async changes(endpoint: Endpoint, input: ConnectorInput): Promise<string[]> {
    const previous = await this.get(endpoint.id);
    if (!previous) return [`connector: added (${input.kind})`];
    const next = settingsFor(input, previous);
    const prefixed = (o: object) =>
      Object.fromEntries(Object.entries(o).map(([k, v]) => [`connector.${k}`, v]));
    const out = fieldChanges(prefixed(previous.settings), prefixed(next)).changes;
    const given = secretsOf(input);
    for (const [name, value] of Object.entries(given)) {
      const before = previous.sealed[name];
      if (value === undefined) continue;
      if (!before) out.push(`connector secret ${name}: set`);
      else if (this.sealer.unseal(before, connectorSecretContext(endpoint.id, name)) !== value)
        out.push(`connector secret ${name}: changed`);
    }
    for (const name of Object.keys(previous.sealed))
      if (!(name in given)) out.push(`connector secret ${name}: removed`);
    return out;
  }

  async pinHostKey(endpoint: Endpoint, fingerprint: string, actor: Actor): Promise<ConnectorView> {
    const stored = await this.require(endpoint);
    if (stored.settings.kind !== 'ssh') {
      throw new CertfleetError(
        'CONFLICT',
        `endpoint "${endpoint.name}" has a ${stored.settings.kind} connector, which has no host key`,
        'only ssh connector endpoints pin a host key',
      );
    }
    const before = stored.settings.hostKeyFingerprint;
    stored.settings = { ...stored.settings, hostKeyFingerprint: fingerprint };
    await this.store.setMeta(connectorConfigKey(endpoint.id), JSON.stringify(stored));
    await this.store.appendEvent({
      actor,
      kind: 'connector.host_key_pinned',
      subject: `endpoint:${endpoint.name}`,
      data: { fingerprint, ...(before ? { replaced: before } : {}) },
    });
    return connectorView(stored);
  }

  /** The endpoint's connector, or a CONFLICT naming how to configure one. */
  async require(endpoint: Endpoint): Promise<StoredConnector> {
    requireConnectorEndpoint(endpoint);
    const stored = await this.get(endpoint.id);
    if (!stored) {
      throw new CertfleetError(
        'CONFLICT',
        `connector endpoint "${endpoint.name}" has no connector settings yet`,
        `configure it: certfleet endpoint connector ${endpoint.name} --connector ssh --host HOST --user USER --key-file FILE`,
      );
    }
    return stored;
  }

  /** A deleted endpoint takes its settings and sealed records with it. */
  async remove(endpointId: string): Promise<void> {
    await this.store.deleteMeta(connectorConfigKey(endpointId));
    await this.store.deleteMeta(connectorRecordsKey(endpointId));
  }
}

/** The settings `input` stores: a re-configuration of the same ssh host keeps its pinned key unless one is given. */
function settingsFor(input: ConnectorInput, previous: StoredConnector | undefined): ConnectorSettings {
  const settings = settingsOf(input);
  if (
    settings.kind === 'ssh' &&
    !settings.hostKeyFingerprint &&
    previous?.settings.kind === 'ssh' &&
    previous.settings.host === settings.host &&
    previous.settings.port === settings.port &&
    previous.settings.hostKeyFingerprint
  ) {
    return { ...settings, hostKeyFingerprint: previous.settings.hostKeyFingerprint };
  }
  return settings;
}

export function requireConnectorEndpoint(
  endpoint: Endpoint | undefined,
  name = endpoint?.name ?? '',
): Endpoint {
  if (!endpoint) throw endpointNotFound(name);
  if (endpoint.kind !== 'connector') {
    throw new CertfleetError(
      'CONFLICT',
      `endpoint "${endpoint.name}" is an agent endpoint, not a connector endpoint`,
      'connector settings belong to endpoints created with `certfleet endpoint add NAME --connector KIND`',
    );
  }
  return endpoint;
}
