/**
 * The list reads of the store (certificates, endpoints, the fleet read model): each is ONE query whatever the
 * number of rows, keyset-paginated on a unique sort key (names), in portable SQL (joins, left joins, a derived
 * table, a correlated count) so SQLite and PostgreSQL answer the same.
 */
import type { Kysely } from 'kysely';
import { decodeCursor, encodeCursor, toPage } from './page-cursor.ts';
import {
  parse,
  toCertificate,
  toDeployment,
  toEndpoint,
  toProbeResult,
  toSubscription,
  toVersionSummary,
} from './rows.ts';
import type { Database } from './schema.ts';
import type { Source } from './write-generation.ts';
import type { DeploymentState } from '../core/types.ts';
import type {
  CertificateRow,
  EndpointRow,
  FleetFilter,
  FleetRow,
  FleetStatusRow,
  Page,
  PageRequest,
  SubscriptionRow,
} from './store.ts';

type Db = Kysely<Database>;

const FLEET_JOINS = ['subscriptions', 'certificates', 'endpoints', 'versions', 'deployments'] as const;

/**
 * What each read below is made of (tables, and `endpoints.last_seen_at` where it shows last contact): a value
 * derived from one is fresh while none of these was written (write-generation.ts). Keep in step with the queries.
 */
export const READS = {
  certificateRows: ['certificates', 'versions'],
  endpointRows: ['endpoints', 'endpoints.last_seen_at'],
  subscriptionRows: FLEET_JOINS,
  fleetStatusRows: [...FLEET_JOINS, 'endpoints.last_seen_at'],
  fleetRows: [...FLEET_JOINS, 'endpoints.last_seen_at', 'probe_results'],
} as const satisfies Record<string, readonly Source[]>;

const VERSION_SUMMARY = [
  'v.id as v_id',
  'v.certificate_id as v_certificate_id',
  'v.serial as v_serial',
  'v.fingerprint as v_fingerprint',
  'v.not_before as v_not_before',
  'v.not_after as v_not_after',
  'v.created_at as v_created_at',
] as const;

type VersionColumns = {
  v_id: string | null;
  v_certificate_id: string | null;
  v_serial: string | null;
  v_fingerprint: string | null;
  v_not_before: string | null;
  v_not_after: string | null;
  v_created_at: string | null;
};

const versionOf = (r: VersionColumns) =>
  r.v_id === null
    ? undefined
    : toVersionSummary({
        id: r.v_id,
        certificate_id: r.v_certificate_id!,
        serial: r.v_serial!,
        fingerprint: r.v_fingerprint!,
        not_before: r.v_not_before!,
        not_after: r.v_not_after!,
        created_at: r.v_created_at!,
      });

/** A page row's subscription (fleetRows and subscriptionRows read it whole). */
const SUBSCRIPTION_COLUMNS = [
  's.id as s_id',
  's.endpoint_id as s_endpoint_id',
  's.certificate_id as s_certificate_id',
  's.spec as s_spec',
  's.created_at as s_created_at',
  's.updated_at as s_updated_at',
] as const;

type SubscriptionColumns = {
  s_id: string;
  s_endpoint_id: string;
  s_certificate_id: string;
  s_spec: string;
  s_created_at: string;
  s_updated_at: string;
};

const subscriptionOf = (r: SubscriptionColumns) =>
  toSubscription({
    id: r.s_id,
    endpoint_id: r.s_endpoint_id,
    certificate_id: r.s_certificate_id,
    spec: r.s_spec,
    created_at: r.s_created_at,
    updated_at: r.s_updated_at,
  });

/** The deployment of the current version (left-joined by fleetJoins: all null when there is none). */
const DEPLOYMENT_COLUMNS = [
  'd.id as d_id',
  'd.version_id as d_version_id',
  'd.state as d_state',
  'd.reason as d_reason',
  'd.detail as d_detail',
  'd.created_at as d_created_at',
  'd.updated_at as d_updated_at',
] as const;

type DeploymentColumns = {
  s_id: string;
  d_id: string | null;
  d_version_id: string | null;
  d_state: string | null;
  d_reason: string | null;
  d_detail: string | null;
  d_created_at: string | null;
  d_updated_at: string | null;
};

const deploymentOf = (r: DeploymentColumns) =>
  r.d_id === null
    ? undefined
    : toDeployment({
        id: r.d_id,
        subscription_id: r.s_id,
        version_id: r.d_version_id!,
        state: r.d_state!,
        reason: r.d_reason,
        detail: r.d_detail!,
        created_at: r.d_created_at!,
        updated_at: r.d_updated_at!,
      });

/** Certificates by name with their current version (no PEMs) and renewal state. */
export async function certificateRows(
  db: Db,
  page?: PageRequest,
  only?: { names: readonly string[] },
): Promise<Page<CertificateRow>> {
  if (only?.names.length === 0) return { items: [] };
  let q = db
    .selectFrom('certificates as c')
    .leftJoin('versions as v', 'v.id', 'c.current_version_id')
    .selectAll('c')
    .select(VERSION_SUMMARY)
    .orderBy('c.name');
  if (page?.cursor) q = q.where('c.name', '>', decodeCursor('certificates', page.cursor, 1)[0]);
  if (only) q = q.where('c.name', 'in', only.names);
  if (page) q = q.limit(page.limit + 1);
  const rows = await q.execute();
  return toPage(
    rows.map((r) => {
      const current = versionOf(r);
      return {
        certificate: toCertificate(r),
        ...(current ? { current } : {}),
        renewalState: parse(r.renewal_state, {}),
      };
    }),
    page,
    (last) => encodeCursor('certificates', [last.certificate.name]),
  );
}

/** Endpoints by name with their last agent contact. */
export async function endpointRows(db: Db, page?: PageRequest): Promise<Page<EndpointRow>> {
  let q = db.selectFrom('endpoints').selectAll().orderBy('name');
  if (page?.cursor) q = q.where('name', '>', decodeCursor('endpoints', page.cursor, 1)[0]);
  if (page) q = q.limit(page.limit + 1);
  const rows = await q.execute();
  return toPage(
    rows.map((r) => ({
      endpoint: toEndpoint(r),
      ...(r.last_seen_at ? { lastSeenAt: r.last_seen_at } : {}),
      enrolled: r.agent_public_key !== null,
    })),
    page,
    (last) => encodeCursor('endpoints', [last.endpoint.name]),
  );
}

/**
 * The page of the fleet read model: subscription ids with their (certificate name, endpoint name) sort key, at most
 * `limit + 1` of them after the cursor. The full and the status reads join their columns to this same page.
 */
function fleetPage(db: Db, filter: FleetFilter, page?: PageRequest) {
  // Walking by certificate name, the certificates must be the outer loop (name index, then the subscriptions of
  // each certificate by index) so LIMIT stops the scan early; SQLite plans without table statistics and would sort
  // every subscription instead, so `CROSS JOIN` fixes the order (SQLite's documented hint; PostgreSQL plans a cross
  // join with a join condition like an inner join). One endpoint's rows start from its subscriptions instead.
  let keys = filter.endpointId
    ? db
        .selectFrom('subscriptions as s')
        .innerJoin('certificates as c', 'c.id', 's.certificate_id')
        .innerJoin('endpoints as e', 'e.id', 's.endpoint_id')
        .select(['s.id as page_id', 'c.name as page_certificate', 'e.name as page_endpoint'])
    : db
        .selectFrom('certificates as c')
        .crossJoin('subscriptions as s')
        .innerJoin('endpoints as e', 'e.id', 's.endpoint_id')
        .whereRef('s.certificate_id', '=', 'c.id')
        .select(['s.id as page_id', 'c.name as page_certificate', 'e.name as page_endpoint']);
  if (filter.certificateId) keys = keys.where('c.id', '=', filter.certificateId);
  if (filter.endpointId) keys = keys.where('s.endpoint_id', '=', filter.endpointId);
  if (page?.cursor) {
    const [cert, endpoint] = decodeCursor('fleet', page.cursor, 2);
    // `c.name >= cert` lets the name index bound the scan; the OR is the exact (cert, endpoint) > key test
    keys = keys
      .where('c.name', '>=', cert)
      .where((eb) => eb.or([eb('c.name', '>', cert), eb('e.name', '>', endpoint)]));
  }
  if (page)
    keys = keys
      .orderBy('c.name')
      .orderBy('e.name')
      .limit(page.limit + 1);

  return keys;
}

/**
 * The page's subscriptions with their certificate, endpoint, current version and that version's deployment (left
 * joins: a certificate may have no version yet, a subscription no deployment of it), ordered by the page's own
 * columns so the page (at most limit + 1 rows) drives the joins. `fleetRows`, `fleetStatusRows` and
 * `subscriptionRows` each select from these the columns they show.
 */
function fleetJoins(db: Db, filter: FleetFilter, page?: PageRequest) {
  return db
    .selectFrom(fleetPage(db, filter, page).as('pg'))
    .innerJoin('subscriptions as s', 's.id', 'pg.page_id')
    .innerJoin('certificates as c', 'c.id', 's.certificate_id')
    .innerJoin('endpoints as e', 'e.id', 's.endpoint_id')
    .leftJoin('versions as v', 'v.id', 'c.current_version_id')
    .leftJoin('deployments as d', (j) =>
      j.onRef('d.subscription_id', '=', 's.id').onRef('d.version_id', '=', 'c.current_version_id'),
    )
    .orderBy('pg.page_certificate')
    .orderBy('pg.page_endpoint');
}

/**
 * The fleet read model: subscriptions × certificate × endpoint × current version × its deployment × the endpoint's
 * probe results, by (certificate name, endpoint name). The page's subscriptions are chosen in a derived table (so
 * LIMIT counts subscriptions, not probe rows); an endpoint with several targets yields several rows, grouped here.
 */
export async function fleetRows(
  db: Db,
  filter: FleetFilter = {},
  page?: PageRequest,
): Promise<Page<FleetRow>> {
  const rows = await fleetJoins(db, filter, page)
    .leftJoin('probe_results as p', 'p.endpoint_id', 's.endpoint_id')
    .select([
      ...SUBSCRIPTION_COLUMNS,
      'c.name as c_name',
      'c.sans as c_sans',
      'c.key_type as c_key_type',
      'c.issuer as c_issuer',
      'c.lifetime_days as c_lifetime_days',
      'c.acme_profile as c_acme_profile',
      'c.created_at as c_created_at',
      'c.updated_at as c_updated_at',
      'e.name as e_name',
      'e.kind as e_kind',
      'e.probe_targets as e_probe_targets',
      'e.labels as e_labels',
      'e.last_seen_at as e_last_seen_at',
      'e.created_at as e_created_at',
      'e.updated_at as e_updated_at',
      ...VERSION_SUMMARY,
      ...DEPLOYMENT_COLUMNS,
      'p.target_key as p_target_key',
      'p.source as p_source',
      'p.at as p_at',
      'p.ok as p_ok',
      'p.fingerprint as p_fingerprint',
      'p.serial as p_serial',
      'p.not_before as p_not_before',
      'p.not_after as p_not_after',
      'p.error_kind as p_error_kind',
      'p.error_message as p_error_message',
      'p.tls_version as p_tls_version',
      'p.handshake_ms as p_handshake_ms',
    ])
    .select((eb) =>
      eb
        .selectFrom('subscriptions as s2')
        .select((e2) => e2.fn.countAll().as('n'))
        .whereRef('s2.endpoint_id', '=', 's.endpoint_id')
        .as('endpoint_subscriptions'),
    )
    // after the page's own order (fleetJoins): one endpoint's probe rows in a stable order
    .orderBy('p.target_key')
    .orderBy('p.source')
    .execute();

  const items: FleetRow[] = [];
  for (const r of rows) {
    let item = items[items.length - 1];
    if (item?.subscription.id !== r.s_id) {
      const current = versionOf(r);
      const deployment = current && deploymentOf(r);
      item = {
        subscription: subscriptionOf(r),
        certificate: toCertificate({
          id: r.s_certificate_id,
          name: r.c_name,
          sans: r.c_sans,
          key_type: r.c_key_type,
          issuer: r.c_issuer,
          lifetime_days: r.c_lifetime_days,
          acme_profile: r.c_acme_profile,
          current_version_id: r.v_id,
          renewal_state: '{}',
          created_at: r.c_created_at,
          updated_at: r.c_updated_at,
        }),
        endpoint: toEndpoint({
          id: r.s_endpoint_id,
          name: r.e_name,
          kind: r.e_kind,
          probe_targets: r.e_probe_targets,
          labels: r.e_labels,
          agent_public_key: null,
          last_seen_at: r.e_last_seen_at,
          created_at: r.e_created_at,
          updated_at: r.e_updated_at,
        }),
        ...(r.e_last_seen_at ? { lastSeenAt: r.e_last_seen_at } : {}),
        endpointSubscriptions: Number(r.endpoint_subscriptions ?? 0),
        ...(current ? { current } : {}),
        ...(deployment ? { deployment } : {}),
        probes: [],
      };
      items.push(item);
    }
    if (r.p_target_key !== null) {
      item.probes.push(
        toProbeResult({
          endpoint_id: r.s_endpoint_id,
          target_key: r.p_target_key,
          source: r.p_source!,
          at: r.p_at!,
          ok: r.p_ok!,
          fingerprint: r.p_fingerprint,
          serial: r.p_serial,
          not_before: r.p_not_before,
          not_after: r.p_not_after,
          error_kind: r.p_error_kind,
          error_message: r.p_error_message,
          tls_version: r.p_tls_version,
          handshake_ms: r.p_handshake_ms,
        }),
      );
    }
  }
  return toPage(items, page, (last) => encodeCursor('fleet', [last.certificate.name, last.endpoint.name]));
}

/**
 * The same page as `fleetRows` with only what a status line shows (names, current version, deployment state):
 * no probe results (which multiply the rows), no specs or labels to parse. GET /status reads this.
 */
export async function fleetStatusRows(
  db: Db,
  filter: FleetFilter = {},
  page?: PageRequest,
): Promise<Page<FleetStatusRow>> {
  const rows = await fleetJoins(db, filter, page)
    .select([
      's.id as s_id',
      'pg.page_certificate as c_name',
      'pg.page_endpoint as e_name',
      'e.kind as e_kind',
      'e.last_seen_at as e_last_seen_at',
      ...VERSION_SUMMARY,
      'd.state as d_state',
      'd.reason as d_reason',
      'd.detail as d_detail',
      'd.updated_at as d_updated_at',
    ])
    .execute();
  return toPage(
    rows.map((r) => {
      const current = versionOf(r);
      return {
        subscriptionId: r.s_id,
        certificateName: r.c_name,
        endpointName: r.e_name,
        endpointKind: r.e_kind as FleetStatusRow['endpointKind'],
        ...(r.e_last_seen_at ? { lastSeenAt: r.e_last_seen_at } : {}),
        ...(current ? { current } : {}),
        ...(r.d_state !== null && current
          ? {
              deployment: {
                state: r.d_state as DeploymentState,
                ...(r.d_reason ? { reason: r.d_reason } : {}),
                detail: parse(r.d_detail, {}),
                updatedAt: r.d_updated_at!,
              },
            }
          : {}),
      };
    }),
    page,
    (last) => encodeCursor('fleet', [last.certificateName, last.endpointName]),
  );
}

/**
 * The same page as `fleetRows` with only what a subscription's API view shows (its own columns, the two names, the
 * endpoint kind, the current version's deployment): no probe results (which multiply the rows), no per-row count,
 * no certificate or endpoint columns to parse. GET /subscriptions reads this.
 */
export async function subscriptionRows(
  db: Db,
  filter: FleetFilter = {},
  page?: PageRequest,
): Promise<Page<SubscriptionRow>> {
  const rows = await fleetJoins(db, filter, page)
    .select([
      ...SUBSCRIPTION_COLUMNS,
      'pg.page_certificate as c_name',
      'pg.page_endpoint as e_name',
      'e.kind as e_kind',
      ...DEPLOYMENT_COLUMNS,
    ])
    .execute();
  return toPage(
    rows.map((r) => {
      const deployment = deploymentOf(r);
      return {
        subscription: subscriptionOf(r),
        certificateName: r.c_name,
        endpointName: r.e_name,
        endpointKind: r.e_kind as SubscriptionRow['endpointKind'],
        ...(deployment ? { deployment } : {}),
      };
    }),
    page,
    (last) => encodeCursor('fleet', [last.certificateName, last.endpointName]),
  );
}
