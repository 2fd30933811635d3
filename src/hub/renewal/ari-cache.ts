/**
 * renewalInfo (RFC 9773) per current version, cached in renewal_state: fetched when the CA offers it and the last
 * answer's Retry-After has passed; a failed fetch is not retried for an hour (renewal falls back to the lifetime
 * rule meanwhile).
 */
import { errorMessage } from '../../core/errors.ts';
import type { Certificate, CertificateVersion } from '../../core/types.ts';
import { fetchRenewalInfo } from '../../issuers/acme/ari.ts';
import type { AcmeRuntime } from '../acme/acme-runtime.ts';
import type { HubContext } from '../hub-context.ts';
import { nextAriFetch, type RenewalPolicy } from '../planner/index.ts';
import {
  ariOf,
  storeChange,
  withAri,
  withAriError,
  type RenewalState,
  type StateChange,
} from './renewal-state.ts';

const ARI_ERROR_RETRY_MS = 60 * 60_000;

export class AriCache {
  constructor(
    private readonly ctx: HubContext,
    private readonly policy: RenewalPolicy,
    private readonly acme?: AcmeRuntime,
  ) {}

  /** `state` with fresh ARI for `current` when a fetch is due; the change is committed before it is returned. */
  async refresh(
    cert: Certificate,
    current: CertificateVersion,
    state: RenewalState,
    now: Date,
    signal?: AbortSignal,
  ): Promise<RenewalState> {
    const entry = this.acme?.entries.get(cert.issuer);
    if (!entry) return state;
    if (state.ariError?.versionId === current.id && new Date(state.ariError.retryAt) > now) return state;
    const cached = ariOf(state, current);
    if (cached && nextAriFetch(cached, now, this.policy).getTime() > now.getTime()) return state;
    let change: StateChange;
    try {
      const dir = await entry.issuer.directory(signal);
      if (!dir.renewalInfo) return state;
      const info = await fetchRenewalInfo(dir, current.certPem, {
        ...(entry.caPem ? { caPem: entry.caPem } : {}),
        ...(signal ? { signal } : {}),
      });
      if (!info) return state;
      change = withAri(current.id, {
        suggestedWindow: info.suggestedWindow,
        fetchedAt: now,
        ...(info.retryAfterSeconds !== undefined
          ? { retryAfter: new Date(now.getTime() + info.retryAfterSeconds * 1000) }
          : {}),
        ...(info.explanationURL ? { explanationUrl: info.explanationURL } : {}),
      });
    } catch (e) {
      if (signal?.aborted) throw e;
      this.ctx.logger.warn({ certificate: cert.name, err: errorMessage(e) }, 'renewalInfo fetch failed');
      change = withAriError(current.id, now, new Date(now.getTime() + ARI_ERROR_RETRY_MS), errorMessage(e));
    }
    let next = change(state);
    await this.ctx.store.commitRenewal({
      certificate: { id: cert.id },
      actor: 'planner',
      renewalState: storeChange((s) => (next = change(s))),
    });
    return next;
  }
}
