import type { KeyType } from '../core/types.ts';

/** What the hub asks an issuer for: one new version of a certificate. */
export interface IssueRequest {
  certificateName: string;
  sans: string[]; // DNS names and IP addresses
  keyType: KeyType;
  lifetimeDays: number;
  /** The ACME profile to order under (draft-aaron-acme-profiles), e.g. `shortlived`; absent: the CA's default. */
  profile?: string;
  /** The certificate version this one replaces (ACME ARI `replaces`), if any. */
  replacesCertPem?: string;
  signal?: AbortSignal;
  /** Told about each finished step of the issuance (ACME: account, order, ...), e.g. for dry runs. */
  onStep?(step: IssueStep): void;
}

/** One finished step of an issuance, with how long it took. */
export interface IssueStep {
  name: string;
  detail: string;
  ms: number;
}

export interface IssuedVersion {
  certPem: string;
  chainPems: string[];
  keyPem: string; // PKCS#8 PEM; the caller seals it before it touches storage
}

/**
 * Where versions come from. Contract: `issue` either returns a complete version (leaf, chain, key that match)
 * or throws a CertfleetError; it never stores anything itself. It honours `signal`. Issuers are safe to call
 * concurrently for different certificates; the hub guarantees at most one call per certificate at a time.
 */
export interface Issuer {
  readonly kind: string;
  issue(req: IssueRequest): Promise<IssuedVersion>;
}
