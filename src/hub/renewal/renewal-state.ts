/**
 * What the hub keeps per certificate in `renewal_state` (JSON), and every change to it as a pure function. The
 * store applies a change inside the transaction that commits the step it belongs to (Store.commitRenewal), so a
 * change always starts from the latest state: no writer can lose another's update.
 */
import type { CertificateVersion } from '../../core/types.ts';
import type { AriInfo, PlanInput } from '../planner/index.ts';
import type { Store } from '../../store/store.ts';

/** Times are ISO strings. */
export interface RenewalState {
  /** `retryAfter`: when the CA said the last attempt may be retried (its Retry-After). */
  failures?: { count: number; lastFailureAt: string; lastError?: string; retryAfter?: string };
  /** ARI for one version (refetched when the current version changes). */
  ari?: {
    versionId: string;
    start: string;
    end: string;
    fetchedAt: string;
    retryAfter?: string;
    explanationUrl?: string;
  };
  /** A failed ARI fetch: no new attempt before `retryAt`; renewal falls back to the lifetime rule meanwhile. */
  ariError?: { versionId: string; at: string; retryAt: string; error: string };
  /** The deferral last announced (one `renewal.deferred` event per limit and free time). */
  deferred?: { limit: string; freesAt: string };
  /** Revoked versions; the chain treats the current version as due while it is among them. */
  revoked?: Array<{ versionId: string; serial: string; reason: string; at: string }>;
  /**
   * A new version was asked for: renew now or a config change whose attempt failed, or an emergency campaign
   * (`urgent`, `campaignId`). Due until one is issued.
   */
  reissueRequested?: { at: string; reason: string; urgent?: boolean; campaignId?: string };
}

export type StateChange = (state: RenewalState) => RenewalState;

export async function readRenewalState(store: Store, certificateId: string): Promise<RenewalState> {
  return (await store.getRenewalState(certificateId)) as RenewalState;
}

/** A change in the form Store.commitRenewal takes. */
export const storeChange =
  (change: StateChange) =>
  (state: Record<string, unknown>): Record<string, unknown> =>
    change(state as RenewalState) as Record<string, unknown>;

/** A version was issued: failures, the announced deferral and any pending request are settled. */
export const afterIssued: StateChange = ({ failures: _f, deferred: _d, reissueRequested: _r, ...rest }) =>
  rest;

/**
 * A new version was asked for (renew now, a config change, a revocation's replacement): due until one is issued.
 * Recorded before the order, so a hub that dies during it leaves the request to the next leader's planner. An
 * earlier request (an emergency campaign's) is kept as it is.
 */
export const withRequest =
  (at: Date, reason: string): StateChange =>
  (s) =>
    s.reissueRequested ? s : { ...s, reissueRequested: { at: at.toISOString(), reason } };

/**
 * An attempt failed; a requested reissue stays requested (the planner retries it with backoff, and not before the
 * CA's Retry-After when it sent one).
 */
export const afterFailed =
  (at: Date, error: string, requested?: string, retryAfter?: Date): StateChange =>
  (s) => {
    const failed = {
      ...s,
      failures: {
        count: (s.failures?.count ?? 0) + 1,
        lastFailureAt: at.toISOString(),
        lastError: error.slice(0, 500),
        ...(retryAfter ? { retryAfter: retryAfter.toISOString() } : {}),
      },
    };
    return requested ? withRequest(at, requested)(failed) : failed;
  };

export const withRevoked =
  (version: CertificateVersion, reason: string, at: Date): StateChange =>
  (s) => ({
    ...s,
    revoked: [
      ...(s.revoked ?? []),
      { versionId: version.id, serial: version.serial, reason, at: at.toISOString() },
    ],
  });

/** An emergency campaign wants a new version: urgent, whatever the dates say, until one is issued. */
export const withCampaignRequest =
  (campaignId: string, reason: string, at: Date): StateChange =>
  (s) => ({ ...s, reissueRequested: { at: at.toISOString(), reason, urgent: true, campaignId } });

/** The campaign's reissue request is withdrawn (it was cancelled); another's, or a manual one, stays. */
export const withoutCampaignRequest =
  (campaignId: string): StateChange =>
  ({ reissueRequested, ...rest }) =>
    reissueRequested && reissueRequested.campaignId !== campaignId ? { ...rest, reissueRequested } : rest;

export const withDeferred =
  (limit: string, freesAt: string): StateChange =>
  (s) => ({ ...s, deferred: { limit, freesAt } });

export const withAri =
  (versionId: string, ari: AriInfo): StateChange =>
  ({ ariError: _drop, ...s }) => ({
    ...s,
    ari: {
      versionId,
      start: ari.suggestedWindow.start.toISOString(),
      end: ari.suggestedWindow.end.toISOString(),
      fetchedAt: ari.fetchedAt.toISOString(),
      ...(ari.retryAfter ? { retryAfter: ari.retryAfter.toISOString() } : {}),
      ...(ari.explanationUrl ? { explanationUrl: ari.explanationUrl } : {}),
    },
  });

export const withAriError =
  (versionId: string, at: Date, retryAt: Date, error: string): StateChange =>
  (s) => ({ ...s, ariError: { versionId, at: at.toISOString(), retryAt: retryAt.toISOString(), error } });

/** The stored ARI of `current`, if it is for that version. */
export function ariOf(state: RenewalState, current: CertificateVersion | undefined): AriInfo | undefined {
  const a = state.ari;
  if (!current || a?.versionId !== current.id) return undefined;
  return {
    suggestedWindow: { start: new Date(a.start), end: new Date(a.end) },
    fetchedAt: new Date(a.fetchedAt),
    ...(a.retryAfter ? { retryAfter: new Date(a.retryAfter) } : {}),
    ...(a.explanationUrl ? { explanationUrl: a.explanationUrl } : {}),
  };
}

/** What the renewal chain reads from the stored state: ARI, failures, a revoked current version, a request. */
export function policyFacts(
  state: RenewalState,
  current: CertificateVersion | undefined,
): Pick<PlanInput, 'ari' | 'failures' | 'revoked' | 'reissueRequested'> {
  const ari = ariOf(state, current);
  const revoked = current && state.revoked?.find((r) => r.versionId === current.id);
  const f = state.failures;
  const r = state.reissueRequested;
  return {
    ...(ari ? { ari } : {}),
    ...(f
      ? {
          failures: {
            count: f.count,
            lastFailureAt: new Date(f.lastFailureAt),
            ...(f.lastError ? { lastError: f.lastError } : {}),
            ...(f.retryAfter ? { retryAfter: new Date(f.retryAfter) } : {}),
          },
        }
      : {}),
    ...(revoked ? { revoked: { at: new Date(revoked.at), reason: revoked.reason } } : {}),
    ...(r
      ? { reissueRequested: { at: new Date(r.at), reason: r.reason, ...(r.urgent ? { urgent: true } : {}) } }
      : {}),
  };
}
