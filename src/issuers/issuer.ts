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
  /** Where an order about to be finalized is kept until its version is stored (issuers with orders: ACME). */
  orders?: OrderJournal;
}

/** An order an issuer finalized, or is about to: enough to fetch its certificate later. */
export interface PendingOrder {
  /** The issuer's name (an order is only resumed at the issuer that placed it). */
  issuer: string;
  orderUrl: string;
  /** The key the order's CSR was made with (PKCS#8 PEM). */
  keyPem: string;
}

/**
 * Kept by the hub for one certificate, durable: a hub that dies after the CA finalized an order but before the
 * version was stored leaves the order here, and the next attempt resumes it (downloads the certificate) instead of
 * placing a second order, so one renewal is one certificate at the CA.
 */
export interface OrderJournal {
  /** The order an earlier attempt recorded and did not store a version from, if any. */
  pending(): Promise<PendingOrder | undefined>;
  /** Durable before it resolves; called right before finalize. Replaces an earlier one. */
  record(order: PendingOrder): Promise<void>;
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
