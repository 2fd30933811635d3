/** Shared vocabulary types (see docs/architecture.md). */

export const KEY_TYPES = ['ecdsa-p256', 'ecdsa-p384', 'rsa-2048', 'rsa-3072', 'rsa-4096'] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export const ISSUER_KINDS = ['internal', 'acme'] as const;
export type IssuerKind = (typeof ISSUER_KINDS)[number];

/**
 * What a version is made of, in PEM: the leaf, the intermediates (leaf's issuer first, no root unless the CA
 * sends one), and the private key as PKCS#8. Every output format is rendered from this.
 */
export interface Bundle {
  certPem: string;
  chainPems: string[];
  keyPem: string;
}

export const DEPLOYMENT_STATES = [
  'pending',
  'delivered',
  'installed',
  'waiting_window',
  'reloaded',
  'verified',
  'failed',
  'rolled_back',
  'diverged',
] as const;
export type DeploymentState = (typeof DEPLOYMENT_STATES)[number];

/**
 * What an agent (or connector) may report: what it did on the endpoint. Never `pending` (the hub's) or `diverged`
 * (the probes' verdict). Who may move what where is src/deploy/states.ts.
 */
export const REPORTED_STATES = [
  'delivered',
  'installed',
  'waiting_window',
  'reloaded',
  'verified',
  'failed',
  'rolled_back',
] as const satisfies readonly DeploymentState[];
export type ReportedState = (typeof REPORTED_STATES)[number];

export interface Certificate {
  id: string;
  name: string;
  sans: string[];
  keyType: KeyType;
  issuer: string; // 'internal' or the name of an ACME issuer from config
  lifetimeDays: number;
  /** The ACME profile ordered (e.g. `shortlived`); absent: the issuer's default profile, else the CA's. */
  profile?: string;
  createdAt: string;
  updatedAt: string;
}

export interface CertificateVersion {
  id: string;
  certificateId: string;
  serial: string;
  fingerprint: string; // SHA-256 of the leaf DER, lower-case hex
  notBefore: string;
  notAfter: string;
  certPem: string;
  chainPem: string; // intermediates, concatenated
  createdAt: string;
}

export interface ProbeTarget {
  host: string;
  port: number;
  sni?: string;
  starttls?: 'smtp' | 'imap' | 'pop3';
  /**
   * Endpoint targets only: who probes it, `hub` (default), `agent` (the hub cannot reach it: judged on the agent's
   * reports alone) or `both` (see src/probe/probe-targets.ts and docs/architecture.md).
   */
  from?: 'hub' | 'agent' | 'both';
}

export interface Endpoint {
  id: string;
  name: string;
  kind: 'agent' | 'connector';
  probeTargets: ProbeTarget[];
  labels: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

export interface OutputSpec {
  path: string;
  format: string; // a key of the formats registry: cert, chain, fullchain, key, key-rsa, der, pkcs12, jks, combined
  owner?: string;
  group?: string;
  mode?: string; // octal string, e.g. "0640"
  passwordRef?: string; // "env:NAME" or "file:/path" for pkcs12 / jks
  legacy?: boolean; // pkcs12: 3DES/SHA-1 for old consumers
}

export interface ChangeWindow {
  cron: string; // start of each window, croner syntax
  durationMinutes: number;
  timezone: string;
}

export interface Subscription {
  id: string;
  endpointId: string;
  certificateId: string;
  outputs: OutputSpec[];
  configTest?: string;
  reload?: string;
  window?: ChangeWindow;
  verify?: ProbeTarget;
  /** certbot compatibility: also write cert.pem, privkey.pem, chain.pem, fullchain.pem here (deploy/certbot-lineage.ts). */
  certbotLineage?: string;
  createdAt: string;
  updatedAt: string;
}

export interface Deployment {
  id: string;
  subscriptionId: string;
  versionId: string;
  state: DeploymentState;
  reason?: string;
  detail?: Record<string, unknown>;
  createdAt: string;
  updatedAt: string;
}

export interface AuditEvent {
  id: number;
  at: string;
  actor: string;
  kind: string; // e.g. certificate.created, version.issued
  subject: string; // e.g. certificate:web
  data: Record<string, unknown>;
}
