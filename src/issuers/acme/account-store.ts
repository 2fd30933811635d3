/** One ACME account: its key (PKCS#8 PEM, a secret) and, once registered, its URL (the JWS `kid`). */
export interface AcmeAccount {
  accountKeyPem: string;
  accountUrl?: string;
}

/**
 * Where ACME accounts live, keyed by directory URL. Contract: `load` returns undefined when nothing is stored
 * (never throws for "not found"); `save` replaces the entry atomically. Implementations seal the key at rest
 * and are safe to call concurrently.
 */
export interface AccountStore {
  load(directoryUrl: string): Promise<AcmeAccount | undefined>;
  save(directoryUrl: string, account: AcmeAccount): Promise<void>;
}

/** Keeps accounts in process memory: for tests and one-shot CLI runs. */
export class MemoryAccountStore implements AccountStore {
  private readonly accounts = new Map<string, AcmeAccount>();

  async load(directoryUrl: string): Promise<AcmeAccount | undefined> {
    const a = this.accounts.get(directoryUrl);
    return a ? { ...a } : undefined;
  }

  async save(directoryUrl: string, account: AcmeAccount): Promise<void> {
    this.accounts.set(directoryUrl, { ...account });
  }
}
