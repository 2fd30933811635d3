/**
 * The renewal side of the hub behind one face, for the planner loop and the API: plan inputs (with cached ARI),
 * renew now, the calendar, dry runs and revocation. Each job lives in its own file beside this one; issuance
 * (coalesced, within the budget, one transaction) only in issuance.ts.
 */
import { CertfleetError, certificateNotFound } from '../../core/errors.ts';
import type { Certificate, CertificateVersion } from '../../core/types.ts';
import type { RevocationReason } from '../../issuers/acme/acme-issuer.ts';
import type { Actor } from '../../store/store.ts';
import type { AcmeRuntime } from '../acme/acme-runtime.ts';
import type { HubContext } from '../hub-context.ts';
import {
  DEFAULT_POLICY,
  evaluateRenewal,
  planCalendar,
  type PlanEntry,
  type PlanInput,
  type RateLimitBudget,
  type RenewalPolicy,
} from '../planner/index.ts';
import { AriCache } from './ari-cache.ts';
import { dryRun, type DryRunResult } from './dry-run.ts';
import { errorJson, Issuance, type IssueAttempt } from './issuance.ts';
import { planInputFor, requestFor } from './plan-input.ts';
import { assertRevocationReason, revokeCurrent, type RevokeResult } from './revocation.ts';

export class RenewalService {
  readonly ari: AriCache;

  constructor(
    readonly ctx: HubContext,
    readonly issuance: Issuance,
    readonly acme?: AcmeRuntime,
    readonly policy: RenewalPolicy = DEFAULT_POLICY,
  ) {
    this.ari = new AriCache(ctx, policy, acme);
  }

  /** The planner's view of one certificate; fetches ARI when the CA offers it and it is due (`fetchAri`). */
  planInputFor(cert: Certificate, opts: { fetchAri?: boolean; signal?: AbortSignal } = {}) {
    return planInputFor(this.ctx, this.ari, cert, opts);
  }

  readonly requestFor = requestFor;

  budgetFor(cert: Certificate): Promise<RateLimitBudget> {
    return this.issuance.rateLimits.budgetFor(cert);
  }

  /** One coalesced issuance with a re-check after the lock (see Issuance.renew). */
  issue(cert: Certificate, attempt: IssueAttempt) {
    return this.issuance.renew(cert, attempt);
  }

  /**
   * "Renew now" (API, config change, revocation): satisfied by any version issued after the call arrived, so N
   * concurrent calls make one version. Refused when even the urgent share of the rate-limit budget is spent. The
   * request is stored (`reissueRequested`) before the order: a failed attempt, or a hub that dies during it,
   * leaves the certificate due, so the (next) leader's planner issues it.
   */
  async renewNow(name: string, actor: Actor, reason = 'manual'): Promise<CertificateVersion> {
    const cert = await this.mustGet(name);
    const before = await this.ctx.store.currentVersion(cert.id);
    const result = await this.issue(cert, {
      actor,
      reason,
      requested: true,
      checkBudget: true,
      stillNeeded: async () => {
        const { input, current } = await this.planInputFor(cert);
        const decision = { ...evaluateRenewal(input, this.policy), reissue: true, urgent: true };
        const needed = (current?.id ?? null) === (before?.id ?? null);
        return { needed, request: requestFor(input, decision, current) };
      },
    });
    const version = result.version ?? (await this.ctx.store.currentVersion(cert.id));
    if (!version) throw new CertfleetError('ISSUANCE_FAILED', `no version of "${name}" was issued`, 'retry');
    return version;
  }

  /** The renewal calendar with the real budgets (each directory's own) applied on scratch copies. */
  async plan(): Promise<PlanEntry[]> {
    const certs = await this.ctx.store.listCertificates();
    const groups = new Map<RateLimitBudget, PlanInput[]>();
    for (const cert of certs) {
      const budget = await this.budgetFor(cert);
      const { input } = await this.planInputFor(cert);
      groups.set(budget, [...(groups.get(budget) ?? []), input]);
    }
    const now = this.ctx.clock.now();
    return [...groups]
      .flatMap(([budget, inputs]) => planCalendar(inputs, budget, now, this.policy))
      .sort((a, b) => a.dueAt.getTime() - b.dueAt.getTime());
  }

  /** One certificate's calendar entry (the dashboard's certificate detail): one certificate's reads, not the fleet's. */
  async planOne(name: string): Promise<PlanEntry> {
    const cert = await this.mustGet(name);
    const { input } = await this.planInputFor(cert);
    return planCalendar([input], await this.budgetFor(cert), this.ctx.clock.now(), this.policy)[0];
  }

  async dryRun(name: string, signal: AbortSignal = this.issuance.signal): Promise<DryRunResult> {
    return dryRun(this.ctx, this.acme, await this.mustGet(name), signal);
  }

  /** Revokes the current version, then issues its replacement (which stays due until it exists). */
  async revoke(name: string, reason: RevocationReason, actor: Actor): Promise<RevokeResult> {
    assertRevocationReason(reason);
    const cert = await this.mustGet(name);
    const { result } = await revokeCurrent(this.ctx, this.acme, cert, reason, actor, this.issuance.signal);
    try {
      const v = await this.renewNow(name, actor, 'revoked');
      result.renewed = { id: v.id, serial: v.serial, notAfter: v.notAfter };
    } catch (e) {
      result.renewalError = errorJson(e);
    }
    return result;
  }

  /** Aborts the orders in flight and waits for them (hub shutdown). */
  close(): Promise<void> {
    return this.issuance.close();
  }

  async mustGet(name: string): Promise<Certificate> {
    const cert = await this.ctx.store.getCertificate(name);
    if (!cert) throw certificateNotFound(name);
    return cert;
  }
}
