/**
 * The one way a version comes from an issuer into the store. Every issuance (a planner renewal, renew now, the
 * replacement after a revocation, a new certificate's first version) runs through the injected coalescer (one
 * attempt per certificate at a time, re-checked once it holds the lock), is checked against and counted in its
 * directory's rate-limit budget, and commits in ONE transaction: version, deployments, budget spend, renewal
 * state and events. A failed attempt commits as one too: failure count, budget spend, `version.issue_failed`
 * and `renewal.failed`. An explicit request (renew now) is recorded before its order, in a commit of its own.
 * `close()` aborts the orders in flight (the signal reaches the issuer) and waits for them.
 */
import { setMaxListeners } from 'node:events';
import { CertfleetError, errorMessage, isCertfleetError } from '../../core/errors.ts';
import { newId } from '../../core/ids.ts';
import type { Certificate, CertificateVersion } from '../../core/types.ts';
import type { IssuedVersion, OrderJournal } from '../../issuers/issuer.ts';
import { acmeOrderKeyContext } from '../../store/meta-catalogue.ts';
import { certMatchesKey, inspectCertificate, type CertInfo } from '../../pki/inspect.ts';
import type { Actor, NewCertificate, RateLimitOrder, RenewalCommit } from '../../store/store.ts';
import type { HubContext } from '../hub-context.ts';
import { IssuanceCoalescer, type DistributedLock } from '../issuance-lock.ts';
import type { IssuanceRequest } from '../planner/index.ts';
import { newVersionRecord } from '../version-record.ts';
import { RateLimitStore } from './rate-limit-store.ts';
import { afterFailed, afterIssued, storeChange, withRequest } from './renewal-state.ts';

export interface IssueAttempt {
  actor: Actor;
  /** Why: a decision reason, 'manual', 'revoked', 'config changed'. In events and logs. */
  reason: string;
  /** An explicit request: when it fails, `reissueRequested` keeps the certificate due until a version exists. */
  requested?: boolean;
  /** Asked again once the attempt holds the lock: is issuance still needed, and the order as the budget counts it. */
  stillNeeded: () => Promise<{ needed: boolean; request: IssuanceRequest }>;
  /**
   * Hold room in the budget before ordering, refusing with RATE_LIMITED when there is none (renew now, a new
   * certificate). The planner checks its whole run on a scratch budget instead.
   */
  checkBudget?: boolean;
  /** Aborts this attempt's order besides hub shutdown (the planner's, when the hub stops leading). */
  signal?: AbortSignal;
}

export interface IssuanceOptions {
  /** One attempt per certificate (tests inject one); built here otherwise, on `lock` when given. */
  coalescer?: IssuanceCoalescer;
  /** The lock shared by the hubs of a cluster (PostgreSQL): one issuance per certificate across all of them. */
  lock?: DistributedLock;
  rateLimits?: RateLimitStore;
  /** Ids of new certificates (they seed each one's renewal jitter): a seeded rehearsal passes its own. */
  newCertificateId?: () => string;
}

type Subject = Pick<Certificate, 'id' | 'name' | 'sans' | 'keyType' | 'lifetimeDays' | 'issuer' | 'profile'>;

export const errorJson = (e: unknown) =>
  isCertfleetError(e)
    ? { code: e.code, message: e.message, hint: e.hint }
    : { code: 'INTERNAL', message: errorMessage(e), hint: 'see the hub log' };

export class Issuance {
  readonly coalescer: IssuanceCoalescer;
  readonly rateLimits: RateLimitStore;
  private readonly shutdown = new AbortController();
  private readonly inflight = new Set<Promise<unknown>>();
  private readonly newCertificateId: () => string;
  /** Certificate ids of first issuances in flight on this hub (see `create`). */
  private readonly claimedOrders = new Set<string>();

  constructor(
    private readonly ctx: HubContext,
    opts: IssuanceOptions = {},
  ) {
    this.newCertificateId = opts.newCertificateId ?? newId;
    // Every order in flight listens to it (often several listeners each): no leak warning past ten.
    setMaxListeners(0, this.shutdown.signal);
    this.coalescer =
      opts.coalescer ??
      new IssuanceCoalescer({
        signal: this.shutdown.signal,
        ...(opts.lock
          ? {
              lock: opts.lock,
              onReleaseError: (e, key) =>
                ctx.logger.warn(
                  { key, err: errorMessage(e) },
                  'issuance lock: release failed (freed with its session)',
                ),
            }
          : {}),
      });
    this.rateLimits = opts.rateLimits ?? new RateLimitStore(ctx);
  }

  /** Aborted by `close()`: every order placed by this hub listens to it. */
  get signal(): AbortSignal {
    return this.shutdown.signal;
  }

  /** One coalesced issuance of an existing certificate (see IssueAttempt). */
  async renew(
    cert: Certificate,
    attempt: IssueAttempt,
  ): Promise<{ issued: boolean; version?: CertificateVersion }> {
    const outcome = await this.coalesced(cert.id, cert, false, attempt);
    const version = outcome.result?.version;
    return { issued: outcome.issued, ...(version ? { version } : {}) };
  }

  /** needsIssuance → (budget held) → issue, as one coalesced attempt per key. */
  private coalesced(key: string, cert: Subject, create: boolean, attempt: IssueAttempt) {
    let request: IssuanceRequest | undefined;
    let release: (() => void) | undefined;
    return this.coalescer.run(
      key,
      async () => {
        const r = await attempt.stillNeeded();
        request = r.request;
        if (r.needed && attempt.checkBudget) release = await this.rateLimits.reserve(cert, r.request);
        return r.needed;
      },
      async () => {
        try {
          return await this.issue(cert, create, request!, attempt);
        } finally {
          release?.();
        }
      },
    );
  }

  /**
   * A new certificate with its first version, created together: a name the CA rejects (or an unreachable CA)
   * leaves no certificate behind, only the `version.issue_failed` event. A first issuance is not urgent, so it
   * may not spend the share of the budget kept for urgent renewals.
   */
  async create(spec: NewCertificate, actor: Actor): Promise<Certificate> {
    const key = `new:${spec.name}`;
    if (this.coalescer.isInFlight(key))
      throw new CertfleetError(
        'ALREADY_EXISTS',
        `certificate "${spec.name}" is being created`,
        `wait for it, then see \`certfleet cert show ${spec.name}\``,
      );
    const request: IssuanceRequest = { sans: spec.sans, isRenewal: false, urgent: false };
    // A hub that died after the CA finalized this first issuance left its order (no certificate has its id):
    // taking that id makes the journal resume the order, so adding the certificate again is not a second
    // certificate at the CA. An id already taken by a create in flight here is not shared.
    const unclaimed = await this.ctx.store.unclaimedAcmeOrder(spec.issuer, spec.sans);
    const id =
      unclaimed && !this.claimedOrders.has(unclaimed.certificateId)
        ? unclaimed.certificateId
        : this.newCertificateId();
    const cert: Subject = { ...spec, id };
    this.claimedOrders.add(id);
    const outcome = await this.coalesced(key, cert, true, {
      actor,
      reason: 'created',
      checkBudget: true,
      stillNeeded: async () => ({ needed: !(await this.ctx.store.getCertificate(spec.name)), request }),
    }).finally(() => this.claimedOrders.delete(id));
    // Taken meanwhile: the store's own refusal, before any order was placed.
    return outcome.result?.certificate ?? this.ctx.store.createCertificate(spec, actor);
  }

  /** Aborts the orders in flight and waits until each has settled (and committed its failure). */
  async close(): Promise<void> {
    this.shutdown.abort(new DOMException('the hub is shutting down', 'AbortError'));
    await Promise.allSettled([...this.inflight]);
  }

  private issue(
    cert: Subject,
    create: boolean,
    request: IssuanceRequest,
    attempt: Pick<IssueAttempt, 'actor' | 'reason' | 'requested' | 'signal'>,
  ): Promise<{ certificate: Certificate; version?: CertificateVersion }> {
    const p = this.issueOnce(cert, create, request, attempt);
    this.inflight.add(p);
    void p.catch(() => undefined).finally(() => this.inflight.delete(p));
    return p;
  }

  private async issueOnce(
    cert: Subject,
    create: boolean,
    request: IssuanceRequest,
    {
      actor,
      reason,
      requested,
      signal: own,
    }: Pick<IssueAttempt, 'actor' | 'reason' | 'requested' | 'signal'>,
  ): Promise<{ certificate: Certificate; version?: CertificateVersion }> {
    const { store, logger } = this.ctx;
    const started = Date.now();
    const signal = own ? AbortSignal.any([this.shutdown.signal, own]) : this.shutdown.signal;
    const previous = create ? undefined : await store.currentVersion(cert.id);
    signal.throwIfAborted(); // no new order once closing (or no longer leading); nothing to record
    if (requested && !create)
      // durable before the order: should this hub die during it, the next leader's planner sees it due
      await store.commitRenewal({
        certificate: { id: cert.id },
        actor,
        renewalState: storeChange(withRequest(this.ctx.clock.now(), reason)),
      });
    let obtained: { issued: IssuedVersion; info: CertInfo };
    try {
      // a new certificate's order is kept under the id it is created with; `create` finds it again by its names
      obtained = await this.obtain(cert, previous, signal, this.orderJournal(cert));
    } catch (e) {
      await this.commitFailure(cert, create, request, { actor, reason, requested }, e);
      throw signal.aborted ? signal.reason : userError(cert, e);
    }
    const { issued, info } = obtained;
    const rateLimitOrders = await this.rateLimits.spend(cert, request, 'issued');
    const committed = await this.committingOrders(rateLimitOrders, {
      certificate: { id: cert.id, ...(create ? { create: specOf(cert) } : {}) },
      actor,
      version: newVersionRecord(this.ctx.sealer, cert, issued, info),
      ...(create
        ? {}
        : {
            renewalState: storeChange(afterIssued),
            events: ({ version }) => [
              {
                kind: 'renewal.succeeded',
                data: {
                  reason,
                  version_id: version!.id,
                  serial: version!.serial,
                  ari_renewal: request.isRenewal,
                },
              },
            ],
          }),
    });
    logger.info(
      {
        certificate: cert.name,
        serial: info.serial,
        not_after: info.notAfter.toISOString(),
        reason,
        duration_ms: Date.now() - started,
      },
      'version issued',
    );
    return committed;
  }

  /**
   * Commits a renewal step with the orders it counted. The CA counted them whatever happens to the commit: should it
   * fail, they are stored on their own (best effort), so other hubs and the next start still count them.
   */
  private async committingOrders(
    rateLimitOrders: RateLimitOrder[],
    commit: Omit<RenewalCommit, 'rateLimitOrders'>,
  ): Promise<{ certificate: Certificate; version?: CertificateVersion }> {
    try {
      return await this.ctx.store.commitRenewal({ ...commit, rateLimitOrders });
    } catch (e) {
      if (rateLimitOrders.length)
        await this.ctx.store
          .addRateLimitOrders(rateLimitOrders)
          .catch((saveError: unknown) =>
            this.ctx.logger.error(
              { orders: rateLimitOrders.length, err: errorMessage(saveError) },
              'storing counted rate-limit orders failed',
            ),
          );
      throw e;
    }
  }

  /**
   * The certificate's order being finalized, in the store with its key sealed, until `commitRenewal` stores the
   * version (and deletes it): the next attempt after a hub died in between resumes that order.
   */
  private orderJournal(cert: Subject): OrderJournal {
    const { store, sealer, clock, logger } = this.ctx;
    const context = acmeOrderKeyContext(cert.id);
    return {
      pending: async () => {
        const r = await store.acmeOrder(cert.id);
        if (!r) return undefined;
        try {
          return { issuer: r.issuer, orderUrl: r.orderUrl, keyPem: sealer.unseal(r.sealedKey, context) };
        } catch (e) {
          logger.warn(
            { certificate: cert.name, err: errorMessage(e) },
            'the key of the order recorded before finalize does not unseal; placing a new order',
          );
          return undefined;
        }
      },
      record: (o) =>
        store.recordAcmeOrder({
          certificateId: cert.id,
          issuer: o.issuer,
          sans: cert.sans,
          orderUrl: o.orderUrl,
          sealedKey: sealer.seal(o.keyPem, context),
          createdAt: clock.now().toISOString(),
        }),
    };
  }

  /** Asks the certificate's issuer for a new version and checks it: the key matches, every name is covered. */
  private async obtain(
    cert: Subject,
    previous: CertificateVersion | undefined,
    signal: AbortSignal,
    journal?: OrderJournal,
  ): Promise<{ issued: IssuedVersion; info: CertInfo }> {
    const issuer = this.ctx.issuers.get(cert.issuer);
    if (!issuer)
      throw new CertfleetError(
        'VALIDATION_FAILED',
        `issuer "${cert.issuer}" is not configured`,
        `use one of: ${[...this.ctx.issuers.keys()].join(', ')}`,
      );
    const issued = await issuer.issue({
      ...(journal ? { orders: journal } : {}),
      certificateName: cert.name,
      sans: cert.sans,
      keyType: cert.keyType,
      lifetimeDays: cert.lifetimeDays,
      ...(cert.profile ? { profile: cert.profile } : {}),
      ...(previous ? { replacesCertPem: previous.certPem } : {}),
      signal,
    });
    const info = inspectCertificate(issued.certPem);
    if (!certMatchesKey(issued.certPem, issued.keyPem))
      throw new CertfleetError(
        'ISSUANCE_FAILED',
        `issuer "${cert.issuer}" returned a certificate that does not match its key`,
        'report it to the CA operator',
      );
    const missing = cert.sans.filter((n) => !info.sans.includes(n));
    if (missing.length)
      throw new CertfleetError(
        'ISSUANCE_FAILED',
        `issued certificate lacks names: ${missing.join(', ')}`,
        'check the issuer',
      );
    return { issued, info };
  }

  /**
   * A failed attempt in one commit: `version.issue_failed` (with the typed details `certfleet doctor`
   * classifies), and for an existing certificate the failure count, budget and `renewal.failed`. A first
   * issuance stores only the event: there is no certificate; its budget spend is written with the next commit.
   */
  private async commitFailure(
    cert: Subject,
    create: boolean,
    request: IssuanceRequest,
    { actor, reason, requested }: Pick<IssueAttempt, 'actor' | 'reason' | 'requested'>,
    e: unknown,
  ): Promise<void> {
    const now = this.ctx.clock.now();
    const issueFailed = {
      kind: 'version.issue_failed',
      data: {
        reason,
        issuer: cert.issuer,
        error: errorMessage(e),
        ...(isCertfleetError(e) ? { code: e.code } : {}),
        ...(isCertfleetError(e) && e.details ? { details: e.details } : {}),
      },
    };
    try {
      const rateLimitOrders = await this.rateLimits.spend(cert, request, 'failed');
      if (create) {
        await this.ctx.store.addRateLimitOrders(rateLimitOrders);
        await this.ctx.store.appendEvent({ actor, subject: `certificate:${cert.name}`, ...issueFailed });
        return;
      }
      let failures = 0;
      const change = afterFailed(now, errorMessage(e), requested ? reason : undefined, retryAfterOf(e, now));
      await this.committingOrders(rateLimitOrders, {
        certificate: { id: cert.id },
        actor,
        renewalState: storeChange((s) => {
          const next = change(s);
          failures = next.failures!.count;
          return next;
        }),
        events: () => [issueFailed, { kind: 'renewal.failed', data: { reason, failures, ...errorJson(e) } }],
      });
    } catch (commitError) {
      // The attempt's own error is what the caller must see; this one goes to the log.
      this.ctx.logger.error(
        { certificate: cert.name, err: errorMessage(commitError) },
        'recording a failed issuance failed',
      );
    }
  }
}

/** When the CA said to retry: `details.retryAfterSeconds` of its error (ACME problem + Retry-After header). */
function retryAfterOf(e: unknown, now: Date): Date | undefined {
  const s = isCertfleetError(e) ? e.details?.retryAfterSeconds : undefined;
  return typeof s === 'number' && Number.isFinite(s) && s > 0
    ? new Date(now.getTime() + s * 1000)
    : undefined;
}

function specOf(cert: Subject): NewCertificate {
  const { name, sans, keyType, issuer, lifetimeDays, profile } = cert;
  return { name, sans, keyType, issuer, lifetimeDays, ...(profile ? { profile } : {}) };
}

/** Users see CertfleetErrors: anything else becomes ISSUANCE_FAILED naming the certificate. */
function userError(cert: Subject, e: unknown): unknown {
  if (isCertfleetError(e)) return e;
  return new CertfleetError(
    'ISSUANCE_FAILED',
    `issuing "${cert.name}" failed: ${errorMessage(e)}`,
    'see `certfleet events`',
    {
      cause: e,
    },
  );
}
