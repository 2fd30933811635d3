/**
 * A campaign's progress and its closing report, computed from the store each time (nothing is counted on the
 * side, so a hub restart loses nothing): a certificate is issued once its current version differs from the one it
 * had when selected; each subscription then counts by the deployment of that new version. Counts are cumulative
 * (a verified deployment was also delivered and reloaded), so they read as a progress bar.
 */
import type { DeploymentState } from '../../core/types.ts';
import type { Campaign, FleetRow } from '../../store/store.ts';
import type { Store } from '../../store/store.ts';

export interface CampaignProgress {
  /** Selected certificates, and how many have a new version. */
  certificates: number;
  issued: number;
  /** Certificates not yet issued whose last attempt failed (the planner retries them with backoff). */
  issueFailing: number;
  /** Endpoint deployments of the selected certificates (one per subscription). */
  deployments: number;
  delivered: number;
  reloaded: number;
  verified: number;
  /** Deployments of a new version that failed or were rolled back: the agent's final word until a redeploy. */
  failed: number;
  /** Every certificate is issued and every deployment of a new version is verified or failed. */
  complete: boolean;
}

export interface ReportLine {
  certificate: string;
  endpoint: string;
  /** `not issued` before the new version exists, else the deployment's state (`none`: not reported yet). */
  state: DeploymentState | 'not issued' | 'none';
  reason?: string;
  /** The newest probe results of the endpoint's targets: does it serve the new version? */
  probes: Array<{ target: string; at: string; ok: boolean; servesNew: boolean; error?: string }>;
  /** The last issuance error, while not issued. */
  lastError?: string;
}

/** The numeric fields of CampaignProgress (a stored summary must have them all to stand for it). */
export const PROGRESS_COUNTS = [
  'certificates',
  'issued',
  'issueFailing',
  'deployments',
  'delivered',
  'reloaded',
  'verified',
  'failed',
] as const satisfies ReadonlyArray<keyof CampaignProgress>;

const DELIVERED: ReadonlySet<DeploymentState> = new Set([
  'delivered',
  'installed',
  'waiting_window',
  'reloaded',
  'verified',
  'diverged',
]);
const RELOADED: ReadonlySet<DeploymentState> = new Set(['reloaded', 'verified', 'diverged']);
const FAILED: ReadonlySet<DeploymentState> = new Set(['failed', 'rolled_back']);

interface Snapshot {
  /** Per selected certificate: is its current version new, and its last issuance error. */
  certs: Array<{ id: string; issued: boolean; lastError?: string }>;
  /** Fleet rows of the selected certificates (the deployment is that of the current version). */
  rows: FleetRow[];
  baseline: Map<string, string | undefined>;
}

async function snapshot(store: Store, campaign: Campaign): Promise<Snapshot> {
  const baseline = new Map(campaign.items.map((i) => [i.certificateId, i.baselineVersionId]));
  const certRows = (await store.certificateRows()).items.filter((r) => baseline.has(r.certificate.id));
  const certs = certRows.map((r) => {
    const lastError = lastErrorOf(r.renewalState);
    return {
      id: r.certificate.id,
      issued: r.current !== undefined && r.current.id !== baseline.get(r.certificate.id),
      ...(lastError ? { lastError } : {}),
    };
  });
  const rows = (await store.fleet()).items.filter((r) => baseline.has(r.certificate.id));
  return { certs, rows, baseline };
}

const isNew = (s: Snapshot, r: FleetRow) =>
  r.current !== undefined && r.current.id !== s.baseline.get(r.certificate.id);

/** One selected certificate (is it issued, did its last attempt fail) and the states of its new version's deployments. */
interface Counted {
  issued: boolean;
  failing: boolean;
  /** One entry per subscription: the state of the new version's deployment there (undefined: none yet, or not issued). */
  deployments: Array<DeploymentState | undefined>;
}

/** The counts of CampaignProgress over the selected certificates. */
function countOf(certs: Iterable<Counted>): CampaignProgress {
  const p: CampaignProgress = {
    certificates: 0,
    issued: 0,
    issueFailing: 0,
    deployments: 0,
    delivered: 0,
    reloaded: 0,
    verified: 0,
    failed: 0,
    complete: false,
  };
  for (const c of certs) {
    p.certificates++;
    if (c.issued) p.issued++;
    else if (c.failing) p.issueFailing++;
    for (const state of c.deployments) {
      p.deployments++;
      if (!state) continue;
      if (DELIVERED.has(state)) p.delivered++;
      if (RELOADED.has(state)) p.reloaded++;
      if (state === 'verified') p.verified++;
      if (FAILED.has(state)) p.failed++;
    }
  }
  p.complete = p.issued === p.certificates && p.verified + p.failed === p.deployments;
  return p;
}

export function progressOf(s: Snapshot): CampaignProgress {
  const byId = new Map<string, Counted>(
    s.certs.map((c) => [c.id, { issued: c.issued, failing: !!c.lastError, deployments: [] }]),
  );
  for (const r of s.rows)
    byId.get(r.certificate.id)?.deployments.push(isNew(s, r) ? r.deployment?.state : undefined);
  return countOf(byId.values());
}

/**
 * The progress of a running campaign, from one lean read (its items, their current versions and those versions'
 * deployments): looked at every few seconds while it runs, so it must not read the whole fleet.
 */
export async function campaignProgress(store: Store, campaign: Campaign): Promise<CampaignProgress> {
  const byId = new Map<string, Counted>();
  for (const r of await store.campaignProgressRows(campaign.id)) {
    let c = byId.get(r.certificateId);
    if (!c) {
      const issued = r.currentVersionId !== undefined && r.currentVersionId !== r.baselineVersionId;
      c = { issued, failing: !issued && lastErrorOf(r.renewalState) !== undefined, deployments: [] };
      byId.set(r.certificateId, c);
    }
    if (r.subscriptionId) c.deployments.push(c.issued ? r.deploymentState : undefined);
  }
  return countOf(byId.values());
}

const lastErrorOf = (renewalState: Record<string, unknown>): string | undefined =>
  (renewalState as { failures?: { lastError?: string } }).failures?.lastError || undefined;

/** Every endpoint not (yet) serving a new certificate, and why: issuance, the deployment, what the probes see. */
export async function campaignReport(
  store: Store,
  campaign: Campaign,
): Promise<{ progress: CampaignProgress; pending: ReportLine[] }> {
  const s = await snapshot(store, campaign);
  const errors = new Map(s.certs.map((c) => [c.id, c.lastError]));
  const pending: ReportLine[] = [];
  for (const r of s.rows) {
    const fresh = isNew(s, r);
    if (fresh && r.deployment?.state === 'verified') continue;
    const lastError = fresh ? undefined : errors.get(r.certificate.id);
    pending.push({
      certificate: r.certificate.name,
      endpoint: r.endpoint.name,
      state: fresh ? (r.deployment?.state ?? 'none') : 'not issued',
      ...(fresh && r.deployment?.reason ? { reason: r.deployment.reason } : {}),
      probes: r.probes.map((p) => ({
        target: p.targetKey,
        at: p.at,
        ok: p.ok,
        servesNew: fresh && p.ok && p.fingerprint === r.current!.fingerprint,
        ...(p.errorMessage ? { error: p.errorMessage } : {}),
      })),
      ...(lastError ? { lastError } : {}),
    });
  }
  return { progress: progressOf(s), pending };
}
