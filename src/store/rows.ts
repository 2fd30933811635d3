import type {
  Certificate,
  CertificateVersion,
  Deployment,
  DeploymentState,
  Endpoint,
  KeyType,
  Subscription,
} from '../core/types.ts';
import type { Database } from './schema.ts';
import type { ProbeResultRecord, SubscriptionSpec, VersionSummary } from './store.ts';

/** Stored rows → domain objects: one mapper per table, shared by the writes and the list reads. */

export const parse = <T>(s: string | null | undefined, fallback: T): T =>
  s ? (JSON.parse(s) as T) : fallback;

export function toCertificate(r: Database['certificates']): Certificate {
  return {
    id: r.id,
    name: r.name,
    sans: parse(r.sans, []),
    keyType: r.key_type as KeyType,
    issuer: r.issuer,
    lifetimeDays: Number(r.lifetime_days),
    ...(r.acme_profile ? { profile: r.acme_profile } : {}),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function toVersion(r: Omit<Database['versions'], 'sealed_key'>): CertificateVersion {
  return {
    id: r.id,
    certificateId: r.certificate_id,
    serial: r.serial,
    fingerprint: r.fingerprint,
    notBefore: r.not_before,
    notAfter: r.not_after,
    certPem: r.cert_pem,
    chainPem: r.chain_pem,
    createdAt: r.created_at,
  };
}

export function toEndpoint(r: Database['endpoints']): Endpoint {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind as Endpoint['kind'],
    probeTargets: parse(r.probe_targets, []),
    labels: parse(r.labels, {}),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function toSubscription(r: Database['subscriptions']): Subscription {
  return {
    id: r.id,
    endpointId: r.endpoint_id,
    certificateId: r.certificate_id,
    ...parse<SubscriptionSpec>(r.spec, { outputs: [] }),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

export function toDeployment(r: Database['deployments']): Deployment {
  return {
    id: r.id,
    subscriptionId: r.subscription_id,
    versionId: r.version_id,
    state: r.state as DeploymentState,
    ...(r.reason ? { reason: r.reason } : {}),
    detail: parse(r.detail, {}),
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** A version without its PEMs (list reads do not fetch them). */
export function toVersionSummary(
  r: Omit<Database['versions'], 'cert_pem' | 'chain_pem' | 'sealed_key' | 'issuer'>,
): VersionSummary {
  return {
    id: r.id,
    certificateId: r.certificate_id,
    serial: r.serial,
    fingerprint: r.fingerprint,
    notBefore: r.not_before,
    notAfter: r.not_after,
    createdAt: r.created_at,
  };
}

export function toProbeResult(r: Database['probe_results']): ProbeResultRecord {
  return {
    endpointId: r.endpoint_id,
    targetKey: r.target_key,
    source: r.source,
    at: r.at,
    ok: Number(r.ok) === 1,
    ...(r.fingerprint ? { fingerprint: r.fingerprint } : {}),
    ...(r.serial ? { serial: r.serial } : {}),
    ...(r.not_before ? { notBefore: r.not_before } : {}),
    ...(r.not_after ? { notAfter: r.not_after } : {}),
    ...(r.error_kind ? { errorKind: r.error_kind } : {}),
    ...(r.error_message ? { errorMessage: r.error_message } : {}),
    ...(r.tls_version ? { tlsVersion: r.tls_version } : {}),
    ...(r.handshake_ms === null ? {} : { handshakeMs: Number(r.handshake_ms) }),
  };
}

/** Rows per statement (and values per IN list): far under PostgreSQL's 65,535 bound parameters. */
export const ROWS_PER_STATEMENT = 500;

export function chunks<T>(items: readonly T[], size = ROWS_PER_STATEMENT): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
