/**
 * The emergency campaign tables (migration 0010): reads and the writes run inside SqlStore's transactions. Kept
 * apart from sql-store.ts so the campaign's storage is one file; the transaction and its events stay SqlStore's.
 */
import type { Kysely, Transaction } from 'kysely';
import { CertfleetError } from '../core/errors.ts';
import { chunks, parse } from './rows.ts';
import type { Database } from './schema.ts';
import type { DeploymentState } from '../core/types.ts';
import type { Actor, Campaign, CampaignItem, CampaignProgressRow, NewCampaign } from './store.ts';

type Db = Kysely<Database> | Transaction<Database>;

const json = (v: unknown): string => JSON.stringify(v);

function toCampaign(r: Database['campaigns'], items: CampaignItem[]): Campaign {
  return {
    id: r.id,
    selector: parse(r.selector, { kind: 'all' }),
    options: parse(r.options, { rekey: false, overrideWindows: false, reason: '' }),
    state: r.state as Campaign['state'],
    actor: r.actor,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
    ...(r.finished_at ? { finishedAt: r.finished_at } : {}),
    ...(r.summary ? { summary: parse(r.summary, {}) } : {}),
    items,
  };
}

/** Inserts the campaign and its items and applies `markItem` to each item's renewal_state. */
export async function insertCampaign(
  trx: Transaction<Database>,
  input: NewCampaign,
  markItem: (state: Record<string, unknown>) => Record<string, unknown>,
  actor: Actor,
  now: string,
): Promise<Campaign> {
  await trx
    .insertInto('campaigns')
    .values({
      id: input.id,
      selector: json(input.selector),
      options: json(input.options),
      state: 'running',
      actor,
      created_at: now,
      updated_at: now,
      finished_at: null,
      summary: null,
    })
    .execute();
  for (const batch of chunks(input.items)) {
    const ids = batch.map((i) => i.certificateId);
    const rows = await trx
      .selectFrom('certificates')
      .select(['id', 'renewal_state'])
      .where('id', 'in', ids)
      .execute();
    if (rows.length !== ids.length)
      throw new CertfleetError(
        'CERTIFICATE_NOT_FOUND',
        'a selected certificate was deleted while the campaign started',
        'run the command again: the selection is made afresh',
      );
    await trx
      .insertInto('campaign_items')
      .values(
        batch.map((i) => ({
          campaign_id: input.id,
          certificate_id: i.certificateId,
          baseline_version_id: i.baselineVersionId ?? null,
        })),
      )
      .execute();
    for (const r of rows)
      await trx
        .updateTable('certificates')
        .set({ renewal_state: json(markItem(parse(r.renewal_state, {}))) })
        .where('id', '=', r.id)
        .execute();
  }
  return toCampaign(
    await trx.selectFrom('campaigns').selectAll().where('id', '=', input.id).executeTakeFirstOrThrow(),
    input.items,
  );
}

async function itemsOf(db: Db, ids: string[]): Promise<Map<string, CampaignItem[]>> {
  const out = new Map<string, CampaignItem[]>(ids.map((id) => [id, []]));
  if (ids.length === 0) return out;
  const rows = await db
    .selectFrom('campaign_items')
    .selectAll()
    .where('campaign_id', 'in', ids)
    .orderBy('campaign_id')
    .orderBy('certificate_id')
    .execute();
  for (const r of rows)
    out.get(r.campaign_id)!.push({
      certificateId: r.certificate_id,
      ...(r.baseline_version_id ? { baselineVersionId: r.baseline_version_id } : {}),
    });
  return out;
}

export async function selectCampaigns(
  db: Db,
  filter: { id?: string; state?: Campaign['state'] },
): Promise<Campaign[]> {
  let q = db.selectFrom('campaigns').selectAll();
  if (filter.id) q = q.where('id', '=', filter.id);
  if (filter.state) q = q.where('state', '=', filter.state);
  const rows = await q.orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
  const items = await itemsOf(
    db,
    rows.map((r) => r.id),
  );
  return rows.map((r) => toCampaign(r, items.get(r.id)!));
}

/**
 * A campaign's items with their certificate's current version, and each subscription's deployment of that version:
 * what a progress look counts. Lean on purpose: a look runs every few seconds during a campaign (the whole fleet
 * read with its probe results cost most of the hub's time at 3,000 certificates).
 */
export async function campaignProgressRows(db: Db, id: string): Promise<CampaignProgressRow[]> {
  const rows = await db
    .selectFrom('campaign_items as i')
    .innerJoin('certificates as c', 'c.id', 'i.certificate_id')
    .leftJoin('subscriptions as s', 's.certificate_id', 'c.id')
    .leftJoin('deployments as d', (j) =>
      j.onRef('d.subscription_id', '=', 's.id').onRef('d.version_id', '=', 'c.current_version_id'),
    )
    .select([
      'i.certificate_id',
      'i.baseline_version_id',
      'c.current_version_id',
      'c.renewal_state',
      's.id as subscription_id',
      'd.state',
    ])
    .where('i.campaign_id', '=', id)
    .execute();
  return rows.map((r) => ({
    certificateId: r.certificate_id,
    ...(r.baseline_version_id ? { baselineVersionId: r.baseline_version_id } : {}),
    ...(r.current_version_id ? { currentVersionId: r.current_version_id } : {}),
    renewalState: parse(r.renewal_state, {}),
    ...(r.subscription_id ? { subscriptionId: r.subscription_id } : {}),
    ...(r.state ? { deploymentState: r.state as DeploymentState } : {}),
  }));
}

/** Running → done or cancelled, with the counts at that moment; false when it was not running. */
export async function closeCampaign(
  trx: Transaction<Database>,
  id: string,
  state: Exclude<Campaign['state'], 'running'>,
  summary: Record<string, unknown>,
  now: string,
): Promise<boolean> {
  const r = await trx
    .updateTable('campaigns')
    .set({ state, finished_at: now, updated_at: now, summary: json(summary) })
    .where('id', '=', id)
    .where('state', '=', 'running')
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

/** Applies `change` to the renewal_state of every certificate of the campaign. */
export async function updateItemStates(
  trx: Transaction<Database>,
  id: string,
  change: (state: Record<string, unknown>) => Record<string, unknown>,
): Promise<void> {
  const rows = await trx
    .selectFrom('certificates as c')
    .innerJoin('campaign_items as i', 'i.certificate_id', 'c.id')
    .select(['c.id', 'c.renewal_state'])
    .where('i.campaign_id', '=', id)
    .execute();
  for (const r of rows) {
    const before = parse<Record<string, unknown>>(r.renewal_state, {});
    const after = change(before);
    if (json(after) !== json(before))
      await trx
        .updateTable('certificates')
        .set({ renewal_state: json(after) })
        .where('id', '=', r.id)
        .execute();
  }
}
