import { sql, type Kysely, type Migration, type MigrationProvider } from 'kysely';

/**
 * Migrations are versioned in code (never edited once released; add a new one). They use only portable types
 * (text, integer) so the same list runs on SQLite and PostgreSQL; `idColumn` is the one dialect difference.
 */
export type Dialect = 'sqlite' | 'postgres';

function migrations(dialect: Dialect): Record<string, Migration> {
  return {
    '0001_initial': {
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('meta')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('value', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('certificates')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('sans', 'text', (c) => c.notNull())
          .addColumn('key_type', 'text', (c) => c.notNull())
          .addColumn('issuer', 'text', (c) => c.notNull())
          .addColumn('lifetime_days', 'integer', (c) => c.notNull())
          .addColumn('current_version_id', 'text')
          .addColumn('renewal_state', 'text', (c) => c.notNull().defaultTo('{}'))
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('versions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('certificate_id', 'text', (c) =>
            c.notNull().references('certificates.id').onDelete('cascade'),
          )
          .addColumn('serial', 'text', (c) => c.notNull())
          .addColumn('fingerprint', 'text', (c) => c.notNull())
          .addColumn('not_before', 'text', (c) => c.notNull())
          .addColumn('not_after', 'text', (c) => c.notNull())
          .addColumn('cert_pem', 'text', (c) => c.notNull())
          .addColumn('chain_pem', 'text', (c) => c.notNull())
          .addColumn('sealed_key', 'text', (c) => c.notNull())
          .addColumn('issuer', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('versions_by_certificate')
          .on('versions')
          .columns(['certificate_id', 'created_at'])
          .execute();
        await db.schema
          .createTable('endpoints')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('name', 'text', (c) => c.notNull().unique())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('probe_targets', 'text', (c) => c.notNull())
          .addColumn('labels', 'text', (c) => c.notNull())
          .addColumn('agent_public_key', 'text')
          .addColumn('last_seen_at', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('subscriptions')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('endpoint_id', 'text', (c) => c.notNull().references('endpoints.id').onDelete('cascade'))
          .addColumn('certificate_id', 'text', (c) =>
            c.notNull().references('certificates.id').onDelete('cascade'),
          )
          .addColumn('spec', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addUniqueConstraint('subscriptions_endpoint_certificate', ['endpoint_id', 'certificate_id'])
          .execute();
        await db.schema
          .createTable('deployments')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('subscription_id', 'text', (c) =>
            c.notNull().references('subscriptions.id').onDelete('cascade'),
          )
          .addColumn('version_id', 'text', (c) => c.notNull().references('versions.id').onDelete('cascade'))
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('reason', 'text')
          .addColumn('detail', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addUniqueConstraint('deployments_subscription_version', ['subscription_id', 'version_id'])
          .execute();
        await db.schema
          .createTable('events')
          .addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
            dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
          )
          .addColumn('at', 'text', (c) => c.notNull())
          .addColumn('actor', 'text', (c) => c.notNull())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('subject', 'text', (c) => c.notNull())
          .addColumn('data', 'text', (c) => c.notNull())
          .execute();
        await db.schema.createIndex('events_by_subject').on('events').columns(['subject', 'id']).execute();
        await db.schema
          .createTable('tokens')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('kind', 'text', (c) => c.notNull())
          .addColumn('name', 'text', (c) => c.notNull())
          .addColumn('hash', 'text', (c) => c.notNull().unique())
          .addColumn('endpoint_id', 'text', (c) => c.references('endpoints.id').onDelete('cascade'))
          .addColumn('expires_at', 'text')
          .addColumn('used_at', 'text')
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0002_probe_results': {
      // The latest probe observation per endpoint target (the history lives in metrics, not here).
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('probe_results')
          .addColumn('endpoint_id', 'text', (c) => c.notNull().references('endpoints.id').onDelete('cascade'))
          .addColumn('target_key', 'text', (c) => c.notNull())
          .addColumn('at', 'text', (c) => c.notNull())
          .addColumn('ok', 'integer', (c) => c.notNull())
          .addColumn('fingerprint', 'text')
          .addColumn('not_before', 'text')
          .addColumn('not_after', 'text')
          .addColumn('error_kind', 'text')
          .addColumn('error_message', 'text')
          .addColumn('tls_version', 'text')
          .addColumn('handshake_ms', 'integer')
          .addPrimaryKeyConstraint('probe_results_pk', ['endpoint_id', 'target_key'])
          .execute();
      },
    },
    '0003_redeploy_requests': {
      // The last manual deploy request per subscription (`certfleet deploy`): agents act once per token.
      async up(db: Kysely<any>) {
        for (const [column, type] of [
          ['redeploy_token', 'text'],
          ['redeploy_version_id', 'text'],
          ['redeploy_override', 'integer'],
          ['redeploy_requested_at', 'text'],
        ] as const) {
          await db.schema.alterTable('subscriptions').addColumn(column, type).execute();
        }
      },
    },
    '0004_fleet_read_indexes': {
      // The fleet read model walks subscriptions by certificate (status pages ordered by certificate name).
      async up(db: Kysely<any>) {
        await db.schema
          .createIndex('subscriptions_by_certificate')
          .on('subscriptions')
          .columns(['certificate_id', 'endpoint_id'])
          .execute();
      },
    },
    '0005_api_tokens': {
      // API tokens (admin, read) get a last-use time and unique names; enrollment tokens keep `enroll:<endpoint>`
      // names, several per endpoint, so the index covers only the API kinds.
      async up(db: Kysely<any>) {
        await db.schema.alterTable('tokens').addColumn('last_used_at', 'text').execute();
        await db.schema
          .createIndex('tokens_api_name')
          .on('tokens')
          .column('name')
          .unique()
          // literal values: PostgreSQL takes no bound parameters in DDL
          .where(sql<boolean>`kind in ('admin', 'read')`)
          .execute();
      },
    },
    '0006_postgres_byte_order': {
      // Names and keys sort and compare byte-wise, as on SQLite: keyset cursors (`name > cursor`) and list orders
      // must not depend on the collation the operator's PostgreSQL database was created with. Nothing to do on
      // SQLite.
      async up(db: Kysely<any>) {
        if (dialect !== 'postgres') return;
        for (const [table, column] of [
          ['meta', 'key'],
          ['certificates', 'name'],
          ['endpoints', 'name'],
          ['probe_results', 'target_key'],
          ['events', 'kind'],
        ]) {
          await sql`alter table ${sql.table(table)} alter column ${sql.ref(column)} type text collate "C"`.execute(
            db,
          );
        }
      },
    },
    '0007_probe_serial': {
      // The served leaf's serial, for the served-certificate info metric (fingerprint alone names no CA record).
      async up(db: Kysely<any>) {
        await db.schema.alterTable('probe_results').addColumn('serial', 'text').execute();
      },
    },
    '0008_shared_hub_state': {
      // State every hub of a cluster must see: http-01 answers (any hub answers the CA) and agent request nonces
      // (a request replayed to another hub is refused). Both are short-lived rows.
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('http01_tokens')
          .addColumn('token', 'text', (c) => c.primaryKey())
          .addColumn('key_authorization', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createTable('agent_nonces')
          .addColumn('key', 'text', (c) => c.primaryKey())
          .addColumn('expires_at', 'text', (c) => c.notNull())
          .execute();
        await db.schema
          .createIndex('agent_nonces_by_expiry')
          .on('agent_nonces')
          .column('expires_at')
          .execute();
      },
    },
    '0009_certificate_acme_profile': {
      // The ACME profile a certificate is ordered under (null: the issuer's default profile, else the CA's).
      async up(db: Kysely<any>) {
        await db.schema.alterTable('certificates').addColumn('acme_profile', 'text').execute();
      },
    },
    '0010_emergency_campaigns': {
      // Emergency mass reissues (`certfleet emergency reissue`): a campaign and the certificates it selected, with
      // the version each had then, so progress ("is the new version served?") survives a hub restart.
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('campaigns')
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('selector', 'text', (c) => c.notNull())
          .addColumn('options', 'text', (c) => c.notNull())
          .addColumn('state', 'text', (c) => c.notNull())
          .addColumn('actor', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull())
          .addColumn('finished_at', 'text')
          .addColumn('summary', 'text')
          .execute();
        await db.schema
          .createTable('campaign_items')
          .addColumn('campaign_id', 'text', (c) => c.notNull().references('campaigns.id').onDelete('cascade'))
          .addColumn('certificate_id', 'text', (c) =>
            c.notNull().references('certificates.id').onDelete('cascade'),
          )
          .addColumn('baseline_version_id', 'text')
          .addPrimaryKeyConstraint('campaign_items_pk', ['campaign_id', 'certificate_id'])
          .execute();
        await db.schema
          .createIndex('campaigns_by_state')
          .on('campaigns')
          .columns(['state', 'created_at'])
          .execute();
      },
    },
    '0011_probe_result_sources': {
      // Probes are taken by the hub and by agents (targets marked `from: agent|both`): the latest result per target
      // and per source (`hub`, `agent:<endpoint>`). A primary key cannot be altered on SQLite, so the table is
      // rebuilt; existing rows were the hub's.
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('probe_results_v11')
          .addColumn('endpoint_id', 'text', (c) => c.notNull().references('endpoints.id').onDelete('cascade'))
          .addColumn('target_key', 'text', (c) => c.notNull())
          .addColumn('source', 'text', (c) => c.notNull())
          .addColumn('at', 'text', (c) => c.notNull())
          .addColumn('ok', 'integer', (c) => c.notNull())
          .addColumn('fingerprint', 'text')
          .addColumn('serial', 'text')
          .addColumn('not_before', 'text')
          .addColumn('not_after', 'text')
          .addColumn('error_kind', 'text')
          .addColumn('error_message', 'text')
          .addColumn('tls_version', 'text')
          .addColumn('handshake_ms', 'integer')
          .addPrimaryKeyConstraint('probe_results_source_pk', ['endpoint_id', 'target_key', 'source'])
          .execute();
        await sql`insert into probe_results_v11 (endpoint_id, target_key, source, at, ok, fingerprint, serial, not_before,
          not_after, error_kind, error_message, tls_version, handshake_ms)
          select endpoint_id, target_key, 'hub', at, ok, fingerprint, serial, not_before, not_after, error_kind,
          error_message, tls_version, handshake_ms from probe_results`.execute(db);
        await db.schema.dropTable('probe_results').execute();
        await db.schema.alterTable('probe_results_v11').renameTo('probe_results').execute();
        if (dialect === 'postgres') {
          // as 0006: byte-wise order for keys
          for (const column of ['target_key', 'source']) {
            await sql`alter table probe_results alter column ${sql.ref(column)} type text collate "C"`.execute(
              db,
            );
          }
        }
      },
    },
    '0012_acme_orders': {
      // An ACME order about to be finalized, per certificate, with its sealed key, until the version it yields is
      // stored: a hub that dies between finalize and commit leaves it for the next attempt to resume (download the
      // certificate) instead of ordering a second one.
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('acme_orders')
          .addColumn('certificate_id', 'text', (c) => c.primaryKey())
          .addColumn('issuer', 'text', (c) => c.notNull())
          .addColumn('order_url', 'text', (c) => c.notNull())
          .addColumn('sealed_key', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .execute();
      },
    },
    '0013_acme_order_names': {
      // The names an order was placed for (JSON array): a new certificate's first issuance has no stored certificate
      // to find its order by, so adding the certificate again finds the order left by a hub that died by its names.
      async up(db: Kysely<any>) {
        await db.schema.alterTable('acme_orders').addColumn('sans', 'text').execute();
      },
    },
    '0014_rate_limit_orders': {
      // The rate-limit budget of each ACME directory was one meta value (`planner.budget.<directory>`) rewritten
      // whole by every issuance: O(orders in the window) per issuance. Now each counted order is a row, inserted
      // with the issuance that spent it; hubs read the rows they have not seen (`seq` after the last they read).
      // A directory's `seq` comes from its head row, bumped in the same transaction: numbers never go back once rows
      // are pruned, and follow commit order (writes are serialised on both dialects; the head's row lock too).
      async up(db: Kysely<any>) {
        await db.schema
          .createTable('rate_limit_orders')
          .addColumn('directory', 'text', (c) => c.notNull())
          .addColumn('seq', 'integer', (c) => c.notNull())
          .addColumn('hub', 'text', (c) => c.notNull())
          .addColumn('at', 'text', (c) => c.notNull())
          .addColumn('outcome', 'text', (c) => c.notNull())
          .addColumn('windows', 'text', (c) => c.notNull())
          .addColumn('issued_set', 'text')
          .addColumn('replaces', 'text')
          .addColumn('keep_until', 'text', (c) => c.notNull())
          .addPrimaryKeyConstraint('rate_limit_orders_pk', ['directory', 'seq'])
          .execute();
        await db.schema
          .createIndex('rate_limit_orders_by_keep_until')
          .on('rate_limit_orders')
          .column('keep_until')
          .execute();
        await db.schema
          .createTable('rate_limit_heads')
          .addColumn('directory', 'text', (c) => c.primaryKey())
          .addColumn('seq', 'integer', (c) => c.notNull())
          .execute();
        await carryOverBudgets(db);
      },
    },
  };
}

const LEGACY_BUDGET_PREFIX = 'planner.budget.';
/** The windows a directory configured are unknown here: carried-over rows are kept as long as a replacement is. */
const LEGACY_KEEP_MS = 400 * 86_400_000;

/**
 * 0014: each stored budget (RateLimitBudget.toJSON, version 1) becomes rows that count the same: a row per time in
 * a window, per exact set issued, per ARI replacement. The hub's budget still drops a time once it leaves its
 * configured window; the row itself goes at most 400 days later. Unreadable values were ignored before and are
 * dropped with the others.
 */
async function carryOverBudgets(db: Kysely<any>): Promise<void> {
  const stored = await db
    .selectFrom('meta')
    .select(['key', 'value'])
    .where('key', 'like', `${LEGACY_BUDGET_PREFIX}%`)
    .execute();
  for (const { key, value } of stored as Array<{ key: string; value: string }>) {
    const directory = key.slice(LEGACY_BUDGET_PREFIX.length);
    let state: {
      version?: number;
      windows?: Record<string, string[]>;
      issuedSets?: Record<string, string>;
      replaced?: Record<string, string>;
    } = {};
    try {
      state = JSON.parse(value);
    } catch {}
    const rows: Array<{ windows: string[]; issued_set?: string; replaces?: string; at: string }> = [];
    if (state?.version === 1) {
      for (const [k, times] of Object.entries(state.windows ?? {}))
        for (const at of times) rows.push({ windows: [k], at });
      for (const [set, at] of Object.entries(state.issuedSets ?? {}))
        rows.push({ windows: [], issued_set: set, at });
      for (const [id, at] of Object.entries(state.replaced ?? {}))
        rows.push({ windows: [], replaces: id, at });
    }
    const values = rows.map((r, i) => ({
      directory,
      seq: i + 1,
      hub: 'migration-0014',
      at: r.at,
      outcome: 'issued',
      windows: JSON.stringify(r.windows),
      issued_set: r.issued_set ?? null,
      replaces: r.replaces ?? null,
      keep_until: new Date(Date.parse(r.at) + LEGACY_KEEP_MS).toISOString(),
    }));
    for (let i = 0; i < values.length; i += 200)
      await db
        .insertInto('rate_limit_orders')
        .values(values.slice(i, i + 200))
        .execute();
    if (values.length)
      await db.insertInto('rate_limit_heads').values({ directory, seq: values.length }).execute();
    await db.deleteFrom('meta').where('key', '=', key).execute();
  }
}

/** The migrations this build knows, in the order they run (a backup from a newer schema lists more). */
export const migrationNames = (dialect: Dialect): string[] => Object.keys(migrations(dialect)).sort();

export function migrationProvider(dialect: Dialect): MigrationProvider {
  return { getMigrations: async () => migrations(dialect) };
}
