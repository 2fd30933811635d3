import type { Generated } from 'kysely';

/** Row types as stored. JSON columns hold text; timestamps are ISO-8601 UTC text (portable across dialects). */
export interface MetaTable {
  key: string;
  value: string;
}

export interface CertificatesTable {
  id: string;
  name: string;
  sans: string; // JSON string[]
  key_type: string;
  issuer: string;
  lifetime_days: number;
  acme_profile: string | null;
  current_version_id: string | null;
  renewal_state: string; // JSON: failures, last error, ARI info (owned by the planner)
  created_at: string;
  updated_at: string;
}

export interface VersionsTable {
  id: string;
  certificate_id: string;
  serial: string;
  fingerprint: string;
  not_before: string;
  not_after: string;
  cert_pem: string;
  chain_pem: string;
  sealed_key: string;
  issuer: string;
  created_at: string;
}

export interface EndpointsTable {
  id: string;
  name: string;
  kind: string;
  probe_targets: string; // JSON ProbeTarget[]
  labels: string; // JSON
  agent_public_key: string | null;
  last_seen_at: string | null;
  created_at: string;
  updated_at: string;
}

export interface SubscriptionsTable {
  id: string;
  endpoint_id: string;
  certificate_id: string;
  spec: string; // JSON: outputs, configTest, reload, window, verify
  created_at: string;
  updated_at: string;
  /** The last manual deploy request (migration 0003); null when none. */
  redeploy_token?: string | null;
  redeploy_version_id?: string | null;
  redeploy_override?: number | null; // 0 | 1
  redeploy_requested_at?: string | null;
}

export interface DeploymentsTable {
  id: string;
  subscription_id: string;
  version_id: string;
  state: string;
  reason: string | null;
  detail: string; // JSON
  created_at: string;
  updated_at: string;
}

export interface EventsTable {
  id: Generated<number>;
  at: string;
  actor: string;
  kind: string;
  subject: string;
  data: string; // JSON
}

export interface TokensTable {
  id: string;
  kind: string; // admin | read | enroll
  name: string;
  hash: string;
  endpoint_id: string | null;
  expires_at: string | null;
  used_at: string | null;
  /** API tokens: the last request it authenticated, to the minute (see src/hub/auth.ts). */
  last_used_at: string | null;
  created_at: string;
}

export interface ProbeResultsTable {
  endpoint_id: string;
  target_key: string; // host:port[/sni][+starttls]
  source: string; // 'hub' | 'agent:<endpoint name>'
  at: string;
  ok: number; // 0 | 1
  fingerprint: string | null;
  serial: string | null;
  not_before: string | null;
  not_after: string | null;
  error_kind: string | null;
  error_message: string | null;
  tls_version: string | null;
  handshake_ms: number | null;
}

/** An http-01 answer while its order is being validated (any hub of a cluster answers the CA). */
export interface Http01TokensTable {
  token: string;
  key_authorization: string;
  created_at: string;
}

/** A signed agent request's nonce (`<endpoint id>:<nonce>`), kept until its timestamp leaves the window. */
export interface AgentNoncesTable {
  key: string;
  expires_at: string;
}

/** An emergency mass reissue (src/hub/emergency/): what was selected and how, and whether it still runs. */
export interface CampaignsTable {
  id: string;
  selector: string; // JSON: { kind, value? }
  options: string; // JSON: { rekey, overrideWindows, reason }
  state: string; // running | done
  actor: string;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
  summary: string | null; // JSON: the counts when it finished
}

/** One selected certificate of a campaign and the version it had when selected (null: none yet). */
export interface CampaignItemsTable {
  campaign_id: string;
  certificate_id: string;
  baseline_version_id: string | null;
}

/** An ACME order being finalized, until its version is stored (0012): see Store.recordAcmeOrder. */
export interface AcmeOrdersTable {
  certificate_id: string;
  issuer: string;
  order_url: string;
  sealed_key: string;
  created_at: string;
  /** JSON array of the order's names; null for orders recorded before migration 0013. */
  sans: string | null;
}

/**
 * One order counted against an ACME directory's rate-limit budget (0014), written in the transaction of the issuance
 * that spent it; see src/hub/renewal/rate-limit-store.ts. `seq` numbers a directory's rows in commit order.
 */
export interface RateLimitOrdersTable {
  directory: string;
  seq: number;
  /** The hub process that counted it. */
  hub: string;
  at: string;
  outcome: string; // issued | failed
  windows: string; // JSON string[]: `${limit}|${key}`
  issued_set: string | null;
  replaces: string | null;
  keep_until: string;
}

/** The last `seq` given out per directory: its row lock orders concurrent commits (see 0014). */
export interface RateLimitHeadsTable {
  directory: string;
  seq: number;
}

export interface Database {
  meta: MetaTable;
  certificates: CertificatesTable;
  versions: VersionsTable;
  endpoints: EndpointsTable;
  subscriptions: SubscriptionsTable;
  deployments: DeploymentsTable;
  events: EventsTable;
  tokens: TokensTable;
  probe_results: ProbeResultsTable;
  http01_tokens: Http01TokensTable;
  agent_nonces: AgentNoncesTable;
  campaigns: CampaignsTable;
  campaign_items: CampaignItemsTable;
  acme_orders: AcmeOrdersTable;
  rate_limit_orders: RateLimitOrdersTable;
  rate_limit_heads: RateLimitHeadsTable;
}
