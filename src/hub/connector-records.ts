import type { RecordStore, UploadedFile, UploadedStore } from '../connectors/connector-target.ts';
import type { DeployRecord } from '../deploy/deploy-record.ts';
import type { Sealer } from '../store/sealing.ts';
import type { Store } from '../store/store.ts';
import { connectorRecordsContext, connectorRecordsKey } from '../store/meta-catalogue.ts';

/** The entry of the sealed records document holding an http connector's uploaded files (not a subscription id). */
export const UPLOADED_KEY = '@uploaded';

/**
 * The deploy records of one connector endpoint, on the hub: one meta value per endpoint holding every
 * subscription's record, sealed (they keep the previous files, old private key included; key and seal context:
 * src/store/meta-catalogue.ts, connectorRecords). Writes of one endpoint are serialised here, so
 * two subscriptions deploying at once never lose each other's record. An http connector's uploaded files (what
 * the endpoint holds, as far as the hub knows) are kept in the same sealed document under UPLOADED_KEY.
 */
export class SealedRecordStore implements RecordStore, UploadedStore {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly sealer: Sealer,
    private readonly endpointId: string,
  ) {}

  private get context(): string {
    return connectorRecordsContext(this.endpointId);
  }

  private async all(): Promise<Record<string, DeployRecord>> {
    const raw = await this.store.getMeta(connectorRecordsKey(this.endpointId));
    if (!raw) return {};
    try {
      return JSON.parse(this.sealer.unseal(raw, this.context)) as Record<string, DeployRecord>;
    } catch {
      return {}; // unreadable: the pipeline rewrites the files, which is always safe
    }
  }

  async load(subscriptionId: string): Promise<DeployRecord | undefined> {
    await this.chain.catch(() => undefined);
    return (await this.all())[subscriptionId];
  }

  save(record: DeployRecord): Promise<void> {
    return this.update((all) => (all[record.subscriptionId] = record));
  }

  async loadUploaded(): Promise<Record<string, UploadedFile>> {
    await this.chain.catch(() => undefined);
    const all = (await this.all()) as Record<string, unknown>;
    return (all[UPLOADED_KEY] as Record<string, UploadedFile> | undefined) ?? {};
  }

  saveUploaded(files: Record<string, UploadedFile>): Promise<void> {
    return this.update((all) => ((all as Record<string, unknown>)[UPLOADED_KEY] = files));
  }

  private update(change: (all: Record<string, DeployRecord>) => void): Promise<void> {
    // `chain` never rejects (see below), so each save runs after the one before it, whatever that one's outcome.
    const next = this.chain.then(async () => {
      const all = await this.all();
      change(all);
      await this.store.setMeta(
        connectorRecordsKey(this.endpointId),
        this.sealer.seal(JSON.stringify(all), this.context),
      );
    });
    this.chain = next.catch(() => undefined);
    return next;
  }
}
