import { createHash } from 'node:crypto';
import type { AccountStore, AcmeAccount } from '../../issuers/acme/account-store.ts';
import type { Sealer } from '../../store/sealing.ts';
import type { Store } from '../../store/store.ts';

/** The one place account meta keys are built: a hash, so any directory URL makes a safe, fixed-length key. */
export const accountMetaKey = (directoryUrl: string) =>
  `acme.account.${createHash('sha256').update(directoryUrl).digest('hex').slice(0, 32)}`;

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
      accountKeyPem: this.sealer.unseal(s.sealedKey, `acme-account:${directoryUrl}`),
      ...(s.accountUrl ? { accountUrl: s.accountUrl } : {}),
    };
  }

  async save(directoryUrl: string, account: AcmeAccount): Promise<void> {
    const s: StoredAccount = {
      directoryUrl,
      ...(account.accountUrl ? { accountUrl: account.accountUrl } : {}),
      sealedKey: this.sealer.seal(account.accountKeyPem, `acme-account:${directoryUrl}`),
    };
    await this.store.setMeta(accountMetaKey(directoryUrl), JSON.stringify(s));
  }
}
