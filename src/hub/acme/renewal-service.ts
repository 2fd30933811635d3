import { X509Certificate } from 'node:crypto';
import { CertfleetError, errorMessage, isCertfleetError } from '../../core/errors.ts';
import type { Certificate, CertificateVersion } from '../../core/types.ts';
import { ariCertId, fetchRenewalInfo } from '../../issuers/acme/ari.ts';
import { REVOCATION_REASONS, type RevocationReason } from '../../issuers/acme/acme-issuer.ts';
import type { IssueStep } from '../../issuers/issuer.ts';
import { inspectCertificate } from '../../pki/inspect.ts';
import type { Actor } from '../../store/store.ts';
import type { CertificateService } from '../certificate-service.ts';
import type { HubContext } from '../hub-context.ts';
import { IssuanceCoalescer } from '../issuance-lock.ts';
import {
  DEFAULT_POLICY,
  NO_LIMITS,
  RateLimitBudget,
  evaluateRenewal,
  issuanceRequestFor,
  nextAriFetch,
  planCalendar,
  type AriInfo,
  type BudgetConfig,
  type Decision,
  type IssuanceRequest,
  type PlanEntry,
  type PlanInput,
  type RenewalPolicy,
} from '../planner/index.ts';
import type { AcmeRuntime } from './acme-runtime.ts';

/** What the hub keeps per certificate in `renewal_state` (JSON). Times are ISO strings. */
export interface RenewalState {
  failures?: { count: number; lastFailureAt: string; lastError?: string };
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
  revoked?: Array<{ versionId: string; serial: string; reason: string; at: string }>;
}

export interface DryRunResult {
  ok: boolean;
  certificate: string;
  issuer: string;
  directoryUrl?: string;
  steps: IssueStep[];
  totalMs: number;
  issued?: { serial: string; notAfter: string; fingerprint: string };
  error?: { code: string; message: string; hint: string };
}

export interface RevokeResult {
  revoked: { serial: string; reason: RevocationReason; issuer: string };
  note?: string;
  renewed?: { serial: string; notAfter: string; id: string };
  renewalError?: { code: string; message: string; hint: string };
}

const ARI_ERROR_RETRY_MS = 60 * 60_000;
export const BUDGET_META_PREFIX = 'planner.budget.';
export const PLANNER_LAST_RUN_META = 'planner.last_run_at';

const errorJson = (e: unknown) =>
  isCertfleetError(e)
    ? { code: e.code, message: e.message, hint: e.hint }
    : { code: 'INTERNAL', message: errorMessage(e), hint: 'see the hub log' };

/**
 * Everything between "a certificate needs a version" and the CertificateService: plan inputs (with cached ARI),
 * the rate-limit budget per ACME directory (persisted in store meta), one coalesced issuance per certificate
 * with a re-check after the lock, failure bookkeeping, dry runs and revocation. The planner loop and the API
 * both go through here.
 */
export class RenewalService {
  readonly coalescer = new IssuanceCoalescer();
  private readonly budgets = new Map<string, Promise<RateLimitBudget>>();
  private readonly unlimited = new RateLimitBudget(NO_LIMITS, { account: 'internal' });

  constructor(
    readonly ctx: HubContext,
    readonly certificates: CertificateService,
    readonly acme?: AcmeRuntime,
    readonly policy: RenewalPolicy = DEFAULT_POLICY,
  ) {}

  // ---- state ---------------------------------------------------------------------------------------------

  async stateOf(cert: Certificate): Promise<RenewalState> {
    return (await this.ctx.store.getRenewalState(cert.id)) as RenewalState;
  }

  private async updateState(cert: Certificate, fn: (s: RenewalState) => RenewalState): Promise<void> {
    const next = fn(await this.stateOf(cert));
    await this.ctx.store.setRenewalState(cert.id, next as Record<string, unknown>);
  }

  // ---- budgets -------------------------------------------------------------------------------------------

  /** The budget of the directory a certificate's issuer talks to; the internal CA has no limits. */
  budgetFor(cert: Certificate): Promise<RateLimitBudget> {
    const entry = this.acme?.entries.get(cert.issuer);
    if (!entry) return Promise.resolve(this.unlimited);
    const url = entry.config.directoryUrl;
    let b = this.budgets.get(url);
    if (!b) {
      b = this.loadBudget(url, entry.budget);
      this.budgets.set(url, b);
    }
    return b;
  }

  private async loadBudget(url: string, config: BudgetConfig): Promise<RateLimitBudget> {
    const raw = await this.ctx.store.getMeta(BUDGET_META_PREFIX + url);
    if (!raw) return new RateLimitBudget(config);
    try {
      return RateLimitBudget.fromJSON(JSON.parse(raw), config);
    } catch (e) {
      this.ctx.logger.warn({ directory: url, err: errorMessage(e) }, 'stored rate-limit budget unreadable');
      return new RateLimitBudget(config);
    }
  }

  private async saveBudget(cert: Certificate, budget: RateLimitBudget): Promise<void> {
    const entry = this.acme?.entries.get(cert.issuer);
    if (!entry) return;
    await this.ctx.store.setMeta(
      BUDGET_META_PREFIX + entry.config.directoryUrl,
      JSON.stringify(budget.toJSON()),
    );
  }

  // ---- plan inputs ---------------------------------------------------------------------------------------

  /** The planner's view of one certificate; fetches ARI when the CA offers it and it is due (`fetchAri`). */
  async planInputFor(cert: Certificate, opts: { fetchAri?: boolean; signal?: AbortSignal } = {}) {
    const now = this.ctx.clock.now();
    const current = await this.ctx.store.currentVersion(cert.id);
    let state = await this.stateOf(cert);
    if (current && opts.fetchAri) state = await this.refreshAri(cert, current, state, now, opts.signal);
    const info = current ? inspectCertificate(current.certPem) : undefined;
    const ari: AriInfo | undefined =
      current && state.ari?.versionId === current.id
        ? {
            suggestedWindow: { start: new Date(state.ari.start), end: new Date(state.ari.end) },
            fetchedAt: new Date(state.ari.fetchedAt),
            ...(state.ari.retryAfter ? { retryAfter: new Date(state.ari.retryAfter) } : {}),
            ...(state.ari.explanationUrl ? { explanationUrl: state.ari.explanationUrl } : {}),
          }
        : undefined;
    const input: PlanInput = {
      now,
      certificate: {
        name: cert.name,
        sans: cert.sans,
        keyType: cert.keyType,
        lifetimeDays: cert.lifetimeDays,
      },
      ...(current && info
        ? {
            current: {
              notBefore: info.notBefore,
              notAfter: info.notAfter,
              sans: info.sans,
              keyType: keyTypeOf(current, cert),
            },
          }
        : {}),
      ...(ari ? { ari } : {}),
      ...(state.failures
        ? {
            failures: {
              count: state.failures.count,
              lastFailureAt: new Date(state.failures.lastFailureAt),
              ...(state.failures.lastError ? { lastError: state.failures.lastError } : {}),
            },
          }
        : {}),
      jitterSeed: cert.id,
    };
    return { input, current, state };
  }

  private async refreshAri(
    cert: Certificate,
    current: CertificateVersion,
    state: RenewalState,
    now: Date,
    signal?: AbortSignal,
  ): Promise<RenewalState> {
    const entry = this.acme?.entries.get(cert.issuer);
    if (!entry) return state;
    if (state.ariError?.versionId === current.id && new Date(state.ariError.retryAt) > now) return state;
    const cached =
      state.ari?.versionId === current.id
        ? {
            suggestedWindow: { start: new Date(state.ari.start), end: new Date(state.ari.end) },
            fetchedAt: new Date(state.ari.fetchedAt),
            ...(state.ari.retryAfter ? { retryAfter: new Date(state.ari.retryAfter) } : {}),
          }
        : undefined;
    if (cached && nextAriFetch(cached, now, this.policy).getTime() > now.getTime()) return state;
    let next: RenewalState;
    try {
      const dir = await entry.issuer.directory(signal);
      if (!dir.renewalInfo) return state;
      const info = await fetchRenewalInfo(dir, current.certPem, {
        ...(entry.caPem ? { caPem: entry.caPem } : {}),
        ...(signal ? { signal } : {}),
      });
      if (!info) return state;
      const { ariError: _drop, ...rest } = state;
      next = {
        ...rest,
        ari: {
          versionId: current.id,
          start: info.suggestedWindow.start.toISOString(),
          end: info.suggestedWindow.end.toISOString(),
          fetchedAt: now.toISOString(),
          ...(info.retryAfterSeconds !== undefined
            ? { retryAfter: new Date(now.getTime() + info.retryAfterSeconds * 1000).toISOString() }
            : {}),
          ...(info.explanationURL ? { explanationUrl: info.explanationURL } : {}),
        },
      };
    } catch (e) {
      if (signal?.aborted) throw e;
      this.ctx.logger.warn({ certificate: cert.name, err: errorMessage(e) }, 'renewalInfo fetch failed');
      next = {
        ...state,
        ariError: {
          versionId: current.id,
          at: now.toISOString(),
          retryAt: new Date(now.getTime() + ARI_ERROR_RETRY_MS).toISOString(),
          error: errorMessage(e),
        },
      };
    }
    await this.ctx.store.setRenewalState(cert.id, next as Record<string, unknown>);
    return next;
  }

  /** The order as the budget counts it: an ARI renewal carries `replaces` of the current version. */
  requestFor(input: PlanInput, decision: Decision, current?: CertificateVersion): IssuanceRequest {
    const request = issuanceRequestFor(input, decision);
    if (request.isRenewal && current) {
      try {
        request.replaces = ariCertId(current.certPem);
      } catch {
        request.isRenewal = false;
      }
    }
    return request;
  }

  // ---- issuance ------------------------------------------------------------------------------------------

  /**
   * One coalesced issuance: concurrent calls for the same certificate share one attempt, and `stillNeeded` is
   * asked again once the attempt holds the lock. Counts the order in the budget and keeps failure state.
   */
  async issueCoalesced(
    cert: Certificate,
    actor: Actor,
    reason: string,
    stillNeeded: () => Promise<{ needed: boolean; request: IssuanceRequest }>,
  ): Promise<{ issued: boolean; version?: CertificateVersion }> {
    let request: IssuanceRequest | undefined;
    const outcome = await this.coalescer.run(
      cert.id,
      async () => {
        const r = await stillNeeded();
        request = r.request;
        return r.needed;
      },
      async () => {
        const budget = await this.budgetFor(cert);
        try {
          const version = await this.certificates.issue(cert, actor, reason);
          budget.record(request!, this.ctx.clock.now(), 'issued');
          await this.saveBudget(cert, budget);
          await this.updateState(cert, ({ failures: _f, deferred: _d, ...rest }) => rest);
          await this.ctx.store.appendEvent({
            actor,
            kind: 'renewal.succeeded',
            subject: `certificate:${cert.name}`,
            data: { reason, version_id: version.id, serial: version.serial, ari_renewal: request!.isRenewal },
          });
          return version;
        } catch (e) {
          const now = this.ctx.clock.now();
          budget.record(request!, now, 'failed');
          await this.saveBudget(cert, budget);
          let count = 0;
          await this.updateState(cert, (s) => {
            count = (s.failures?.count ?? 0) + 1;
            return {
              ...s,
              failures: { count, lastFailureAt: now.toISOString(), lastError: errorMessage(e).slice(0, 500) },
            };
          });
          await this.ctx.store.appendEvent({
            actor,
            kind: 'renewal.failed',
            subject: `certificate:${cert.name}`,
            data: { reason, failures: count, ...errorJson(e) },
          });
          throw e;
        }
      },
    );
    return { issued: outcome.issued, ...(outcome.result ? { version: outcome.result } : {}) };
  }

  /**
   * "Renew now" (API, revocation): satisfied by any version issued after the call arrived, so N concurrent
   * calls make one version. Refused when even the urgent share of the rate-limit budget is spent.
   */
  async renewNow(name: string, actor: Actor, reason = 'manual'): Promise<CertificateVersion> {
    const cert = await this.mustGet(name);
    const before = await this.ctx.store.currentVersion(cert.id);
    const result = await this.issueCoalesced(cert, actor, reason, async () => {
      const { input, current } = await this.planInputFor(cert);
      const decision = { ...evaluateRenewal(input, this.policy), reissue: true, urgent: true };
      const request = this.requestFor(input, decision, current);
      const needed = (current?.id ?? null) === (before?.id ?? null);
      if (needed) {
        const check = (await this.budgetFor(cert)).canIssue(request, this.ctx.clock.now());
        if (!check.ok)
          throw new CertfleetError(
            'RATE_LIMITED',
            check.message,
            'wait until the limit frees, or raise it in rateLimits',
          );
      }
      return { needed, request };
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

  // ---- dry run -------------------------------------------------------------------------------------------

  /** The whole order against the staging directory (or the same one), reported step by step; nothing stored. */
  async dryRun(name: string, signal?: AbortSignal): Promise<DryRunResult> {
    const cert = await this.mustGet(name);
    const entry = this.acme?.entries.get(cert.issuer);
    const issuer = entry ? entry.dryRunIssuer() : this.ctx.issuers.get(cert.issuer);
    if (!issuer)
      throw new CertfleetError(
        'VALIDATION_FAILED',
        `issuer "${cert.issuer}" is not configured`,
        'fix the hub config',
      );
    const steps: IssueStep[] = [];
    const started = Date.now();
    const base = {
      certificate: cert.name,
      issuer: cert.issuer,
      ...(entry ? { directoryUrl: entry.config.staging?.directoryUrl ?? entry.config.directoryUrl } : {}),
    };
    try {
      const issued = await issuer.issue({
        certificateName: cert.name,
        sans: cert.sans,
        keyType: cert.keyType,
        lifetimeDays: cert.lifetimeDays,
        ...(signal ? { signal } : {}),
        onStep: (s) => steps.push(s),
      });
      if (!entry)
        steps.push({ name: 'issue', detail: 'signed by the internal CA', ms: Date.now() - started });
      const info = inspectCertificate(issued.certPem);
      return {
        ...base,
        ok: true,
        steps,
        totalMs: Date.now() - started,
        issued: { serial: info.serial, notAfter: info.notAfter.toISOString(), fingerprint: info.fingerprint },
      };
    } catch (e) {
      return { ...base, ok: false, steps, totalMs: Date.now() - started, error: errorJson(e) };
    }
  }

  // ---- revocation ----------------------------------------------------------------------------------------

  async revoke(name: string, reason: RevocationReason, actor: Actor): Promise<RevokeResult> {
    if (!(reason in REVOCATION_REASONS))
      throw new CertfleetError(
        'BAD_REQUEST',
        `unknown revocation reason "${reason}"`,
        `use one of: ${Object.keys(REVOCATION_REASONS).join(', ')}`,
      );
    const cert = await this.mustGet(name);
    const current = await this.ctx.store.currentVersion(cert.id);
    if (!current)
      throw new CertfleetError(
        'NOT_FOUND',
        `certificate "${name}" has no version to revoke`,
        'nothing to do',
      );
    const entry = this.acme?.entries.get(cert.issuer);
    let note: string | undefined;
    if (entry) await entry.issuer.revoke(current.certPem, reason);
    else
      note =
        'the internal CA has no CRL or OCSP responder yet: the revocation is recorded, but clients cannot learn of it; the certificate is replaced now';
    const now = this.ctx.clock.now().toISOString();
    await this.updateState(cert, (s) => ({
      ...s,
      revoked: [...(s.revoked ?? []), { versionId: current.id, serial: current.serial, reason, at: now }],
    }));
    await this.ctx.store.appendEvent({
      actor,
      kind: 'version.revoked',
      subject: `certificate:${cert.name}`,
      data: {
        version_id: current.id,
        serial: current.serial,
        reason,
        issuer: cert.issuer,
        ...(note ? { note } : {}),
      },
    });
    const result: RevokeResult = {
      revoked: { serial: current.serial, reason, issuer: cert.issuer },
      ...(note ? { note } : {}),
    };
    try {
      const v = await this.renewNow(name, actor, 'revoked');
      result.renewed = { id: v.id, serial: v.serial, notAfter: v.notAfter };
    } catch (e) {
      result.renewalError = errorJson(e);
    }
    return result;
  }

  async mustGet(name: string): Promise<Certificate> {
    const cert = await this.ctx.store.getCertificate(name);
    if (!cert)
      throw new CertfleetError(
        'CERTIFICATE_NOT_FOUND',
        `certificate "${name}" not found`,
        'list certificates with `certfleet cert list`',
      );
    return cert;
  }
}

/** The key type of a version, from its public key (so a key-type change is noticed). */
function keyTypeOf(v: CertificateVersion, cert: Certificate): string {
  try {
    const key = new X509Certificate(v.certPem).publicKey;
    const d = key.asymmetricKeyDetails;
    if (key.asymmetricKeyType === 'ec') return d?.namedCurve === 'secp384r1' ? 'ecdsa-p384' : 'ecdsa-p256';
    if (key.asymmetricKeyType === 'rsa') return `rsa-${d?.modulusLength}`;
  } catch {
    // fall through
  }
  return cert.keyType;
}
