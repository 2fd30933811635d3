import type { DeployRecord } from '../deploy/deploy-record.ts';
import type { DeployTarget } from '../deploy/deploy-target.ts';

/**
 * A DeployTarget the hub drives for an endpoint that runs no agent (ssh-target.ts, command-target.ts). Built per
 * deploy run by the connector registry (registry.ts) and closed after it: a target may hold a connection.
 */
export interface ConnectorTarget extends DeployTarget {
  /** Ends connections and removes temp files; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Where a connector target keeps its deploy records (deploy-record.ts): on the hub, sealed, since they hold the
 * previous files and so the old private key (hub-side: src/hub/connector-records.ts).
 */
export interface RecordStore {
  load(subscriptionId: string): Promise<DeployRecord | undefined>;
  save(record: DeployRecord): Promise<void>;
}
