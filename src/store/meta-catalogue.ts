import { createHash } from 'node:crypto';

/**
 * Every key of the store's `meta` table and every sealed item the hub keeps, in one place: what each is, who writes
 * it, how it is sealed (the context bound as additional authenticated data), and how a copy of the store is checked
 * (backup verify, `certfleet hub check-store`). A key written anywhere must be built here; a test starts a hub,
 * issues from both kinds of issuer, and finds every stored key in this catalogue.
 */

/** How a check proves an entry is whole (the check itself lives in src/hub/store-check.ts). */
export type MetaCheck =
  /** A number. */
  | 'counter'
  /** An ISO time. */
  | 'timestamp'
  /** A JSON document. */
  | 'json'
  /** A PEM certificate that parses. */
  | 'certificate'
  /** A sealed private key that unseals and matches the public key of the certificate in `pairedWith`. */
  | 'sealed-key-for-certificate'
  /** The data key, wrapped under the master key (not the data key): it unwraps. */
  | 'wrapped-data-key'
  /** A JSON ACME account whose sealed account key unseals and parses. */
  | 'sealed-acme-account'
  /** A JSON connector's settings whose sealed secrets (the SSH private key) unseal for their endpoint. */
  | 'sealed-connector-settings'
  /** A connector endpoint's deploy records (they hold the previous files, old private key included), sealed. */
  | 'sealed-connector-records';

export interface MetaEntry {
  /** The whole key, or for a family of keys its prefix (`family: true`). */
  key: string;
  family?: boolean;
  what: string;
  writtenBy: string;
  check: MetaCheck;
  /** The seal context of a sealed value (a family's context depends on the entry: see `context`). */
  sealContext?: string;
  /** For a sealed key: the meta key of its certificate. */
  pairedWith?: string;
}

const entry = <const E extends MetaEntry>(e: E) => e;

/** The fixed keys. Their seal context is the key itself, so a sealed value cannot be moved to another key. */
export const META = {
  revision: entry({
    key: 'revision',
    what: 'store revision, bumped by every change agents must learn about; long-polls wait on it',
    writtenBy: 'src/store/sql-store.ts',
    check: 'counter',
  }),
  dataKey: entry({
    key: 'data_key',
    what: 'the random data key that seals every secret, wrapped (AES-256-GCM) under the master key',
    writtenBy: 'src/hub/data-dir.ts',
    check: 'wrapped-data-key',
    sealContext: 'data-key',
  }),
  internalCaRoot: entry({
    key: 'internal_ca.root_pem',
    what: "the internal CA's root certificate; agents pin its SHA-256 at enrollment",
    writtenBy: 'src/issuers/internal/internal-ca.ts',
    check: 'certificate',
  }),
  internalCaRootKey: entry({
    key: 'internal_ca.root_key_sealed',
    what: "the internal CA's root private key, kept only to make a new intermediate",
    writtenBy: 'src/issuers/internal/internal-ca.ts',
    check: 'sealed-key-for-certificate',
    sealContext: 'internal_ca.root_key_sealed',
    pairedWith: 'internal_ca.root_pem',
  }),
  internalCaIntermediate: entry({
    key: 'internal_ca.intermediate_pem',
    what: "the internal CA's intermediate certificate, signed by the root; it signs every leaf",
    writtenBy: 'src/issuers/internal/internal-ca.ts',
    check: 'certificate',
  }),
  internalCaIntermediateKey: entry({
    key: 'internal_ca.intermediate_key_sealed',
    what: "the internal CA's intermediate private key",
    writtenBy: 'src/issuers/internal/internal-ca.ts',
    check: 'sealed-key-for-certificate',
    sealContext: 'internal_ca.intermediate_key_sealed',
    pairedWith: 'internal_ca.intermediate_pem',
  }),
  hubTlsCert: entry({
    key: 'hub_tls.cert_pem',
    what: "the hub's own HTTPS certificate (from the internal CA)",
    writtenBy: 'src/hub/hub-tls.ts',
    check: 'certificate',
  }),
  hubTlsKey: entry({
    key: 'hub_tls.key_sealed',
    what: "the private key of the hub's HTTPS certificate",
    writtenBy: 'src/hub/hub-tls.ts',
    check: 'sealed-key-for-certificate',
    sealContext: 'hub_tls.key_sealed',
    pairedWith: 'hub_tls.cert_pem',
  }),
  alertState: entry({
    key: 'alerts.state',
    what: 'alerts firing and their last notification, so a restart neither repeats nor forgets them',
    writtenBy: 'src/hub/alert-service.ts',
    check: 'json',
  }),
  plannerLastRun: entry({
    key: 'planner.last_run_at',
    what: "when the renewal planner last finished a run (the planner's dead man's switch)",
    writtenBy: 'src/hub/planner-service.ts',
    check: 'timestamp',
  }),
  backupLastVerified: entry({
    key: 'backup.last_verified_at',
    what: "when the last scheduled backup was written and verified by restoring it (the backups dead man's switch)",
    writtenBy: 'src/backup/backup-schedule.ts',
    check: 'timestamp',
  }),
  backupLastFailure: entry({
    key: 'backup.last_failure',
    what: 'the last scheduled backup that failed or did not verify: when, and why',
    writtenBy: 'src/backup/backup-schedule.ts',
    check: 'json',
  }),
} as const;

/** Families of keys, one per ACME directory. */
export const META_FAMILIES = {
  acmeAccount: entry({
    key: 'acme.account.',
    family: true,
    what: 'an ACME account (URL and sealed account key), keyed by a hash of the directory URL; sealed to the URL',
    writtenBy: 'src/hub/acme/sealed-account-store.ts',
    check: 'sealed-acme-account',
  }),
  connectorSettings: entry({
    key: 'connector.config.',
    family: true,
    what: "a connector endpoint's settings (ssh host, user, pinned host key), keyed by endpoint id; each secret (the SSH private key) sealed to the endpoint and its name",
    writtenBy: 'src/hub/connector-config-store.ts',
    check: 'sealed-connector-settings',
  }),
  connectorRecords: entry({
    key: 'connector.records.',
    family: true,
    what: "a connector endpoint's deploy records, keyed by endpoint id: the previous files (old private key included) a rollback puts back; sealed to the endpoint",
    writtenBy: 'src/hub/connector-records.ts',
    check: 'sealed-connector-records',
  }),
} as const;

export const META_CATALOGUE: readonly MetaEntry[] = [...Object.values(META), ...Object.values(META_FAMILIES)];

/** The meta key of a directory's ACME account: a hash, so any directory URL makes a safe, fixed-length key. */
export const accountMetaKey = (directoryUrl: string) =>
  `${META_FAMILIES.acmeAccount.key}${createHash('sha256').update(directoryUrl).digest('hex').slice(0, 32)}`;

/** The seal context of an ACME account key: bound to its directory, so an account cannot be moved to another. */
export const accountKeyContext = (directoryUrl: string) => `acme-account:${directoryUrl}`;

/** The meta key of a connector endpoint's settings; removed with the endpoint. */
export const connectorConfigKey = (endpointId: string) => META_FAMILIES.connectorSettings.key + endpointId;

/** The seal context of a connector secret: bound to its endpoint and its name. */
export const connectorSecretContext = (endpointId: string, name: string) =>
  `connector-secret:${endpointId}:${name}`;

/** The meta key of a connector endpoint's deploy records; removed with the endpoint. */
export const connectorRecordsKey = (endpointId: string) => META_FAMILIES.connectorRecords.key + endpointId;

/** The seal context of a connector endpoint's deploy records. */
export const connectorRecordsContext = (endpointId: string) => `connector-records:${endpointId}`;

/** The catalogue entry a stored key belongs to, or undefined for a key nothing here explains. */
export function metaEntryOf(key: string): MetaEntry | undefined {
  return META_CATALOGUE.find((e) =>
    e.family ? key.startsWith(e.key) && key.length > e.key.length : e.key === key,
  );
}

/** Sealed items kept outside the meta table. */
export const SEALED_COLUMNS = {
  versionKey: {
    table: 'versions',
    column: 'sealed_key',
    what: "each certificate version's private key; it must match the version's certificate",
    writtenBy: 'src/hub/version-record.ts',
  },
  acmeOrderKey: {
    table: 'acme_orders',
    column: 'sealed_key',
    what: 'the private key of an ACME order being finalized (kept until its version is stored, so a next attempt resumes the order); it must open under its certificate',
    writtenBy: 'src/hub/renewal/issuance.ts',
  },
} as const;

/** The seal context of the key of an ACME order being finalized (table acme_orders): bound to its certificate. */
export const acmeOrderKeyContext = (certificateId: string) => `acme-order-key:${certificateId}`;

/** The seal context of a version's private key: bound to its certificate and leaf. */
export const versionKeyContext = (certificateId: string, fingerprint: string) =>
  `version-key:${certificateId}:${fingerprint}`;
