import { Migrator, sql, type Insertable, type Kysely, type Transaction } from 'kysely';
import { CertfleetError, certificateNotFound, endpointNotFound, errorOf } from '../core/errors.ts';
import type { Clock } from '../core/clock.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { newId } from '../core/ids.ts';
import type {
  AuditEvent,
  Certificate,
  CertificateVersion,
  Deployment,
  DeploymentState,
  Endpoint,
  Subscription,
} from '../core/types.ts';
import { actorKind, mayMove, refusalOf } from '../deploy/states.ts';
import {
  campaignProgressRows,
  closeCampaign,
  insertCampaign,
  selectCampaigns,
  updateItemStates,
} from './campaign-queries.ts';
import {
  certificateRows,
  endpointRows,
  fleetRows,
  fleetStatusRows,
  subscriptionRows,
} from './fleet-queries.ts';
import { CompiledOnce } from './compiled-once.ts';
import { META } from './meta-catalogue.ts';
import {
  deleteRateLimitOrdersKeptUntil,
  insertRateLimitOrders,
  selectRateLimitOrdersAfter,
} from './rate-limit-queries.ts';
import { migrationProvider, type Dialect } from './migrations.ts';
import {
  chunks,
  parse,
  ROWS_PER_STATEMENT,
  toCertificate,
  toDeployment,
  toEndpoint,
  toProbeResult,
  toSubscription,
  toVersion,
} from './rows.ts';
import type { Database } from './schema.ts';
import {
  StoreEventEmitter,
  type RevisionScope,
  type StoreEvent,
  type StoreEventStream,
} from './store-events.ts';
import { GenerationCache, WriteGeneration } from './write-generation.ts';
import {
  DeploymentTransitionRefused,
  type Actor,
  type CertificateRow,
  type EndpointRow,
  type FleetFilter,
  type FleetRow,
  type FleetStatusRow,
  type SubscriptionRow,
  type Page,
  type PageRequest,
  type AcmeOrderRecord,
  type DeploymentTransitionInput,
  type EventQuery,
  type NewCertificate,
  type NewEndpoint,
  type NewVersion,
  type ProbeResultRecord,
  type RedeployRequest,
  type RenewalCommit,
  type Store,
  type SubscriptionSpec,
  API_TOKEN_KINDS,
  type NewToken,
  type TokenRecord,
  type Campaign,
  type CampaignProgressRow,
  type NewCampaign,
  type RateLimitOrder,
  type StoredRateLimitOrder,
} from './store.ts';
import { setBounded } from '../core/bounded-map.ts';

type Db = Kysely<Database> | Transaction<Database>;
/** Records a post-commit event from inside a transaction (see `SqlStore.write`). */
type Emit = (event: StoreEvent) => void;

const json = (v: unknown): string => JSON.stringify(v);

function toToken(r: Database['tokens']): TokenRecord {
  return {
    id: r.id,
    kind: r.kind as TokenRecord['kind'],
    name: r.name,
    ...(r.endpoint_id ? { endpointId: r.endpoint_id } : {}),
    ...(r.expires_at ? { expiresAt: r.expires_at } : {}),
    ...(r.used_at ? { usedAt: r.used_at } : {}),
    ...(r.last_used_at ? { lastUsedAt: r.last_used_at } : {}),
    createdAt: r.created_at,
  };
}

const acmeOrderOf = (r: Database['acme_orders']): AcmeOrderRecord => ({
  certificateId: r.certificate_id,
  issuer: r.issuer,
  orderUrl: r.order_url,
  sealedKey: r.sealed_key,
  createdAt: r.created_at,
  ...(r.sans ? { sans: JSON.parse(r.sans) as string[] } : {}),
});

/** Names in one spelling, so an order's names compare as one string. */
const sortedNames = (sans: readonly string[]) => [...sans].map((n) => n.toLowerCase()).sort();

/** Unique-constraint violations look different per driver; both are mapped here and nowhere else. */
function isUniqueViolation(e: unknown): boolean {
  const err = e as { code?: string; message?: string };
  return err?.code === 'SQLITE_CONSTRAINT_UNIQUE' || err?.code === '23505';
}

/**
 * Tells other hubs about a transaction's events from inside it, so they learn of exactly what committed (PostgreSQL:
 * NOTIFY is delivered on commit and dropped on rollback).
 */
export type Announce = (trx: Transaction<Database>, events: readonly StoreEvent[]) => Promise<void>;

/** How many versions `currentVersion` keeps by id: a fleet's current ones, at a few KB each. */
const VERSIONS_KEPT = 10_000;

/** A version's columns but its sealed key (read only by `sealedKeyOf`). */
const VERSION_COLUMNS = [
  'versions.id',
  'versions.certificate_id',
  'versions.serial',
  'versions.fingerprint',
  'versions.not_before',
  'versions.not_after',
  'versions.cert_pem',
  'versions.chain_pem',
  'versions.issuer',
  'versions.created_at',
] as const;

/** A Store over Kysely; the dialect (SQLite or PostgreSQL) is chosen by whoever opens it. */
export class SqlStore implements Store {
  private readonly emitter: StoreEventEmitter;
  readonly events: StoreEventStream;
  readonly generation: WriteGeneration;
  /** Every authenticated request looks its token up by hash: kept while nothing was committed since. */
  private readonly tokensByHash: GenerationCache<string, TokenRecord | undefined>;
  /**
   * Versions by id, the last VERSIONS_KEPT read or written: a version row never changes after its insert (it is
   * only deleted with its certificate), so `currentVersion` reads just the certificate's pointer, not the row with
   * its PEMs and sealed key, which the planner, the issuance and its re-check each read per renewal.
   */
  private readonly versionsById = new Map<string, CertificateVersion>();

  private readonly announce: Announce | undefined;

  /** The statements every renewal runs, compiled once (CompiledOnce says why). */
  private readonly hot = {
    pointer: new CompiledOnce((db, id: string) =>
      db.selectFrom('certificates').select('current_version_id').where('id', '=', id),
    ),
    renewalState: new CompiledOnce((db, id: string) =>
      db.selectFrom('certificates').select('renewal_state').where('id', '=', id),
    ),
    setRenewalState: new CompiledOnce((db, id: string, state: string) =>
      db.updateTable('certificates').set({ renewal_state: state }).where('id', '=', id),
    ),
    sealedKey: new CompiledOnce((db, id: string) =>
      db.selectFrom('versions').select('sealed_key').where('id', '=', id),
    ),
    event: new CompiledOnce((db, at: string, actor: string, kind: string, subject: string, data: string) =>
      db.insertInto('events').values({ at, actor, kind, subject, data }),
    ),
    putMeta: new CompiledOnce((db, key: string, value: string) =>
      db
        .insertInto('meta')
        .values({ key, value })
        .onConflict((oc) => oc.column('key').doUpdateSet((eb) => ({ value: eb.ref('excluded.value') }))),
    ),
    bumpRevision: new CompiledOnce((db, key: string) =>
      db
        .insertInto('meta')
        .values({ key, value: '1' })
        .onConflict((oc) =>
          oc.column('key').doUpdateSet({ value: sql<string>`CAST(CAST(meta.value AS INTEGER) + 1 AS TEXT)` }),
        )
        .returning('value'),
    ),
    lockCertificate: new CompiledOnce((db, id: string) =>
      db
        .updateTable('certificates')
        .set((eb) => ({ renewal_state: eb.ref('renewal_state') }))
        .where('id', '=', id)
        .returningAll(),
    ),
    insertVersion: new CompiledOnce(
      (db, ...v: [string, string, string, string, string, string, string, string, string, string, string]) =>
        db.insertInto('versions').values({
          id: v[0],
          certificate_id: v[1],
          serial: v[2],
          fingerprint: v[3],
          not_before: v[4],
          not_after: v[5],
          cert_pem: v[6],
          chain_pem: v[7],
          sealed_key: v[8],
          issuer: v[9],
          created_at: v[10],
        }),
    ),
    setCurrentVersion: new CompiledOnce((db, id: string, versionId: string, at: string) =>
      db
        .updateTable('certificates')
        .set({ current_version_id: versionId, updated_at: at })
        .where('id', '=', id),
    ),
    subscriptionIds: new CompiledOnce((db, certificateId: string) =>
      db.selectFrom('subscriptions').select('id').where('certificate_id', '=', certificateId),
    ),
    deleteOrders: new CompiledOnce((db, certificateId: string) =>
      db.deleteFrom('acme_orders').where('certificate_id', '=', certificateId),
    ),
  };

  /**
   * `generation` must be the one the database's dialect bumps (`withWriteGeneration`); without one (a database
   * opened by hand, in tests) nothing is cached across calls.
   */
  constructor(
    private readonly db: Kysely<Database>,
    private readonly clock: Clock,
    private readonly onClose: () => Promise<void> = async () => {},
    opts: { logger?: Logger; generation?: WriteGeneration; announce?: Announce } = {},
  ) {
    let logger = opts.logger;
    this.emitter = new StoreEventEmitter(() => (logger ??= createLogger()));
    this.events = this.emitter;
    this.generation = opts.generation ?? new WriteGeneration({ maxStaleMs: 0 });
    this.tokensByHash = new GenerationCache(this.generation, 1000, ['tokens']);
    this.announce = opts.announce;
  }

  /** Emits another hub's committed events to this store's subscribers (origin 'remote'). */
  deliver(events: readonly StoreEvent[]): void {
    this.emitter.deliver(events);
  }

  static async migrate(db: Kysely<Database>, dialect: Dialect): Promise<void> {
    const migrator = new Migrator({ db, provider: migrationProvider(dialect) });
    const { error, results } = await migrator.migrateToLatest();
    if (error) {
      const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
      throw new CertfleetError(
        'INTERNAL',
        `database migration ${failed} failed`,
        'restore the data directory from a backup',
        {
          cause: error,
        },
      );
    }
  }

  private now(): string {
    return this.clock.now().toISOString();
  }

  async close(): Promise<void> {
    await this.db.destroy();
    await this.onClose();
  }

  private async event(
    db: Db,
    actor: Actor,
    kind: string,
    subject: string,
    data: Record<string, unknown> = {},
    at = this.now(),
  ) {
    await this.hot.event.run(db, at, actor, kind, subject, json(data));
  }

  /**
   * Runs `fn` in one transaction, with `emit` collecting its post-commit events, which are published only once the
   * commit succeeded (in commit order, see StoreEventEmitter); a rollback publishes none. Every mutation that has
   * something to announce runs through here.
   */
  private async write<T>(fn: (trx: Transaction<Database>, emit: Emit) => Promise<T>): Promise<T> {
    const events: StoreEvent[] = [];
    let ticket: number | undefined;
    try {
      const out = await this.db.transaction().execute(async (trx) => {
        const result = await fn(trx, (e) => events.push(e));
        if (this.announce && events.length) await this.announce(trx, events);
        ticket = this.emitter.ticket();
        return result;
      });
      this.emitter.publish(ticket!, events);
      return out;
    } catch (e) {
      if (ticket !== undefined) this.emitter.publish(ticket, []); // the commit itself failed
      throw e;
    }
  }

  /** One statement, no read-then-write: two hubs bumping at once get two distinct revisions. */
  private async bumpRevision(db: Db, emit: Emit, scope: RevisionScope): Promise<number> {
    const row = await this.hot.bumpRevision.first(db, META.revision.key);
    if (!row) throw new Error('the revision was not bumped');
    const revision = Number(row.value);
    emit({ kind: 'revision.bumped', revision, scope });
    return revision;
  }

  // shared hub state

  async putHttp01Token(token: string, keyAuthorization: string): Promise<void> {
    await this.db
      .insertInto('http01_tokens')
      .values({ token, key_authorization: keyAuthorization, created_at: this.now() })
      .onConflict((oc) => oc.column('token').doUpdateSet({ key_authorization: keyAuthorization }))
      .execute();
  }

  async getHttp01Token(token: string): Promise<string | undefined> {
    return (
      await this.db
        .selectFrom('http01_tokens')
        .select('key_authorization')
        .where('token', '=', token)
        .executeTakeFirst()
    )?.key_authorization;
  }

  async deleteHttp01Token(token: string): Promise<void> {
    await this.db.deleteFrom('http01_tokens').where('token', '=', token).execute();
  }

  async rememberNonces(nonces: ReadonlyArray<{ key: string; expiresAt: string }>): Promise<Set<string>> {
    const recorded = new Set<string>();
    const once = [...new Map(nonces.map((n) => [n.key, n])).values()];
    // outside a write transaction: the unique key alone decides, and agents' requests never queue for the write lock
    for (const part of chunks(once)) {
      const rows = await this.db
        .insertInto('agent_nonces')
        .values(part.map((n) => ({ key: n.key, expires_at: n.expiresAt })))
        .onConflict((oc) => oc.column('key').doNothing())
        .returning('key')
        .execute();
      for (const r of rows) recorded.add(r.key);
    }
    return recorded;
  }

  async recordAcmeOrder(o: AcmeOrderRecord): Promise<void> {
    const row = {
      certificate_id: o.certificateId,
      issuer: o.issuer,
      order_url: o.orderUrl,
      sealed_key: o.sealedKey,
      created_at: o.createdAt,
      sans: o.sans ? json(sortedNames(o.sans)) : null,
    };
    await this.db
      .insertInto('acme_orders')
      .values(row)
      .onConflict((oc) => oc.column('certificate_id').doUpdateSet(row))
      .execute();
  }

  async acmeOrder(certificateId: string): Promise<AcmeOrderRecord | undefined> {
    const r = await this.db
      .selectFrom('acme_orders')
      .selectAll()
      .where('certificate_id', '=', certificateId)
      .executeTakeFirst();
    return r && acmeOrderOf(r);
  }

  async unclaimedAcmeOrder(issuer: string, sans: readonly string[]): Promise<AcmeOrderRecord | undefined> {
    const r = await this.db
      .selectFrom('acme_orders')
      .leftJoin('certificates', 'certificates.id', 'acme_orders.certificate_id')
      .selectAll('acme_orders')
      .where('certificates.id', 'is', null)
      .where('acme_orders.issuer', '=', issuer)
      .where('acme_orders.sans', '=', json(sortedNames(sans)))
      .orderBy('acme_orders.created_at', 'desc')
      .executeTakeFirst();
    return r && acmeOrderOf(r);
  }

  async listAcmeOrders(): Promise<AcmeOrderRecord[]> {
    const rows = await this.db.selectFrom('acme_orders').selectAll().orderBy('certificate_id').execute();
    return rows.map(acmeOrderOf);
  }

  async purgeNonces(now: string): Promise<number> {
    const r = await this.db.deleteFrom('agent_nonces').where('expires_at', '<', now).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  // meta

  async getMeta(key: string): Promise<string | undefined> {
    return (await this.db.selectFrom('meta').select('value').where('key', '=', key).executeTakeFirst())
      ?.value;
  }

  // rate-limit budgets

  async addRateLimitOrders(orders: readonly RateLimitOrder[]): Promise<void> {
    if (orders.length) await this.db.transaction().execute((trx) => insertRateLimitOrders(trx, orders));
  }

  rateLimitOrdersAfter(directory: string, afterSeq: number): Promise<StoredRateLimitOrder[]> {
    return selectRateLimitOrdersAfter(this.db, directory, afterSeq);
  }

  pruneRateLimitOrders(now: string): Promise<number> {
    return deleteRateLimitOrdersKeptUntil(this.db, now);
  }

  async listMeta(): Promise<Array<{ key: string; value: string }>> {
    return this.db.selectFrom('meta').select(['key', 'value']).orderBy('key').execute();
  }

  async initMeta(entries: Record<string, string>): Promise<Record<string, string>> {
    // Keys are inserted in one order inside one transaction: a concurrent writer of the same set waits on the first
    // key and then finds every key taken, so the stored set is wholly one writer's.
    const keys = Object.keys(entries).sort();
    return this.db.transaction().execute(async (trx) => {
      for (const key of keys) {
        await trx
          .insertInto('meta')
          .values({ key, value: entries[key] })
          .onConflict((oc) => oc.column('key').doNothing())
          .execute();
      }
      const rows = await trx.selectFrom('meta').select(['key', 'value']).where('key', 'in', keys).execute();
      return Object.fromEntries(rows.map((r) => [r.key, r.value]));
    });
  }

  async setMeta(key: string, value: string): Promise<void> {
    await this.putMeta(this.db, key, value);
  }

  async deleteMeta(key: string): Promise<void> {
    await this.db.deleteFrom('meta').where('key', '=', key).execute();
  }

  private async putMeta(db: Db, key: string, value: string): Promise<void> {
    await this.hot.putMeta.run(db, key, value);
  }

  async revision(): Promise<number> {
    return Number((await this.getMeta(META.revision.key)) ?? '0');
  }

  // certificates

  async createCertificate(input: NewCertificate, actor: Actor): Promise<Certificate> {
    return this.write((trx, emit) => this.insertCertificate(trx, emit, input, actor));
  }

  private async insertCertificate(
    trx: Db,
    emit: Emit,
    input: NewCertificate,
    actor: Actor,
    id = newId(),
  ): Promise<Certificate> {
    const now = this.now();
    const row = {
      id,
      name: input.name,
      sans: json(input.sans),
      key_type: input.keyType,
      issuer: input.issuer,
      lifetime_days: input.lifetimeDays,
      acme_profile: input.profile ?? null,
      current_version_id: null,
      renewal_state: '{}',
      created_at: now,
      updated_at: now,
    };
    try {
      await trx.insertInto('certificates').values(row).execute();
    } catch (e) {
      if (isUniqueViolation(e)) {
        throw new CertfleetError(
          'ALREADY_EXISTS',
          `certificate "${input.name}" already exists`,
          'choose another name, or change the existing one with `certfleet apply`',
        );
      }
      throw e;
    }
    await this.event(trx, actor, 'certificate.created', `certificate:${input.name}`, { ...input });
    emit({
      kind: 'certificate.changed',
      change: 'created',
      certificate: { id: row.id, name: row.name },
      actor,
    });
    return toCertificate(row);
  }

  async updateCertificate(
    name: string,
    patch: Partial<Omit<NewCertificate, 'name' | 'profile'>> & { profile?: string | null },
    actor: Actor,
  ): Promise<Certificate> {
    return this.write(async (trx, emit) => {
      const row = await trx
        .selectFrom('certificates')
        .selectAll()
        .where('name', '=', name)
        .executeTakeFirst();
      if (!row) throw certificateNotFound(name);
      const next = {
        ...(patch.sans ? { sans: json(patch.sans) } : {}),
        ...(patch.keyType ? { key_type: patch.keyType } : {}),
        ...(patch.issuer ? { issuer: patch.issuer } : {}),
        ...(patch.lifetimeDays ? { lifetime_days: patch.lifetimeDays } : {}),
        ...(patch.profile !== undefined ? { acme_profile: patch.profile } : {}),
        updated_at: this.now(),
      };
      await trx.updateTable('certificates').set(next).where('id', '=', row.id).execute();
      await this.event(trx, actor, 'certificate.updated', `certificate:${name}`, { ...patch });
      emit({ kind: 'certificate.changed', change: 'updated', certificate: { id: row.id, name }, actor });
      return toCertificate({ ...row, ...next });
    });
  }

  async getCertificate(name: string): Promise<Certificate | undefined> {
    const row = await this.db
      .selectFrom('certificates')
      .selectAll()
      .where('name', '=', name)
      .executeTakeFirst();
    return row && toCertificate(row);
  }

  async getCertificateById(id: string): Promise<Certificate | undefined> {
    const row = await this.db.selectFrom('certificates').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toCertificate(row);
  }

  async listCertificates(): Promise<Certificate[]> {
    return (await this.db.selectFrom('certificates').selectAll().orderBy('name').execute()).map(
      toCertificate,
    );
  }

  async deleteCertificate(name: string, actor: Actor, opts: { force?: boolean } = {}): Promise<void> {
    await this.write(async (trx, emit) => {
      const row = await trx
        .selectFrom('certificates')
        .select('id')
        .where('name', '=', name)
        .executeTakeFirst();
      if (!row) throw certificateNotFound(name);
      const subs = await trx
        .selectFrom('subscriptions')
        .select(['id', 'endpoint_id', 'certificate_id'])
        .where('certificate_id', '=', row.id)
        .execute();
      if (subs.length > 0 && !opts.force) {
        throw new CertfleetError(
          'CONFLICT',
          `certificate "${name}" is used by ${subs.length} subscription(s)`,
          'remove the subscriptions first, or delete with --force to remove them too',
        );
      }
      // Deployments reference versions and subscriptions; remove children first so no dialect's FK order matters.
      const subIds = subs.map((s) => s.id);
      if (subIds.length) await trx.deleteFrom('deployments').where('subscription_id', 'in', subIds).execute();
      await trx.deleteFrom('subscriptions').where('certificate_id', '=', row.id).execute();
      await trx.deleteFrom('versions').where('certificate_id', '=', row.id).execute();
      await trx.deleteFrom('certificates').where('id', '=', row.id).execute();
      if (subIds.length) await this.bumpRevision(trx, emit, { endpointIds: subs.map((s) => s.endpoint_id) });
      await this.event(trx, actor, 'certificate.deleted', `certificate:${name}`, {
        subscriptions_removed: subIds.length,
      });
      emitSubscriptionsDeleted(emit, subs, actor);
      emit({ kind: 'certificate.changed', change: 'deleted', certificate: { id: row.id, name }, actor });
    });
  }

  async getRenewalState(certificateId: string): Promise<Record<string, unknown>> {
    const row = await this.hot.renewalState.first(this.db, certificateId);
    return parse(row?.renewal_state, {});
  }

  async setRenewalState(certificateId: string, state: Record<string, unknown>): Promise<void> {
    await this.hot.setRenewalState.run(this.db, certificateId, json(state));
  }

  async commitRenewal(c: RenewalCommit): Promise<{ certificate: Certificate; version?: CertificateVersion }> {
    return this.write(async (trx, emit) => {
      const { certificate, renewalState } = c.certificate.create
        ? {
            certificate: await this.insertCertificate(
              trx,
              emit,
              c.certificate.create,
              c.actor,
              c.certificate.id,
            ),
            renewalState: '{}',
          }
        : await this.lockCertificate(trx, c.certificate.id);
      const version = c.version
        ? await this.insertVersion(trx, emit, certificate, c.version, c.actor)
        : undefined;
      // the order that yielded it (if any) is done
      if (version) await this.hot.deleteOrders.run(trx, certificate.id);
      if (c.renewalState)
        await this.hot.setRenewalState.run(
          trx,
          certificate.id,
          json(c.renewalState(parse(renewalState, {}))),
        );
      if (c.rateLimitOrders?.length) await insertRateLimitOrders(trx, c.rateLimitOrders);
      for (const e of c.events?.({ certificate, ...(version ? { version } : {}) }) ?? []) {
        await this.event(trx, c.actor, e.kind, `certificate:${certificate.name}`, e.data);
        if (e.kind === 'renewal.failed')
          emit({
            kind: 'renewal.failed',
            certificate: { id: certificate.id, name: certificate.name },
            failures: Number(e.data.failures ?? 0),
            actor: c.actor,
          });
      }
      return { certificate, ...(version ? { version } : {}) };
    });
  }

  /**
   * Takes the certificate row's write lock before anything is read (a no-op UPDATE: SQLite's write lock, a row
   * lock on PostgreSQL), so a read-modify-write in the same transaction cannot interleave with another writer. The
   * row comes back from the lock (RETURNING): the certificate and its renewal state as of the lock.
   */
  private async lockCertificate(
    trx: Db,
    certificateId: string,
  ): Promise<{ certificate: Certificate; renewalState: string }> {
    const row = await this.hot.lockCertificate.first(trx, certificateId);
    if (!row) throw new CertfleetError('CERTIFICATE_NOT_FOUND', 'certificate was deleted during renewal', '');
    return { certificate: toCertificate(row), renewalState: row.renewal_state };
  }

  // versions

  async addVersion(certificateId: string, v: NewVersion, actor: Actor): Promise<CertificateVersion> {
    return this.write(async (trx, emit) => {
      const cert = await trx
        .selectFrom('certificates')
        .select(['id', 'name'])
        .where('id', '=', certificateId)
        .executeTakeFirst();
      if (!cert)
        throw new CertfleetError('CERTIFICATE_NOT_FOUND', 'certificate was deleted during issuance', '');
      return this.insertVersion(trx, emit, cert, v, actor);
    });
  }

  /** Stores a version as current, with pending deployments for subscribers, a revision bump and its event. */
  private async insertVersion(
    trx: Db,
    emit: Emit,
    cert: { id: string; name: string },
    v: NewVersion,
    actor: Actor,
  ): Promise<CertificateVersion> {
    const row = {
      id: newId(),
      certificate_id: cert.id,
      serial: v.serial,
      fingerprint: v.fingerprint,
      not_before: v.notBefore,
      not_after: v.notAfter,
      cert_pem: v.certPem,
      chain_pem: v.chainPem,
      sealed_key: v.sealedKey,
      issuer: v.issuer,
      created_at: this.now(),
    };
    await this.hot.insertVersion.run(
      trx,
      row.id,
      row.certificate_id,
      row.serial,
      row.fingerprint,
      row.not_before,
      row.not_after,
      row.cert_pem,
      row.chain_pem,
      row.sealed_key,
      row.issuer,
      row.created_at,
    );
    await this.hot.setCurrentVersion.run(trx, cert.id, row.id, row.created_at);
    const subs = (await this.hot.subscriptionIds.run(trx, cert.id)).rows;
    for (const s of subs) {
      await trx
        .insertInto('deployments')
        .values({
          id: newId(),
          subscription_id: s.id,
          version_id: row.id,
          state: 'pending',
          reason: null,
          detail: '{}',
          created_at: row.created_at,
          updated_at: row.created_at,
        })
        .execute();
    }
    await this.bumpRevision(trx, emit, { certificateIds: [cert.id] });
    emit({
      kind: 'version.added',
      certificate: { id: cert.id, name: cert.name },
      version: this.keepVersion(toVersion(row)),
      actor,
    });
    await this.event(trx, actor, 'version.issued', `certificate:${cert.name}`, {
      version_id: row.id,
      serial: v.serial,
      fingerprint: v.fingerprint,
      not_after: v.notAfter,
      issuer: v.issuer,
      deployments_created: subs.length,
    });
    return toVersion(row);
  }

  async getVersion(versionId: string): Promise<CertificateVersion | undefined> {
    const row = await this.db
      .selectFrom('versions')
      .selectAll()
      .where('id', '=', versionId)
      .executeTakeFirst();
    return row && toVersion(row);
  }

  async currentVersion(certificateId: string): Promise<CertificateVersion | undefined> {
    const pointer = await this.hot.pointer.first(this.db, certificateId);
    const id = pointer?.current_version_id;
    if (!id) return undefined;
    const kept = this.versionsById.get(id);
    if (kept) return { ...kept };
    // by the pointer, as one statement: the version is read with the pointer that names it
    const row = await this.db
      .selectFrom('versions')
      .innerJoin('certificates', 'certificates.current_version_id', 'versions.id')
      .select(VERSION_COLUMNS)
      .where('certificates.id', '=', certificateId)
      .executeTakeFirst();
    return row && this.keepVersion(toVersion(row));
  }

  /** Remembers a version as stored (see versionsById); returns a copy for the caller. */
  private keepVersion(v: CertificateVersion): CertificateVersion {
    setBounded(this.versionsById, VERSIONS_KEPT, v.id, v);
    return { ...v };
  }

  async listVersions(certificateId: string): Promise<CertificateVersion[]> {
    const rows = await this.db
      .selectFrom('versions')
      .selectAll()
      .where('certificate_id', '=', certificateId)
      .orderBy('created_at', 'desc')
      .execute();
    return rows.map(toVersion);
  }

  async sealedKeyOf(versionId: string): Promise<string | undefined> {
    return (await this.hot.sealedKey.first(this.db, versionId))?.sealed_key;
  }

  // endpoints

  async createEndpoint(input: NewEndpoint, actor: Actor): Promise<Endpoint> {
    const now = this.now();
    const row = {
      id: newId(),
      name: input.name,
      kind: input.kind,
      probe_targets: json(input.probeTargets),
      labels: json(input.labels),
      agent_public_key: null,
      last_seen_at: null,
      created_at: now,
      updated_at: now,
    };
    try {
      await this.write(async (trx, emit) => {
        await trx.insertInto('endpoints').values(row).execute();
        await this.event(trx, actor, 'endpoint.created', `endpoint:${input.name}`, { ...input });
        emit({
          kind: 'endpoint.changed',
          change: 'created',
          endpoint: { id: row.id, name: row.name },
          actor,
        });
      });
    } catch (e) {
      if (isUniqueViolation(e)) {
        throw new CertfleetError(
          'ALREADY_EXISTS',
          `endpoint "${input.name}" already exists`,
          'choose another name',
        );
      }
      throw e;
    }
    return toEndpoint(row);
  }

  async getEndpoint(name: string): Promise<Endpoint | undefined> {
    const row = await this.db.selectFrom('endpoints').selectAll().where('name', '=', name).executeTakeFirst();
    return row && toEndpoint(row);
  }

  async getEndpointById(id: string): Promise<Endpoint | undefined> {
    const row = await this.db.selectFrom('endpoints').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toEndpoint(row);
  }

  async listEndpoints(): Promise<Endpoint[]> {
    return (await this.db.selectFrom('endpoints').selectAll().orderBy('name').execute()).map(toEndpoint);
  }

  async updateEndpoint(
    name: string,
    patch: Partial<Omit<NewEndpoint, 'name' | 'kind'>>,
    actor: Actor,
  ): Promise<Endpoint> {
    return this.write(async (trx, emit) => {
      const row = await trx.selectFrom('endpoints').selectAll().where('name', '=', name).executeTakeFirst();
      if (!row) throw endpointNotFound(name);
      const next = {
        ...(patch.probeTargets ? { probe_targets: json(patch.probeTargets) } : {}),
        ...(patch.labels ? { labels: json(patch.labels) } : {}),
        updated_at: this.now(),
      };
      await trx.updateTable('endpoints').set(next).where('id', '=', row.id).execute();
      // the agent's desired state carries the targets it probes
      if (patch.probeTargets) await this.bumpRevision(trx, emit, { endpointIds: [row.id] });
      await this.event(trx, actor, 'endpoint.updated', `endpoint:${name}`, { ...patch });
      emit({ kind: 'endpoint.changed', change: 'updated', endpoint: { id: row.id, name }, actor });
      return toEndpoint({ ...row, ...next });
    });
  }

  async deleteEndpoint(name: string, actor: Actor): Promise<void> {
    await this.write(async (trx, emit) => {
      const row = await trx.selectFrom('endpoints').select('id').where('name', '=', name).executeTakeFirst();
      if (!row) throw endpointNotFound(name);
      const subs = await trx
        .selectFrom('subscriptions')
        .select(['id', 'endpoint_id', 'certificate_id'])
        .where('endpoint_id', '=', row.id)
        .execute();
      const subIds = subs.map((s) => s.id);
      if (subIds.length) await trx.deleteFrom('deployments').where('subscription_id', 'in', subIds).execute();
      await trx.deleteFrom('subscriptions').where('endpoint_id', '=', row.id).execute();
      await trx.deleteFrom('tokens').where('endpoint_id', '=', row.id).execute();
      await trx.deleteFrom('endpoints').where('id', '=', row.id).execute();
      if (subIds.length) await this.bumpRevision(trx, emit, { endpointIds: [row.id] });
      await this.event(trx, actor, 'endpoint.deleted', `endpoint:${name}`, {
        subscriptions_removed: subIds.length,
      });
      emitSubscriptionsDeleted(emit, subs, actor);
      emit({ kind: 'endpoint.changed', change: 'deleted', endpoint: { id: row.id, name }, actor });
    });
  }

  async setAgentPublicKey(endpointId: string, publicKey: string, actor: Actor): Promise<void> {
    await this.write(async (trx, emit) => {
      const row = await trx
        .selectFrom('endpoints')
        .select('name')
        .where('id', '=', endpointId)
        .executeTakeFirst();
      if (!row)
        throw new CertfleetError('ENDPOINT_NOT_FOUND', 'endpoint was deleted', 'create the endpoint again');
      await trx
        .updateTable('endpoints')
        .set({ agent_public_key: publicKey, updated_at: this.now() })
        .where('id', '=', endpointId)
        .execute();
      await this.event(trx, actor, 'agent.enrolled', `endpoint:${row.name}`, {});
      emit({
        kind: 'endpoint.changed',
        change: 'enrolled',
        endpoint: { id: endpointId, name: row.name },
        actor,
      });
    });
  }

  async agentPublicKey(endpointId: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('endpoints')
      .select('agent_public_key')
      .where('id', '=', endpointId)
      .executeTakeFirst();
    return row?.agent_public_key ?? undefined;
  }

  async touchEndpoint(endpointId: string, at: string): Promise<void> {
    await this.touchEndpoints([{ endpointId, at }]);
  }

  async touchEndpoints(touches: ReadonlyArray<{ endpointId: string; at: string }>): Promise<void> {
    for (const part of chunks(touches)) {
      // UPDATE … FROM (VALUES …): both dialects name a VALUES list's columns column1, column2
      // built, not raw: the write generation sees that it sets last_seen_at alone (write-generation.ts)
      const values = sql<{ column1: string; column2: string }>`(values ${sql.join(
        part.map((t) => sql`(${t.endpointId}, ${t.at})`),
      )})`.as('v');
      await this.db
        .updateTable('endpoints')
        .from(values)
        .set((eb) => ({ last_seen_at: eb.ref('v.column2') }))
        .whereRef('endpoints.id', '=', 'v.column1')
        .execute();
    }
  }

  async lastSeen(endpointId: string): Promise<string | undefined> {
    const row = await this.db
      .selectFrom('endpoints')
      .select('last_seen_at')
      .where('id', '=', endpointId)
      .executeTakeFirst();
    return row?.last_seen_at ?? undefined;
  }

  // subscriptions

  async upsertSubscription(endpointId: string, certificateId: string, spec: SubscriptionSpec, actor: Actor) {
    return this.write(async (trx, emit) => {
      const endpoint = await trx
        .selectFrom('endpoints')
        .select('name')
        .where('id', '=', endpointId)
        .executeTakeFirst();
      const cert = await trx
        .selectFrom('certificates')
        .select(['name', 'current_version_id'])
        .where('id', '=', certificateId)
        .executeTakeFirst();
      if (!endpoint || !cert)
        throw new CertfleetError('NOT_FOUND', 'endpoint or certificate was deleted', 'create it again');
      const existing = await trx
        .selectFrom('subscriptions')
        .selectAll()
        .where('endpoint_id', '=', endpointId)
        .where('certificate_id', '=', certificateId)
        .executeTakeFirst();
      const now = this.now();
      const specJson = json(spec);
      const subject = `subscription:${endpoint.name}/${cert.name}`;
      if (existing) {
        if (existing.spec === specJson)
          return { subscription: toSubscription(existing), created: false, changed: false };
        await trx
          .updateTable('subscriptions')
          .set({ spec: specJson, updated_at: now })
          .where('id', '=', existing.id)
          .execute();
        await this.bumpRevision(trx, emit, { endpointIds: [endpointId] });
        await this.event(trx, actor, 'subscription.updated', subject, { ...spec });
        const subscription = toSubscription({ ...existing, spec: specJson, updated_at: now });
        emit({
          kind: 'subscription.changed',
          change: 'updated',
          ...subscriptionIds(subscription),
          subscription,
          actor,
        });
        return { subscription, created: false, changed: true };
      }
      const row = {
        id: newId(),
        endpoint_id: endpointId,
        certificate_id: certificateId,
        spec: specJson,
        created_at: now,
        updated_at: now,
      };
      await trx.insertInto('subscriptions').values(row).execute();
      if (cert.current_version_id) {
        await trx
          .insertInto('deployments')
          .values({
            id: newId(),
            subscription_id: row.id,
            version_id: cert.current_version_id,
            state: 'pending',
            reason: null,
            detail: '{}',
            created_at: now,
            updated_at: now,
          })
          .execute();
      }
      await this.bumpRevision(trx, emit, { endpointIds: [endpointId] });
      await this.event(trx, actor, 'subscription.created', subject, { ...spec });
      const subscription = toSubscription(row);
      emit({
        kind: 'subscription.changed',
        change: 'created',
        ...subscriptionIds(subscription),
        subscription,
        actor,
      });
      return { subscription, created: true, changed: true };
    });
  }

  async getSubscription(id: string): Promise<Subscription | undefined> {
    const row = await this.db.selectFrom('subscriptions').selectAll().where('id', '=', id).executeTakeFirst();
    return row && toSubscription(row);
  }

  async listSubscriptions(
    filter: { endpointId?: string; certificateId?: string } = {},
  ): Promise<Subscription[]> {
    let q = this.db.selectFrom('subscriptions').selectAll();
    if (filter.endpointId) q = q.where('endpoint_id', '=', filter.endpointId);
    if (filter.certificateId) q = q.where('certificate_id', '=', filter.certificateId);
    return (await q.orderBy('created_at').execute()).map(toSubscription);
  }

  async deleteSubscription(id: string, actor: Actor): Promise<void> {
    await this.write(async (trx, emit) => {
      const row = await trx
        .selectFrom('subscriptions')
        .select(['id', 'endpoint_id', 'certificate_id'])
        .where('id', '=', id)
        .executeTakeFirst();
      if (!row) throw errorOf('SUBSCRIPTION_NOT_FOUND', id);
      await trx.deleteFrom('deployments').where('subscription_id', '=', id).execute();
      await trx.deleteFrom('subscriptions').where('id', '=', id).execute();
      await this.bumpRevision(trx, emit, { endpointIds: [row.endpoint_id] });
      await this.event(trx, actor, 'subscription.deleted', `subscription:${id}`, {});
      emitSubscriptionsDeleted(emit, [row], actor);
    });
  }

  async requestRedeploy(
    subscriptionId: string,
    versionId: string,
    opts: { overrideWindow: boolean },
    actor: Actor,
  ): Promise<RedeployRequest> {
    return this.write(async (trx, emit) => {
      const row = await trx
        .selectFrom('subscriptions as s')
        .innerJoin('endpoints as e', 'e.id', 's.endpoint_id')
        .innerJoin('certificates as c', 'c.id', 's.certificate_id')
        .select(['e.name as endpoint', 's.endpoint_id', 'c.name as certificate', 'c.current_version_id'])
        .where('s.id', '=', subscriptionId)
        .executeTakeFirst();
      if (!row)
        throw new CertfleetError(
          'NOT_FOUND',
          `subscription "${subscriptionId}" not found`,
          'list subscriptions with `certfleet status`',
        );
      if (row.current_version_id !== versionId)
        throw new CertfleetError(
          'CONFLICT',
          `version ${versionId} is not the current version of certificate "${row.certificate}"`,
          'a newer version was issued meanwhile; agents deploy it on their own, or run `certfleet deploy` again',
        );
      const request: RedeployRequest = {
        subscriptionId,
        versionId,
        token: newId(),
        overrideWindow: opts.overrideWindow,
        requestedAt: this.now(),
      };
      await trx
        .updateTable('subscriptions')
        .set({
          redeploy_token: request.token,
          redeploy_version_id: versionId,
          redeploy_override: opts.overrideWindow ? 1 : 0,
          redeploy_requested_at: request.requestedAt,
        })
        .where('id', '=', subscriptionId)
        .execute();
      const deployment = await trx
        .selectFrom('deployments')
        .select(['id', 'state'])
        .where('subscription_id', '=', subscriptionId)
        .where('version_id', '=', versionId)
        .executeTakeFirst();
      // A failed or rolled-back attempt is final for the agent; the admin's request reopens it (lifecycle table).
      const kind = actorKind(actor);
      if (deployment && kind && mayMove(kind, deployment.state as DeploymentState, 'pending')) {
        await this.transitionIn(trx, emit, {
          subscriptionId,
          versionId,
          state: 'pending',
          info: { reason: opts.overrideWindow ? 'redeploy requested (--now)' : 'redeploy requested' },
          actor,
        });
      }
      await this.bumpRevision(trx, emit, { endpointIds: [row.endpoint_id] });
      emit({ kind: 'redeploy.requested', request, actor });
      await this.event(
        trx,
        actor,
        opts.overrideWindow ? 'deployment.window_override_requested' : 'deployment.redeploy_requested',
        `certificate:${row.certificate}`,
        {
          ...(deployment ? { deployment_id: deployment.id } : {}),
          subscription_id: subscriptionId,
          endpoint: row.endpoint,
          certificate: row.certificate,
          version_id: versionId,
          override_window: opts.overrideWindow,
          redeploy_token: request.token,
          from: deployment?.state ?? null,
        },
      );
      return request;
    });
  }

  async listRedeployRequests(): Promise<RedeployRequest[]> {
    const rows = await this.db
      .selectFrom('subscriptions')
      .select(['id', 'redeploy_token', 'redeploy_version_id', 'redeploy_override', 'redeploy_requested_at'])
      .where('redeploy_token', 'is not', null)
      .execute();
    return rows.map((r) => ({
      subscriptionId: r.id,
      versionId: r.redeploy_version_id ?? '',
      token: r.redeploy_token!,
      overrideWindow: Number(r.redeploy_override) === 1,
      requestedAt: r.redeploy_requested_at ?? '',
    }));
  }

  // deployments

  async listDeployments(
    filter: { subscriptionId?: string; versionId?: string; states?: DeploymentState[] } = {},
  ): Promise<Deployment[]> {
    let q = this.db.selectFrom('deployments').selectAll();
    if (filter.subscriptionId) q = q.where('subscription_id', '=', filter.subscriptionId);
    if (filter.versionId) q = q.where('version_id', '=', filter.versionId);
    if (filter.states?.length) q = q.where('state', 'in', filter.states);
    return (await q.orderBy('created_at').execute()).map(toDeployment);
  }

  async getDeployment(subscriptionId: string, versionId: string): Promise<Deployment | undefined> {
    const row = await this.db
      .selectFrom('deployments')
      .selectAll()
      .where('subscription_id', '=', subscriptionId)
      .where('version_id', '=', versionId)
      .executeTakeFirst();
    return row && toDeployment(row);
  }

  async transitionDeployment(
    subscriptionId: string,
    versionId: string,
    state: DeploymentState,
    info: { reason?: string; detail?: Record<string, unknown> },
    actor: Actor,
  ): Promise<Deployment> {
    return this.refusalsRecorded(() =>
      this.write((trx, emit) =>
        this.transitionIn(trx, emit, { subscriptionId, versionId, state, info, actor }),
      ),
    );
  }

  async transitionDeployments(items: DeploymentTransitionInput[]): Promise<Deployment[]> {
    if (items.length === 0) return [];
    return this.refusalsRecorded(() =>
      this.write(async (trx, emit) => {
        return this.transitionsIn(trx, emit, items);
      }),
    );
  }

  /**
   * A refused transition rolls its transaction back; the refusal is then committed in a write of its own, so the
   * audit log keeps who tried which move even though nothing moved.
   */
  private async refusalsRecorded<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof DeploymentTransitionRefused) {
        const { input, from } = e;
        const row = await this.getDeployment(input.subscriptionId, input.versionId);
        const about = await this.deploymentSubject(this.db, input.subscriptionId);
        await this.event(this.db, input.actor, 'deployment.transition_refused', about.subject, {
          ...(row ? { deployment_id: row.id } : {}),
          endpoint: about.endpoint,
          subscription_id: input.subscriptionId,
          version_id: input.versionId,
          from,
          to: input.state,
          message: e.message,
          ...(input.info.reason ? { reason: input.info.reason } : {}),
        });
      }
      throw e;
    }
  }

  /**
   * Deployment events are about the certificate (`certificate:<name>`, with the endpoint and deployment id in the
   * data), so `certfleet events --subject certificate:web` shows a version's whole life: issued, then deployed,
   * rolled back or diverged on each endpoint. `subscription:<id>` only when the subscription is gone.
   */
  private async deploymentSubject(
    db: Db,
    subscriptionId: string,
  ): Promise<{ subject: string; endpoint?: string }> {
    const r = await db
      .selectFrom('subscriptions as s')
      .innerJoin('certificates as c', 'c.id', 's.certificate_id')
      .innerJoin('endpoints as e', 'e.id', 's.endpoint_id')
      .select(['c.name as certificate', 'e.name as endpoint'])
      .where('s.id', '=', subscriptionId)
      .executeTakeFirst();
    return r
      ? { subject: `certificate:${r.certificate}`, endpoint: r.endpoint }
      : { subject: `subscription:${subscriptionId}` };
  }

  /** One transition inside `trx`, checked against the lifecycle table (src/deploy/states.ts). */
  private async transitionIn(
    trx: Transaction<Database>,
    emit: Emit,
    input: DeploymentTransitionInput,
  ): Promise<Deployment> {
    return (await this.transitionsIn(trx, emit, [input]))[0];
  }

  /**
   * Transitions inside `trx`, in order, each checked against the lifecycle table (src/deploy/states.ts) from the
   * state the items before it left: the first refusal throws (the caller's transaction rolls back). A constant
   * number of statements however many items (the rows read at once, written with one upsert, the events with one
   * insert in item order), so a batch of a thousand agents' reports costs a few round trips, not four thousand, on
   * PostgreSQL where each is a network round trip under the write lock.
   */
  private async transitionsIn(
    trx: Transaction<Database>,
    emit: Emit,
    inputs: readonly DeploymentTransitionInput[],
  ): Promise<Deployment[]> {
    const now = this.now();
    const rows = new Map<string, Database['deployments']>(); // by `${subscription} ${version}`, as they stand
    const subjects = new Map<string, { subject: string; endpoint?: string }>();
    for (const part of chunks([...new Set(inputs.map((i) => i.subscriptionId))], ROWS_PER_STATEMENT)) {
      const found = await trx
        .selectFrom('deployments')
        .selectAll()
        .where('subscription_id', 'in', part)
        .where('version_id', 'in', [...new Set(inputs.map((i) => i.versionId))])
        .execute();
      for (const r of found) rows.set(`${r.subscription_id} ${r.version_id}`, r);
      const named = await trx
        .selectFrom('subscriptions as s')
        .innerJoin('certificates as c', 'c.id', 's.certificate_id')
        .innerJoin('endpoints as e', 'e.id', 's.endpoint_id')
        .select(['s.id', 'c.name as certificate', 'e.name as endpoint'])
        .where('s.id', 'in', part)
        .execute();
      for (const r of named)
        subjects.set(r.id, { subject: `certificate:${r.certificate}`, endpoint: r.endpoint });
    }
    const written = new Map<string, Database['deployments']>();
    const events: Array<Insertable<Database['events']>> = [];
    const out: Array<{ deployment: Deployment; from: DeploymentState | null; actor: Actor }> = [];
    for (const input of inputs) {
      const { subscriptionId, versionId, state, info, actor } = input;
      const key = `${subscriptionId} ${versionId}`;
      const existing = rows.get(key);
      const from = existing ? (existing.state as DeploymentState) : null;
      const refusal = refusalOf(actor, from ?? 'none', state);
      if (refusal) throw new DeploymentTransitionRefused(input, from ?? 'none', refusal);
      const fields = { state, reason: info.reason ?? null, detail: json(info.detail ?? {}), updated_at: now };
      const row: Database['deployments'] = existing
        ? { ...existing, ...fields }
        : { id: newId(), subscription_id: subscriptionId, version_id: versionId, created_at: now, ...fields };
      rows.set(key, row);
      written.set(key, row);
      const about = subjects.get(subscriptionId) ?? { subject: `subscription:${subscriptionId}` };
      events.push({
        at: now,
        actor,
        kind: `deployment.${state}`,
        subject: about.subject,
        data: json({
          deployment_id: row.id,
          endpoint: about.endpoint,
          subscription_id: subscriptionId,
          version_id: versionId,
          from,
          ...(info.reason ? { reason: info.reason } : {}),
          ...(info.detail ? { detail: info.detail } : {}),
        }),
      });
      out.push({ deployment: toDeployment(row), from, actor });
    }
    // each row as the last item left it; `id` is the conflict target, so new and existing rows go in one statement
    for (const part of chunks([...written.values()], ROWS_PER_STATEMENT))
      await trx
        .insertInto('deployments')
        .values(part)
        .onConflict((oc) =>
          oc.column('id').doUpdateSet((eb) => ({
            state: eb.ref('excluded.state'),
            reason: eb.ref('excluded.reason'),
            detail: eb.ref('excluded.detail'),
            updated_at: eb.ref('excluded.updated_at'),
          })),
        )
        .execute();
    for (const part of chunks(events, ROWS_PER_STATEMENT))
      await trx.insertInto('events').values(part).execute();
    for (const o of out) emit({ kind: 'deployment.transitioned', ...o });
    return out.map((o) => o.deployment);
  }

  // events

  async appendEvent(e: Omit<AuditEvent, 'id' | 'at'> & { at?: string }): Promise<void> {
    await this.event(this.db, e.actor, e.kind, e.subject, e.data, e.at ?? this.now());
  }

  async listEvents(query: EventQuery = {}): Promise<AuditEvent[]> {
    let q = this.db.selectFrom('events').selectAll();
    if (query.subject) q = q.where('subject', '=', query.subject);
    if (query.kind) q = q.where('kind', 'like', `${query.kind}%`);
    if (query.beforeId !== undefined) q = q.where('id', '<', query.beforeId);
    const limit = Math.min(query.limit ?? 100, 1000);
    // A forward walk reads the oldest events after its cursor; otherwise the newest (before `beforeId`) are read and
    // put in order.
    const rows =
      query.afterId !== undefined
        ? await q.where('id', '>', query.afterId).orderBy('id', 'asc').limit(limit).execute()
        : (await q.orderBy('id', 'desc').limit(limit).execute()).reverse();
    return rows.map((r) => ({
      id: Number(r.id),
      at: r.at,
      actor: r.actor,
      kind: r.kind,
      subject: r.subject,
      data: parse(r.data, {}),
    }));
  }

  // tokens

  async createToken(input: NewToken, actor: Actor): Promise<TokenRecord> {
    return this.db.transaction().execute((trx) => this.insertToken(trx, input, actor));
  }

  async replaceTokens(
    match: { kind: TokenRecord['kind']; name: string },
    input: NewToken,
    actor: Actor,
  ): Promise<{ revoked: number; token: TokenRecord }> {
    return this.db.transaction().execute(async (trx) => {
      const old = await trx
        .deleteFrom('tokens')
        .where('kind', '=', match.kind)
        .where('name', '=', match.name)
        .returning('id')
        .execute();
      for (const { id } of old) {
        await this.event(trx, actor, 'token.revoked', `token:${match.name}`, { kind: match.kind, id });
      }
      return { revoked: old.length, token: await this.insertToken(trx, input, actor) };
    });
  }

  private async insertToken(trx: Transaction<Database>, input: NewToken, actor: Actor): Promise<TokenRecord> {
    const row = {
      id: newId(),
      kind: input.kind,
      name: input.name,
      hash: input.hash,
      endpoint_id: input.endpointId ?? null,
      expires_at: input.expiresAt ?? null,
      used_at: null,
      last_used_at: null,
      created_at: this.now(),
    };
    try {
      await trx.insertInto('tokens').values(row).execute();
    } catch (e) {
      // The hash is 256 random bits, so a clash is the name (unique among API tokens).
      if (isUniqueViolation(e)) {
        throw new CertfleetError(
          'ALREADY_EXISTS',
          `token "${input.name}" already exists`,
          'choose another --name, or revoke the old one first with `certfleet token revoke NAME`',
        );
      }
      throw e;
    }
    await this.event(trx, actor, 'token.created', `token:${input.name}`, {
      kind: input.kind,
      expires_at: input.expiresAt ?? null,
    });
    return toToken(row);
  }

  async listTokens(): Promise<TokenRecord[]> {
    const rows = await this.db
      .selectFrom('tokens')
      .selectAll()
      .where('kind', 'in', [...API_TOKEN_KINDS])
      .orderBy('name')
      .execute();
    return rows.map(toToken);
  }

  async revokeToken(name: string, actor: Actor): Promise<TokenRecord> {
    return this.db.transaction().execute(async (trx) => {
      const row = await trx
        .selectFrom('tokens')
        .selectAll()
        .where('kind', 'in', [...API_TOKEN_KINDS])
        .where('name', '=', name)
        .executeTakeFirst();
      if (!row) {
        throw new CertfleetError('NOT_FOUND', `no token named "${name}"`, 'see `certfleet token list`');
      }
      if (row.kind === 'admin') {
        const admins = await trx
          .selectFrom('tokens')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('kind', '=', 'admin')
          .executeTakeFirst();
        if (Number(admins?.n ?? 0) <= 1) {
          throw new CertfleetError(
            'CONFLICT',
            `token "${name}" is the last admin token`,
            'create another admin token first (`certfleet token create --role admin`), or rotate this one with `certfleet token rotate`',
          );
        }
      }
      await trx.deleteFrom('tokens').where('id', '=', row.id).execute();
      await this.event(trx, actor, 'token.revoked', `token:${name}`, { kind: row.kind, id: row.id });
      return toToken(row);
    });
  }

  async touchToken(id: string, at: string): Promise<void> {
    await this.db.updateTable('tokens').set({ last_used_at: at }).where('id', '=', id).execute();
  }

  async findTokenByHash(hash: string): Promise<TokenRecord | undefined> {
    return this.tokensByHash.get(hash, async () => {
      const row = await this.db.selectFrom('tokens').selectAll().where('hash', '=', hash).executeTakeFirst();
      return row && toToken(row);
    });
  }

  async consumeToken(id: string, at: string): Promise<boolean> {
    const r = await this.db
      .updateTable('tokens')
      .set({ used_at: at })
      .where('id', '=', id)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async countTokens(kind: TokenRecord['kind']): Promise<number> {
    const r = await this.db
      .selectFrom('tokens')
      .select((eb) => eb.fn.countAll().as('n'))
      .where('kind', '=', kind)
      .executeTakeFirst();
    return Number(r?.n ?? 0);
  }

  // probe results

  async saveProbeResults(results: ProbeResultRecord[]): Promise<void> {
    if (results.length === 0) return;
    await this.write(async (trx, emit) => {
      const byEndpoint = new Map<string, ProbeResultRecord[]>();
      for (const r of results) byEndpoint.set(r.endpointId, [...(byEndpoint.get(r.endpointId) ?? []), r]);
      for (const [endpointId, recorded] of byEndpoint)
        emit({ kind: 'probe.recorded', endpointId, results: recorded });
      for (const r of results) {
        const row = {
          endpoint_id: r.endpointId,
          target_key: r.targetKey,
          source: r.source,
          at: r.at,
          ok: r.ok ? 1 : 0,
          fingerprint: r.fingerprint ?? null,
          serial: r.serial ?? null,
          not_before: r.notBefore ?? null,
          not_after: r.notAfter ?? null,
          error_kind: r.errorKind ?? null,
          error_message: r.errorMessage ?? null,
          tls_version: r.tlsVersion ?? null,
          handshake_ms: r.handshakeMs === undefined ? null : Math.round(r.handshakeMs),
        };
        const { endpoint_id: _e, target_key: _t, source: _s, ...rest } = row;
        await trx
          .insertInto('probe_results')
          .values(row)
          .onConflict((oc) => oc.columns(['endpoint_id', 'target_key', 'source']).doUpdateSet(rest))
          .execute();
      }
    });
  }

  async listProbeResults(filter: { endpointId?: string } = {}): Promise<ProbeResultRecord[]> {
    let q = this.db.selectFrom('probe_results').selectAll();
    if (filter.endpointId) q = q.where('endpoint_id', '=', filter.endpointId);
    return (await q.orderBy('endpoint_id').orderBy('target_key').orderBy('source').execute()).map(
      toProbeResult,
    );
  }

  // emergency campaigns (see campaign-queries.ts)

  async createCampaign(
    input: NewCampaign,
    markItem: (state: Record<string, unknown>) => Record<string, unknown>,
    actor: Actor,
  ): Promise<Campaign> {
    return this.write(async (trx, emit) => {
      const campaign = await insertCampaign(trx, input, markItem, actor, this.now());
      await this.event(trx, actor, 'emergency.campaign_started', `campaign:${campaign.id}`, {
        selector: campaign.selector,
        ...campaign.options,
        certificates: campaign.items.length,
      });
      emit({ kind: 'campaign.changed', change: 'started', campaignId: campaign.id, actor });
      return campaign;
    });
  }

  async getCampaign(id: string): Promise<Campaign | undefined> {
    return (await selectCampaigns(this.db, { id }))[0];
  }

  campaignProgressRows(id: string): Promise<CampaignProgressRow[]> {
    return campaignProgressRows(this.db, id);
  }

  listCampaigns(filter: { state?: Campaign['state'] } = {}): Promise<Campaign[]> {
    return selectCampaigns(this.db, filter);
  }

  async finishCampaign(id: string, summary: Record<string, unknown>, actor: Actor): Promise<boolean> {
    return this.write(async (trx, emit) => {
      const done = await closeCampaign(trx, id, 'done', summary, this.now());
      if (!done) return false;
      await this.event(trx, actor, 'emergency.campaign_finished', `campaign:${id}`, summary);
      emit({ kind: 'campaign.changed', change: 'finished', campaignId: id, actor });
      return true;
    });
  }

  async cancelCampaign(
    id: string,
    unmarkItem: (state: Record<string, unknown>) => Record<string, unknown>,
    summary: Record<string, unknown>,
    actor: Actor,
  ): Promise<boolean> {
    return this.write(async (trx, emit) => {
      if (!(await closeCampaign(trx, id, 'cancelled', summary, this.now()))) return false;
      await updateItemStates(trx, id, unmarkItem);
      await this.event(trx, actor, 'emergency.campaign_cancelled', `campaign:${id}`, summary);
      emit({ kind: 'campaign.changed', change: 'cancelled', campaignId: id, actor });
      return true;
    });
  }

  // list reads (one query each, see fleet-queries.ts)

  certificateRows(page?: PageRequest, only?: { names: readonly string[] }): Promise<Page<CertificateRow>> {
    return certificateRows(this.db, page, only);
  }

  endpointRows(page?: PageRequest): Promise<Page<EndpointRow>> {
    return endpointRows(this.db, page);
  }

  fleet(filter?: FleetFilter, page?: PageRequest): Promise<Page<FleetRow>> {
    return fleetRows(this.db, filter, page);
  }

  fleetStatus(filter?: FleetFilter, page?: PageRequest): Promise<Page<FleetStatusRow>> {
    return fleetStatusRows(this.db, filter, page);
  }

  subscriptionRows(filter?: FleetFilter, page?: PageRequest): Promise<Page<SubscriptionRow>> {
    return subscriptionRows(this.db, filter, page);
  }
}

const subscriptionIds = (s: { id: string; endpointId: string; certificateId: string }) => ({
  subscriptionId: s.id,
  endpointId: s.endpointId,
  certificateId: s.certificateId,
});

function emitSubscriptionsDeleted(
  emit: Emit,
  rows: Array<{ id: string; endpoint_id: string; certificate_id: string }>,
  actor: Actor,
): void {
  for (const r of rows) {
    emit({
      kind: 'subscription.changed',
      change: 'deleted',
      subscriptionId: r.id,
      endpointId: r.endpoint_id,
      certificateId: r.certificate_id,
      actor,
    });
  }
}
