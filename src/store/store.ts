import type {
  AuditEvent,
  Certificate,
  CertificateVersion,
  Deployment,
  DeploymentState,
  Endpoint,
  KeyType,
  ProbeTarget,
  Subscription,
} from '../core/types.ts';
import { CertfleetError } from '../core/errors.ts';
import type { SubscriptionSpec } from '../core/subscription-spec.ts';
import type { FromState } from '../deploy/states.ts';
import type { WriteGeneration } from './write-generation.ts';
import type { StoreEventStream } from './store-events.ts';

export type { SubscriptionSpec };

export interface NewCertificate {
  name: string;
  sans: string[];
  keyType: KeyType;
  issuer: string;
  lifetimeDays: number;
  profile?: string;
}

export interface NewVersion {
  serial: string;
  fingerprint: string;
  notBefore: string;
  notAfter: string;
  certPem: string;
  chainPem: string;
  sealedKey: string;
  issuer: string;
}

export interface NewEndpoint {
  name: string;
  kind: 'agent' | 'connector';
  probeTargets: ProbeTarget[];
  labels: Record<string, string>;
}

export interface TokenRecord {
  id: string;
  kind: 'admin' | 'read' | 'enroll';
  name: string;
  endpointId?: string;
  expiresAt?: string;
  usedAt?: string;
  /** API tokens: when it last authenticated a request, to the minute. */
  lastUsedAt?: string;
  createdAt: string;
}

/** The kinds that authenticate API requests (`certfleet token`); enrollment tokens are per endpoint. */
export const API_TOKEN_KINDS = ['admin', 'read'] as const;
export type ApiTokenKind = (typeof API_TOKEN_KINDS)[number];

/** A token to create; `hash` is the SHA-256 of the secret (the secret itself is never stored). */
export interface NewToken {
  kind: TokenRecord['kind'];
  name: string;
  hash: string;
  endpointId?: string;
  expiresAt?: string;
}

/** The latest probe observation of one endpoint target (see src/hub/probe-service.ts). */
export interface ProbeResultRecord {
  endpointId: string;
  /** `host:port[/sni][+starttls]`, see probeTargetKey(). */
  targetKey: string;
  /** Where it was taken: `hub`, or `agent:<endpoint name>` (src/probe/probe-targets.ts). */
  source: string;
  at: string;
  ok: boolean;
  fingerprint?: string;
  /** The served leaf's serial number, hex. */
  serial?: string;
  notBefore?: string;
  notAfter?: string;
  errorKind?: string;
  errorMessage?: string;
  tlsVersion?: string;
  handshakeMs?: number;
}

/**
 * A page of a list read: at most `limit` items after `cursor`, the opaque `next` of the previous page (it encodes
 * the last item's sort key, so pages stay exact while rows are added or removed elsewhere). A cursor that this
 * store did not give out, or gave out for another list, is refused with BAD_REQUEST.
 */
export interface PageRequest {
  limit: number;
  cursor?: string;
}

/** One page; `next` is absent on the last page. */
export interface Page<T> {
  items: T[];
  next?: string;
}

/** A version without its PEMs: what lists and the fleet read model carry. */
export type VersionSummary = Omit<CertificateVersion, 'certPem' | 'chainPem'>;

/** A certificate with its current version and the planner's renewal state, ordered by name. */
export interface CertificateRow {
  certificate: Certificate;
  current?: VersionSummary;
  renewalState: Record<string, unknown>;
}

/** An endpoint with its agent contact, ordered by name. */
export interface EndpointRow {
  endpoint: Endpoint;
  lastSeenAt?: string;
  /** An agent public key is registered (the endpoint redeemed an enrollment token). */
  enrolled: boolean;
}

/**
 * The fleet read model: one row per subscription (certificate × endpoint) with what the status view, the probe
 * judgement and the alerts need around it, ordered by certificate name, then endpoint name.
 */
export interface FleetRow {
  subscription: Subscription;
  certificate: Certificate;
  endpoint: Endpoint;
  lastSeenAt?: string;
  /** How many subscriptions the endpoint has (its probe targets are split by SAN when more than one). */
  endpointSubscriptions: number;
  /** The certificate's current version; absent before its first issuance. */
  current?: VersionSummary;
  /** The deployment of the current version on this endpoint; absent when none was recorded yet. */
  deployment?: Deployment;
  /** The latest probe result of each of the endpoint's targets, ordered by target key. */
  probes: ProbeResultRecord[];
}

/** One line of `certfleet status`: the fleet read model's page without specs, labels or probe results (the
 * deployment's detail stays: its summary says why a deployment failed). */
export interface FleetStatusRow {
  subscriptionId: string;
  certificateName: string;
  endpointName: string;
  endpointKind: Endpoint['kind'];
  lastSeenAt?: string;
  current?: VersionSummary;
  deployment?: Pick<Deployment, 'state' | 'reason' | 'detail' | 'updatedAt'>;
}

/** A subscription with the names around it and its current version's deployment: what GET /subscriptions shows. */
export interface SubscriptionRow {
  subscription: Subscription;
  certificateName: string;
  endpointName: string;
  endpointKind: Endpoint['kind'];
  /** The deployment of the certificate's current version on this endpoint; absent when none was recorded yet. */
  deployment?: Deployment;
}

export interface FleetFilter {
  certificateId?: string;
  endpointId?: string;
}

/**
 * Events are always returned oldest first. Without `afterId`: the newest `limit` events (the tail, as `certfleet
 * events` shows it). With `afterId`: the oldest `limit` events after it, so a walk that passes the last id it got
 * as the next `afterId` sees every event exactly once. With `beforeId`: the newest `limit` events before it (paging
 * backwards: pass the first id received as the next `beforeId`). Not both.
 */
export interface EventQuery {
  subject?: string;
  /** A prefix of the kind (`deployment.` matches every deployment event). */
  kind?: string;
  afterId?: number;
  beforeId?: number;
  /** At most 1000; default 100. */
  limit?: number;
}

/**
 * One step of a certificate's renewal, committed as a whole by `Store.commitRenewal`: an issuance (its version,
 * deployments, budget spend, renewal state and events), a failed attempt, a revocation, an ARI refresh. All of it
 * is visible after the commit, or none of it.
 */
export interface RenewalCommit {
  /**
   * The certificate. With `create` it is created in the same transaction under this id (a first issuance, with
   * `certificate.created`); the caller picks the id so the version's key can be sealed to it beforehand.
   */
  certificate: { id: string; create?: NewCertificate };
  actor: Actor;
  /** Stored and made current; pending deployments for subscribers, revision bumped, `version.issued`. */
  version?: NewVersion;
  /** Read-modify-write of the certificate's renewal_state, run inside the transaction on the locked row. */
  renewalState?: (state: Record<string, unknown>) => Record<string, unknown>;
  /** Orders counted against a rate-limit budget by this step (see `addRateLimitOrders`), stored with it. */
  rateLimitOrders?: readonly RateLimitOrder[];
  /** Further events about the certificate, appended after `version.issued`. */
  events?: (committed: {
    certificate: Certificate;
    version?: CertificateVersion;
  }) => Array<{ kind: string; data: Record<string, unknown> }>;
}

/**
 * An order counted against an ACME directory's rate-limit budget (RateLimitBudget's CountedOrder, as stored): one
 * row, so an issuance writes its own order and not the whole budget. Times are ISO strings.
 */
export interface RateLimitOrder {
  /** The directory URL whose budget it counts in. */
  directory: string;
  /** The hub process that counted it (it already holds it in memory and skips it when reading back). */
  hub: string;
  at: string;
  outcome: 'issued' | 'failed';
  /** `${limit}|${key}` of each window it counts in. */
  windows: string[];
  issuedSet?: string;
  replaces?: string;
  /** Pruned from then on (`pruneRateLimitOrders`). */
  keepUntil: string;
}

/** A stored order with its place in its directory's commit order. */
export interface StoredRateLimitOrder extends RateLimitOrder {
  seq: number;
}

/** Who did something: `admin:<token name>`, `agent:<endpoint>`, `planner`, `apply`, `system`, `cli:<command>`. */
export type Actor = string;

/**
 * Persistent state of a hub. Contract:
 * - Every mutating method is one transaction that also appends its audit event; it either fully happens or not.
 * - "Not found" is `undefined` from getters; mutators of a missing thing throw CertfleetError NOT_FOUND codes.
 * - Name clashes throw CertfleetError ALREADY_EXISTS. No method leaks dialect-specific behaviour or errors.
 * - `revision` increases whenever desired state (versions, subscriptions) changes; agents long-poll on it.
 * - After each commit the changes are announced on `events` (src/store/store-events.ts).
 * - Safe for concurrent use from one process; implementations serialise writes as their database requires.
 */
/** An ACME order recorded before finalize (see `Store.recordAcmeOrder`). */
export interface AcmeOrderRecord {
  certificateId: string;
  issuer: string;
  orderUrl: string;
  sealedKey: string;
  createdAt: string;
  /** The names ordered (absent on orders recorded before certfleet kept them). */
  sans?: string[];
}

/** One input of `transitionDeployments`: the arguments of `transitionDeployment`. */
export interface DeploymentTransitionInput {
  subscriptionId: string;
  versionId: string;
  state: DeploymentState;
  info: { reason?: string; detail?: Record<string, unknown> };
  actor: Actor;
}

/**
 * A transition the lifecycle table (src/deploy/states.ts) does not allow this actor from the deployment's current
 * state: CONFLICT (409), with actor, from and to in `details`. `input` is the refused item itself, so a caller that
 * batched several requests' items can tell whose it was.
 */
export class DeploymentTransitionRefused extends CertfleetError {
  constructor(
    readonly input: DeploymentTransitionInput,
    readonly from: FromState,
    refusal: { message: string; hint: string },
  ) {
    super('CONFLICT', refusal.message, refusal.hint, {
      details: {
        subscription_id: input.subscriptionId,
        version_id: input.versionId,
        actor: input.actor,
        from,
        to: input.state,
      },
    });
  }
}

/** A manual deploy request (`certfleet deploy`): agents redeploy `versionId` once per `token`. */
export interface RedeployRequest {
  subscriptionId: string;
  versionId: string;
  /** Random id; a new request gets a new one, so agents can tell requests apart. */
  token: string;
  /** Reload even outside the subscription's change window (`--now`). */
  overrideWindow: boolean;
  requestedAt: string;
}

/** How an emergency campaign chose its certificates (see src/hub/emergency/selection.ts). */
export interface CampaignSelector {
  kind: 'issuer' | 'serials' | 'intermediate' | 'all';
  /** The issuer name, the SHA-256 of the intermediate; absent for `all` and `serials` (too long to keep). */
  value?: string;
}

export interface CampaignOptions {
  rekey: boolean;
  overrideWindows: boolean;
  reason: string;
}

export interface CampaignItem {
  certificateId: string;
  /** The certificate's current version when it was selected: any later version is "the new one". */
  baselineVersionId?: string;
}

/** An emergency mass reissue; state `running` until every item's new version is verified or failed. */
export interface Campaign {
  id: string;
  selector: CampaignSelector;
  options: CampaignOptions;
  /** `cancelled`: stopped by an admin; what it had reissued stays. */
  state: 'running' | 'done' | 'cancelled';
  actor: Actor;
  createdAt: string;
  updatedAt: string;
  finishedAt?: string;
  /** The counts when it finished. */
  summary?: Record<string, unknown>;
  items: CampaignItem[];
}

/**
 * What a running campaign's progress counts, one row per selected certificate and subscription of it (a
 * certificate without subscriptions gives one row without them): no names, PEMs or probe results.
 */
export interface CampaignProgressRow {
  certificateId: string;
  baselineVersionId?: string;
  currentVersionId?: string;
  renewalState: Record<string, unknown>;
  subscriptionId?: string;
  /** The state of the current version's deployment on that subscription. */
  deploymentState?: DeploymentState;
}

export interface NewCampaign {
  id: string;
  selector: CampaignSelector;
  options: CampaignOptions;
  items: CampaignItem[];
}

export interface Store {
  /**
   * Post-commit events of the changes made through this store (see StoreEventStream for the contract): emitted
   * only after the transaction committed, in commit order, synchronously after the commit; a rolled-back write
   * emits nothing; a throwing listener is caught and logged and never fails the write. Reactions to committed
   * changes subscribe here; nothing wraps the store.
   */
  readonly events: StoreEventStream;
  /**
   * Changes after every committed write this hub can see (src/store/write-generation.ts): what is derived from the
   * store may be cached while it is unchanged (rendered pages, token lookups). A cross-hub notification bumps it.
   */
  readonly generation: WriteGeneration;

  close(): Promise<void>;

  getMeta(key: string): Promise<string | undefined>;

  /**
   * Stores counted orders on their own (an order that ended without a commitRenewal: a failed first issuance).
   * Each directory's rows are numbered in commit order (`seq`), across hubs and dialects.
   */
  addRateLimitOrders(orders: readonly RateLimitOrder[]): Promise<void>;
  /** A directory's orders numbered after `afterSeq` (0: all), in order: what a hub has not read yet. */
  rateLimitOrdersAfter(directory: string, afterSeq: number): Promise<StoredRateLimitOrder[]>;
  /** Removes the orders kept until `now` or earlier (out of every window); returns how many. */
  pruneRateLimitOrders(now: string): Promise<number>;
  /** Every meta entry, ordered by key (store checks and backups walk them against src/store/meta-catalogue.ts). */
  listMeta(): Promise<Array<{ key: string; value: string }>>;
  /**
   * Sets meta values that must be created together (a CA key and its certificate) unless present; returns the values
   * now stored. The set is written in one transaction, so concurrent callers end with one writer's whole set.
   */
  initMeta(entries: Record<string, string>): Promise<Record<string, string>>;
  setMeta(key: string, value: string): Promise<void>;
  /** Removes a meta value (a deleted endpoint's connector settings and records); a missing key is no error. */
  deleteMeta(key: string): Promise<void>;
  revision(): Promise<number>;

  /** http-01 answers, shared by every hub of a cluster. `put` replaces; `get` is undefined for unknown tokens. */
  putHttp01Token(token: string, keyAuthorization: string): Promise<void>;
  getHttp01Token(token: string): Promise<string | undefined>;
  deleteHttp01Token(token: string): Promise<void>;
  /**
   * Records agent requests' nonce keys, each until its `expiresAt` (ISO-8601); returns the keys recorded now. A key
   * already recorded (a replay, to this hub or another) is not among them, nor is a second copy of a key in `nonces`.
   * One statement: two hubs recording one key at once, only one gets it back.
   */
  rememberNonces(nonces: ReadonlyArray<{ key: string; expiresAt: string }>): Promise<Set<string>>;
  /**
   * An ACME order about to be finalized, one per certificate (a new one replaces it), with its private key sealed
   * by the caller. `commitRenewal` with a version of that certificate deletes it in the same transaction, so one
   * left behind is an order whose certificate may exist at the CA but not here.
   */
  recordAcmeOrder(order: AcmeOrderRecord): Promise<void>;
  acmeOrder(certificateId: string): Promise<AcmeOrderRecord | undefined>;
  /** Every recorded order (the store check and backup verification open their keys). */
  listAcmeOrders(): Promise<AcmeOrderRecord[]>;
  /**
   * The order a new certificate's first issuance recorded at `issuer` for exactly these names and never stored a
   * version from (its hub died after finalize): no certificate has its id. The newest if several.
   */
  unclaimedAcmeOrder(issuer: string, sans: readonly string[]): Promise<AcmeOrderRecord | undefined>;
  /** Forgets nonces that expired before `now` (ISO-8601); returns how many. */
  purgeNonces(now: string): Promise<number>;

  createCertificate(input: NewCertificate, actor: Actor): Promise<Certificate>;
  updateCertificate(
    name: string,
    /** `profile: null` clears the certificate's own profile (the issuer's default applies again). */
    patch: Partial<Omit<NewCertificate, 'name' | 'profile'>> & { profile?: string | null },
    actor: Actor,
  ): Promise<Certificate>;
  getCertificate(name: string): Promise<Certificate | undefined>;
  getCertificateById(id: string): Promise<Certificate | undefined>;
  listCertificates(): Promise<Certificate[]>;
  /** Refuses while endpoints subscribe unless `force`; then removes subscriptions, versions and deployments too. */
  deleteCertificate(name: string, actor: Actor, opts?: { force?: boolean }): Promise<void>;
  getRenewalState(certificateId: string): Promise<Record<string, unknown>>;
  /** Overwrites renewal_state (seeding, tests). The hub changes it only through `commitRenewal`. */
  setRenewalState(certificateId: string, state: Record<string, unknown>): Promise<void>;
  /**
   * Commits one renewal step in ONE transaction (see RenewalCommit): the certificate row is locked first, so the
   * renewal_state change reads and writes in the same transaction. CERTIFICATE_NOT_FOUND when it was deleted,
   * ALREADY_EXISTS when `create` names a taken name; then nothing is stored.
   */
  commitRenewal(commit: RenewalCommit): Promise<{ certificate: Certificate; version?: CertificateVersion }>;

  /** Stores a version, makes it current, bumps the revision and creates pending deployments for subscribers. */
  addVersion(certificateId: string, version: NewVersion, actor: Actor): Promise<CertificateVersion>;
  getVersion(versionId: string): Promise<CertificateVersion | undefined>;
  currentVersion(certificateId: string): Promise<CertificateVersion | undefined>;
  listVersions(certificateId: string): Promise<CertificateVersion[]>;
  sealedKeyOf(versionId: string): Promise<string | undefined>;

  createEndpoint(input: NewEndpoint, actor: Actor): Promise<Endpoint>;
  getEndpoint(name: string): Promise<Endpoint | undefined>;
  getEndpointById(id: string): Promise<Endpoint | undefined>;
  listEndpoints(): Promise<Endpoint[]>;
  updateEndpoint(
    name: string,
    patch: Partial<Omit<NewEndpoint, 'name' | 'kind'>>,
    actor: Actor,
  ): Promise<Endpoint>;
  deleteEndpoint(name: string, actor: Actor): Promise<void>;
  setAgentPublicKey(endpointId: string, publicKey: string, actor: Actor): Promise<void>;
  agentPublicKey(endpointId: string): Promise<string | undefined>;
  touchEndpoint(endpointId: string, at: string): Promise<void>;
  /** `touchEndpoint` for many endpoints in one statement (per few hundred): a fleet's contacts, written together. */
  touchEndpoints(touches: ReadonlyArray<{ endpointId: string; at: string }>): Promise<void>;
  lastSeen(endpointId: string): Promise<string | undefined>;

  /** Creates or replaces the subscription of an endpoint to a certificate. */
  upsertSubscription(
    endpointId: string,
    certificateId: string,
    spec: SubscriptionSpec,
    actor: Actor,
  ): Promise<{ subscription: Subscription; created: boolean; changed: boolean }>;
  getSubscription(id: string): Promise<Subscription | undefined>;
  listSubscriptions(filter?: { endpointId?: string; certificateId?: string }): Promise<Subscription[]>;
  deleteSubscription(id: string, actor: Actor): Promise<void>;
  /**
   * Asks the subscription's agent to (re)deploy `versionId`, which must be the certificate's current version
   * (CONFLICT otherwise): replaces any earlier request, bumps the revision and appends a
   * `deployment.redeploy_requested` or `deployment.window_override_requested` event, in one transaction. A
   * deployment the actor may reopen (an admin: `failed`, `rolled_back`) moves back to `pending` in it too.
   */
  requestRedeploy(
    subscriptionId: string,
    versionId: string,
    opts: { overrideWindow: boolean },
    actor: Actor,
  ): Promise<RedeployRequest>;
  /** The latest request of every subscription that has one (stale ones included; compare `versionId`). */
  listRedeployRequests(): Promise<RedeployRequest[]>;

  listDeployments(filter?: {
    subscriptionId?: string;
    versionId?: string;
    states?: DeploymentState[];
  }): Promise<Deployment[]>;
  getDeployment(subscriptionId: string, versionId: string): Promise<Deployment | undefined>;
  /**
   * Moves a deployment to a new state (creating it if needed) and records the transition as an event. A move the
   * lifecycle table (src/deploy/states.ts) does not allow `actor` from the current state throws
   * `DeploymentTransitionRefused` and changes nothing; the refusal itself is committed as a
   * `deployment.transition_refused` event (actor, from, to).
   */
  transitionDeployment(
    subscriptionId: string,
    versionId: string,
    state: DeploymentState,
    info: { reason?: string; detail?: Record<string, unknown> },
    actor: Actor,
  ): Promise<Deployment>;
  /**
   * Applies many transitions in ONE transaction (each still its own row change + `deployment.<state>` event, in
   * order), so a burst of agent reports costs one commit. All or nothing: on error none is applied. A refused item
   * (see `transitionDeployment`) aborts the batch at that item; only its refusal is recorded.
   */
  transitionDeployments(items: DeploymentTransitionInput[]): Promise<Deployment[]>;

  /**
   * List reads, each ONE query whatever the number of rows (no per-row lookups). Without `page` they return every
   * row (internal walks); with it, one page and the cursor of the next.
   */
  /** `only`: just these certificates (by name), e.g. to refresh a read model after they changed. */
  certificateRows(page?: PageRequest, only?: { names: readonly string[] }): Promise<Page<CertificateRow>>;
  endpointRows(page?: PageRequest): Promise<Page<EndpointRow>>;
  fleet(filter?: FleetFilter, page?: PageRequest): Promise<Page<FleetRow>>;
  /** The same pages as `fleet`, only what a status line shows (one query, no probe rows). */
  fleetStatus(filter?: FleetFilter, page?: PageRequest): Promise<Page<FleetStatusRow>>;
  /** The same pages as `fleet`, only the subscription, names and deployment (one query, no probe rows). */
  subscriptionRows(filter?: FleetFilter, page?: PageRequest): Promise<Page<SubscriptionRow>>;

  appendEvent(event: Omit<AuditEvent, 'id' | 'at'> & { at?: string }): Promise<void>;
  listEvents(query?: EventQuery): Promise<AuditEvent[]>;

  /** API token names (admin, read) are unique: a second one throws ALREADY_EXISTS. */
  createToken(input: NewToken, actor: Actor): Promise<TokenRecord>;
  /** The API tokens (admin, read), ordered by name; never their hashes. */
  listTokens(): Promise<TokenRecord[]>;
  /**
   * Revokes (deletes) the API token `name` with a `token.revoked` event; NOT_FOUND when there is none, CONFLICT
   * when it is the last admin token (which would lock every admin out of the API).
   */
  revokeToken(name: string, actor: Actor): Promise<TokenRecord>;
  /** Records that an API token authenticated a request at `at` (not audited: it happens on every request). */
  touchToken(id: string, at: string): Promise<void>;
  /**
   * Revokes (deletes) every token of `match.kind` named `match.name` and creates `input`, in one transaction: a
   * `token.revoked` event per old token, then `token.created`. A revoked token stops working on the next request.
   */
  replaceTokens(
    match: { kind: TokenRecord['kind']; name: string },
    input: NewToken,
    actor: Actor,
  ): Promise<{ revoked: number; token: TokenRecord }>;
  findTokenByHash(hash: string): Promise<TokenRecord | undefined>;
  /** Marks a single-use token used; false when it was already used (so exactly one caller wins). */
  consumeToken(id: string, at: string): Promise<boolean>;
  countTokens(kind: TokenRecord['kind']): Promise<number>;

  /**
   * Replaces the latest probe result of a target from that result's source. Not audited: probes are observations
   * every few minutes; the decisions drawn from them (deployment transitions, alerts) are events. Announced after
   * the commit as `probe.recorded` store events, one per endpoint.
   */
  saveProbeResults(results: ProbeResultRecord[]): Promise<void>;
  listProbeResults(filter?: { endpointId?: string }): Promise<ProbeResultRecord[]>;

  /**
   * Starts an emergency campaign in ONE transaction: the campaign, its items, `markItem` applied to each selected
   * certificate's renewal_state (so the planner sees it due at once) and an `emergency.campaign_started` event. A
   * certificate deleted meanwhile fails the whole start with CERTIFICATE_NOT_FOUND; nothing is stored then.
   */
  createCampaign(
    input: NewCampaign,
    markItem: (state: Record<string, unknown>) => Record<string, unknown>,
    actor: Actor,
  ): Promise<Campaign>;
  getCampaign(id: string): Promise<Campaign | undefined>;
  /** The rows a campaign's progress is counted from (see CampaignProgressRow); one query. */
  campaignProgressRows(id: string): Promise<CampaignProgressRow[]>;
  /** Newest first; `state` filters (`running`: what the hub resumes after a restart). */
  listCampaigns(filter?: { state?: Campaign['state'] }): Promise<Campaign[]>;
  /** Marks a running campaign done with its final counts and an `emergency.campaign_finished` event; false when it
   * was not running (another hub finished it first). */
  finishCampaign(id: string, summary: Record<string, unknown>, actor: Actor): Promise<boolean>;
  /**
   * Cancels a running campaign in ONE transaction: state `cancelled` with the counts at that moment, `unmarkItem`
   * applied to each item's renewal_state (so the planner selects no further reissue for it) and an
   * `emergency.campaign_cancelled` event. False when it was not running.
   */
  cancelCampaign(
    id: string,
    unmarkItem: (state: Record<string, unknown>) => Record<string, unknown>,
    summary: Record<string, unknown>,
    actor: Actor,
  ): Promise<boolean>;
}
