import type { DeployRecord } from '../deploy/deploy-record.ts';
import type { DeployTarget } from '../deploy/deploy-target.ts';

/**
 * A DeployTarget the hub drives for an endpoint that runs no agent (ssh-target.ts, command-target.ts). Built per
 * deploy run by the connector registry (registry.ts) and closed after it: a target may hold a connection.
 */
export interface ConnectorTarget extends DeployTarget {
  /** Ends connections and removes temp files; safe to call twice. */
  close(): Promise<void>;
  /**
   * The config test and reload the pipeline runs for this kind when the subscription names none (an http
   * endpoint's `check` and `activate` requests); absent: the subscription's own commands.
   */
  readonly commands?: { configTest?: string; reload?: string };
}

/**
 * Where a connector target keeps its deploy records (deploy-record.ts): on the hub, sealed, since they hold the
 * previous files and so the old private key (hub-side: src/hub/connector-records.ts).
 */
export interface RecordStore {
  load(subscriptionId: string): Promise<DeployRecord | undefined>;
  save(record: DeployRecord): Promise<void>;
}

/** What an http connector last uploaded to one output path (its bytes, base64, and format): the "file" it holds. */
export interface UploadedFile {
  data: string;
  format: string;
  mode: number;
}

/**
 * Where a target that cannot read back what the endpoint holds (an http API) keeps what it uploaded, per output
 * path, so a rollback can send the previous bundle again: on the hub, sealed with the records.
 */
export interface UploadedStore {
  loadUploaded(): Promise<Record<string, UploadedFile>>;
  saveUploaded(files: Record<string, UploadedFile>): Promise<void>;
}
