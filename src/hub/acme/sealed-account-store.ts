import type { AccountStore, AcmeAccount } from '../../issuers/acme/account-store.ts';
import type { Sealer } from '../../store/sealing.ts';
import type { Store } from '../../store/store.ts';
import { accountKeyContext, accountMetaKey } from '../../store/meta-catalogue.ts';

interface StoredAccount {
  directoryUrl: string;
  accountUrl?: string;
  /** The account key, sealed (AES-256-GCM under the hub data key, bound to the directory URL). */
  sealedKey: string;
}

/** ACME accounts in the hub store's meta table, one per directory URL, the key sealed at rest. */
export class SealedAccountStore implements AccountStore {
  constructor(
    private readonly store: Store,
    private readonly sealer: Sealer,
  ) {}

  async load(directoryUrl: string): Promise<AcmeAccount | undefined> {
    const raw = await this.store.getMeta(accountMetaKey(directoryUrl));
    if (!raw) return undefined;
    const s = JSON.parse(raw) as StoredAccount;
    return {
      accountKeyPem: this.sealer.unseal(s.sealedKey, accountKeyContext(directoryUrl)),
      ...(s.accountUrl ? { accountUrl: s.accountUrl } : {}),
    };
  }

  async save(directoryUrl: string, account: AcmeAccount): Promise<void> {
    const s: StoredAccount = {
      directoryUrl,
      ...(account.accountUrl ? { accountUrl: account.accountUrl } : {}),
      sealedKey: this.sealer.seal(account.accountKeyPem, accountKeyContext(directoryUrl)),
    };
    await this.store.setMeta(accountMetaKey(directoryUrl), JSON.stringify(s));
  }
}
