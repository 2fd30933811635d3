/**
 * What `certfleet import certbot` reads on the machine that ran certbot and sends to the hub
 * (POST /api/v1/import/certbot). Private keys travel only over the authenticated hub connection and are sealed
 * by the hub at once; they never appear in answers, events or logs.
 */
export interface CertbotRenewalParams {
  authenticator?: string;
  installer?: string;
  server?: string;
  account?: string;
  /** webroot authenticator: the paths given with -w, and the per-domain map certbot keeps. */
  webrootPath: string[];
  webrootMap: Record<string, string>;
  keyType?: string;
  ellipticCurve?: string;
  rsaKeySize?: string;
  preHook?: string;
  postHook?: string;
  /** certbot stores --deploy-hook as renew_hook. */
  deployHook?: string;
  manualAuthHook?: string;
  manualCleanupHook?: string;
  preferredChallenges?: string;
}

export interface CertbotLineage {
  name: string;
  certPem: string;
  chainPems: string[];
  keyPem: string;
  /** undefined when renewal/<name>.conf is missing (certbot cannot renew it either). */
  renewal?: CertbotRenewalParams;
}

export interface CertbotAccount {
  /** The directory URL this account belongs to, rebuilt from accounts/<host>/<path>/<id>. */
  server: string;
  id: string;
  /** The account URL (regr.json `uri`), the JWS kid. */
  uri?: string;
  /** PKCS#8 PEM converted from certbot's JWK private_key.json. */
  keyPem: string;
}

/** A lineage or file certfleet could not read, with why; reported, never fatal. */
export interface CertbotReadProblem {
  item: string;
  why: string;
  fix: string;
}

export interface CertbotImportRequest {
  lineages: CertbotLineage[];
  accounts: CertbotAccount[];
  dryRun?: boolean;
}

export type ImportStatus = 'created' | 'updated' | 'unchanged' | 'would-create' | 'would-update' | 'skipped';

export interface ImportedCertificate {
  name: string;
  status: ImportStatus;
  sans: string[];
  keyType?: string;
  issuer: string;
  fingerprint: string;
  notAfter: string;
}

export interface ImportedAccount {
  server: string;
  id: string;
  status: 'imported' | 'unchanged' | 'would-import' | 'not mapped';
  issuer?: string;
}

/** Something certbot did that certfleet does not do the same way, with what to do instead. */
export interface UnmappedItem {
  lineage?: string;
  item: string;
  why: string;
  fix: string;
}

export interface CertbotImportResult {
  dryRun: boolean;
  certificates: ImportedCertificate[];
  accounts: ImportedAccount[];
  unmapped: UnmappedItem[];
}
